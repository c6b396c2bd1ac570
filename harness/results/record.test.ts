import t from 'tap';
import { newRunRecord, readGuestRunRecord, validateRunRecord } from './record.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const guestRun = newRunRecord({
  runId: 'r1',
  startedAt: '2026-12-02T00:00:00.000Z',
  kernel: { source: 'debian-package', path: '/boot/vmlinuz', release: '6.12.117+deb12-amd64' },
  selftests: { source: 'prebuilt' },
  qemu: { command: [], accel: 'tcg', memMiB: 1024, smp: 2, guestRam: 'anon' },
  suites: ['uffd'],
  backings: ['anon'],
});

const hostRun = newRunRecord({
  runId: 'c1',
  startedAt: '2026-12-02T00:00:00.000Z',
  kernel: { source: 'build', path: 'abc123' },
  selftests: { source: 'command' },
  suites: ['cmd'],
  backings: [],
  subtests: [{ id: 'cmd/t', suite: 'cmd', program: 'cmd', name: 't', status: 'fail' }],
  durationMs: 1500,
});

/** The record as it comes back from disk, with one change made to it. */
function reread(rec: object, change: (r: Record<string, unknown>) => void = () => undefined): unknown {
  const r = JSON.parse(JSON.stringify(rec)) as Record<string, unknown>;
  change(r);
  return r;
}

t.test('newRunRecord: a guest run has qemu and guest, a host run neither', async (t) => {
  t.same(guestRun.guest, {});
  t.equal(guestRun.qemu.guestRam, 'anon');
  t.equal(guestRun.verdict, 'pass', 'nothing ran yet: the caller settles the verdict');
  t.notOk('qemu' in hostRun || 'guest' in hostRun, 'no invented accel or memory for a host command');
  t.equal(hostRun.verdict, 'fail', 'summary and verdict follow from the subtests given');
  t.equal(hostRun.summary.fail, 1);
  t.equal(hostRun.timing.totalMs, 1500);
  t.ok(validateRunRecord(reread(guestRun), 'guest'));
  t.ok(validateRunRecord(reread(hostRun), 'host'));
});

/** A subtest that keeps the name its program printed (count 192) as its title. */
const titled = { id: 'p/count N', suite: 's', program: 'p', name: 'count N', title: 'count 192', status: 'pass' };

/** Changes to a real record that its type does not allow, and the path each message names. */
const REFUSED: [what: string, change: (r: Record<string, unknown>) => void, path: RegExp][] = [
  [
    'a splat kind the detector never reports',
    (r) => {
      r['splats'] = [{ kind: 'gremlin', title: 't', excerpt: '', line: 1 }];
    },
    /^x\.json is not a faultline results\.json: \/splats\/0\/kind/,
  ],
  [
    'an unknown guest RAM backend',
    (r) => {
      (r['qemu'] as Record<string, unknown>)['guestRam'] = 'tmpfs';
    },
    /\/qemu\/guestRam/,
  ],
  [
    'a guest field of the wrong type',
    (r) => {
      r['guest'] = { boots: 'two' };
    },
    /\/guest\/boots/,
  ],
  [
    'null where a field may only be absent',
    (r) => {
      (r['kernel'] as Record<string, unknown>)['release'] = null;
    },
    /\/kernel\/release/,
  ],
  [
    'a guest without its QEMU',
    (r) => {
      delete r['qemu'];
    },
    /qemu/,
  ],
  [
    'a summary count that is not a count',
    (r) => {
      (r['summary'] as Record<string, unknown>)['pass'] = -1;
    },
    /\/summary\/pass/,
  ],
  [
    'timing without its figures',
    (r) => {
      r['timing'] = {};
    },
    /\/timing/,
  ],
  [
    "a subtest title that is not the printed name's text",
    (r) => {
      r['subtests'] = [{ ...titled, title: 192 }];
    },
    /\/subtests\/0\/title/,
  ],
];

t.test('results.json is checked as strictly as its type', async (t) => {
  for (const [what, change, path] of REFUSED)
    t.throws(() => validateRunRecord(reread(guestRun, change), 'x.json'), { message: path }, what);
  t.ok(
    validateRunRecord(
      reread(guestRun, (r) => {
        r['subtests'] = [titled];
      }),
      'x',
    ),
    'a subtest keeps the name its program printed as its title',
  );
  t.ok(
    validateRunRecord(
      reread(guestRun, (r) => {
        r['programs'] = [
          {
            program: 'p',
            command: './p',
            exitCode: null,
            timedOut: true,
            durationMs: 1,
            status: 'error',
            outputFile: 'o',
          },
        ];
      }),
      'x',
    ),
    'a program killed by its timeout has a null exit code',
  );
});

t.test('readGuestRunRecord refuses a run without a guest', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-record-'));
  await writeFile(join(dir, 'host.json'), JSON.stringify(hostRun));
  await writeFile(join(dir, 'guest.json'), JSON.stringify(guestRun));
  t.equal((await readGuestRunRecord(join(dir, 'guest.json'))).qemu.accel, 'tcg');
  await t.rejects(readGuestRunRecord(join(dir, 'host.json')), /is a run without a guest/);
});
