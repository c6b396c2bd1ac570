import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync, truncateSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256, sha256File } from '../util/fsutil.js';
import {
  commitSnapshot,
  findSnapshot,
  savedBootConsole,
  honestyCommand,
  parseGuestFacts,
  snapshotKey,
  snapshotUnsupported,
  type SavedStream,
  type SnapshotMeta,
} from './snapshot.js';
import type { QemuConfig } from './qemu-args.js';

const root = mkdtempSync(join(tmpdir(), 'faultline-snapshot-test-'));
process.env['FAULTLINE_CACHE'] = join(root, 'cache');
const kernel = join(root, 'bzImage');
const initrd = join(root, 'initramfs.cpio');
writeFileSync(kernel, 'kernel v1');
writeFileSync(initrd, 'initramfs v1');

// `true --version` prints nothing and exits 0: a stand-in QEMU binary for the version part of the key.
const config: Omit<QemuConfig, 'sshPort'> = {
  qemu: 'true',
  kernel,
  initrd,
  accel: 'tcg',
  memMiB: 1024,
  smp: 2,
  guestRam: 'anon',
  hugepages2m: 64,
  hugepages1g: 0,
};
const facts = { uname: '6.12.117+deb12-amd64', bootId: '74e4e70c-8961-4d75-8936-9e97ad915082' };

/** A saved stream as saveSnapshot leaves it: a .tmp file in the entry directory. */
async function savedStream(key: string, content: string): Promise<SavedStream> {
  const dir = join(root, 'cache', 'snapshots', key);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, 'ram-1-abcd.tmp');
  await writeFile(tmp, content);
  return { tmp, saveMs: 200, digest: sha256File(tmp) };
}

async function committed(content = 'QEVM stream'): Promise<{ key: string; meta: SnapshotMeta; dir: string }> {
  const k = await snapshotKey(config);
  const meta = await commitSnapshot(
    k.key,
    await savedStream(k.key, content),
    {
      bootMs: 9000,
      qemuVersion: k.qemuVersion,
      inputs: k.inputs,
      guest: facts,
    },
    '[    0.000000] Linux version 6.12.117+deb12-amd64\n',
  );
  return { key: k.key, meta, dir: join(root, 'cache', 'snapshots', k.key) };
}

t.test('the key follows every input and ignores the per-guest parts', async (t) => {
  const k = (await snapshotKey(config)).key;
  t.match(k, /^[0-9a-f]{24}$/);
  t.equal((await snapshotKey({ ...config, qmpSocket: '/tmp/other.sock' })).key, k, 'QMP socket is per guest');
  t.not((await snapshotKey({ ...config, memMiB: 2048 })).key, k, 'guest RAM');
  t.not((await snapshotKey({ ...config, hugepages2m: 32 })).key, k, 'hugepage reservation');
  t.not((await snapshotKey({ ...config, extraCmdline: 'quiet' })).key, k, 'kernel command line');
  writeFileSync(initrd, 'initramfs v2');
  t.not((await snapshotKey(config)).key, k, 'initramfs content, same path');
  writeFileSync(initrd, 'initramfs v1');
  t.equal((await snapshotKey(config)).key, k);
  const args = (await snapshotKey(config)).inputs.args;
  t.ok(args.includes('KERNEL') && args.includes('INITRD'), 'paths blanked: content hashes stand for them');
  t.notOk(
    args.some((a) => a.includes(kernel)),
    'no host path in the key',
  );
});

t.test('only anon guest RAM is snapshotted, with the reason said', async (t) => {
  t.equal(snapshotUnsupported(config), undefined);
  t.match(snapshotUnsupported({ ...config, guestRam: 'hugetlb' }), /hugetlb is not restored/);
});

t.test('a committed entry: stream renamed by its checksum, meta.json naming size and SHA-256', async (t) => {
  const { key, meta, dir } = await committed();
  t.equal(meta.sha256, sha256('QEVM stream'));
  t.equal(meta.bytes, 'QEVM stream'.length);
  t.same(readdirSync(dir).sort(), ['boot-console.log', 'meta.json', meta.file].sort(), 'the .tmp is gone');
  t.match(await savedBootConsole(key), /^\[ +0\.000000\] Linux version 6\.12/, "the saved guest's boot is kept");
  const found = await findSnapshot(key);
  t.ok('meta' in found && found.meta.sha256 === meta.sha256 && found.path === join(dir, meta.file));
});

t.test('a truncated stream is detected and the entry deleted', async (t) => {
  const { key, meta, dir } = await committed();
  truncateSync(join(dir, meta.file), 4);
  const found = await findSnapshot(key);
  t.ok('none' in found && /damaged \(its stream has 4 bytes, not 11\)/.test(found.none), JSON.stringify(found));
  t.notOk(existsSync(dir), 'entry removed');
  t.match(await findSnapshot(key), { none: 'no snapshot of this guest yet' });
});

t.test('a damaged or foreign meta.json is detected and the entry deleted', async (t) => {
  const { key, dir } = await committed();
  writeFileSync(join(dir, 'meta.json'), '{"schema":"faultline.snapshot/1"');
  t.match(await findSnapshot(key), { none: /not JSON/ });
  t.notOk(existsSync(dir));
  const again = await committed();
  const m = JSON.parse(readFileSync(join(again.dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(again.dir, 'meta.json'), JSON.stringify({ ...m, sha256: 'xyz' }));
  t.match(await findSnapshot(key), { none: /not a faultline snapshot record/ });
  t.notOk(existsSync(again.dir));
});

t.test('a missing stream is detected', async (t) => {
  const { key, meta, dir } = await committed();
  writeFileSync(join(dir, meta.file), '');
  t.match(await findSnapshot(key), { none: /its stream has 0 bytes/ });
});

t.test('the restored guest is given the time and a seed, and reports its release and boot id', async (t) => {
  const cmd = honestyCommand(1_764_640_000_400, 'ab12');
  t.match(cmd, /^date -u -s @1764640000 >\/dev\/null && printf %s ab12 > \/dev\/urandom && uname -r && /);
  t.match(cmd, /cat \/proc\/sys\/kernel\/random\/boot_id && test -e \/run\/faultline-ready$/);
  t.not(honestyCommand(0), honestyCommand(0), 'a fresh seed each time');
  t.same(parseGuestFacts(`${facts.uname}\n${facts.bootId}\n`), facts);
});
