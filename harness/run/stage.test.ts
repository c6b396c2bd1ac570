import t from 'tap';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from '../util/proc.js';
import { guestHashCommand, parseGuestHashes } from './stage.js';

/**
 * The guest's side of staging, run here by the same static busybox the guest image holds
 * (its sh, sha256sum, ls and mkdir: the applets the command uses, on a PATH of nothing else).
 */
t.test("the guest's hash report, as busybox prints it, parsed", async (t) => {
  const busybox = await which('busybox');
  if (!busybox) throw new Error('busybox missing: npm run setup installs busybox-static');
  const root = mkdtempSync(join(tmpdir(), 'faultline-stage-'));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  for (const applet of ['sh', 'sha256sum', 'ls', 'mkdir']) symlinkSync(busybox, join(bin, applet));
  const dir = join(root, 'faultline');
  mkdirSync(dir);
  const put = (name: string, content: string) => writeFileSync(join(dir, name), content);
  const hash = (content: string) => createHash('sha256').update(content).digest('hex');
  put('uffd-unit-tests', 'same build');
  put("odd name's", 'other build');
  put('left-over', 'not wanted');

  const wanted = ['uffd-unit-tests', "odd name's", 'not-there-yet'];
  const r = await execa(join(bin, 'sh'), ['-c', guestHashCommand(dir, wanted)], {
    env: { PATH: bin },
    extendEnv: false,
    timeout: 10_000,
  });
  const got = parseGuestHashes(r.stdout);
  t.same(
    [...got.hashes].sort(),
    [
      ["odd name's", hash('other build')],
      ['uffd-unit-tests', hash('same build')],
    ],
    'a hash for each wanted file present (a quote in the name survives), none for the missing one',
  );
  t.same(got.names.sort(), ['left-over', "odd name's", 'uffd-unit-tests'], 'every name in the directory listed');

  const fresh = join(root, 'fresh');
  const empty = await execa(join(bin, 'sh'), ['-c', guestHashCommand(fresh, wanted)], {
    env: { PATH: bin },
    extendEnv: false,
    timeout: 10_000,
  });
  t.same(parseGuestHashes(empty.stdout), { hashes: new Map(), names: [] }, 'a new guest: the directory made, empty');
});

t.test('no binaries wanted: no sha256sum (it would read stdin), the listing still comes', async (t) => {
  const command = guestHashCommand('/root/faultline', []);
  t.notMatch(command, /sha256sum/);
  const dir = mkdtempSync(join(tmpdir(), 'faultline-stage-none-'));
  writeFileSync(join(dir, 'old-binary'), 'x');
  // stdin left open, as an SSH channel's is: a command reading it would hang to the timeout.
  const r = await execa('sh', ['-c', guestHashCommand(dir, [])], { timeout: 10_000, stdin: 'pipe' });
  t.same(parseGuestHashes(r.stdout), { hashes: new Map(), names: ['old-binary'] });
});

t.test('an answer without the listing is an error, not an empty guest', async (t) => {
  t.throws(() => parseGuestHashes('sh: sha256sum: not found\n'), /did not list its test binaries/);
});
