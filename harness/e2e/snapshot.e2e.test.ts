import t, { type Test } from 'tap';
import { execa } from 'execa';
import {
  mkdirSync,
  writeFileSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeSync,
  closeSync,
  statSync,
  existsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import type { GuestRunRecord, StagedBinaries } from '../results/types.js';
import { cacheRoot } from '../util/fsutil.js';
import { PROJECT_ROOT } from '../util/project.js';

/**
 * Ready guests from a snapshot, end to end on real parts (Debian 6.12, real QEMU, TCG
 * here): the quick suite run on a booted guest and on a restored one gives the same
 * results; a corrupted snapshot is detected, never resumed, and rebuilt.
 */
// Time: 489 s for this file with a warm cache at load average 22-26 from other work (7 runs of
// faultline). A cold cache adds the Debian downloads and the selftests build when this file runs
// first; 25 min is 3x the warm figure.
t.setTimeout(25 * 60_000);

const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-snapshot-'));

/**
 * The cache these runs use once the first one has filled the shared cache: every entry of the
 * shared cache linked in, but a snapshots/ of its own, empty at first. Whether a run saves or
 * restores then follows from this file's runs alone, not from what other runs (parallel e2e
 * files, other users of the machine) left in, pruned from or corrupted in the shared cache.
 */
function cacheWithOwnSnapshots(): string {
  const root = mkdtempSync(join(tmpdir(), 'faultline-e2e-snapshot-cache-'));
  for (const name of readdirSync(cacheRoot())) {
    if (name !== 'snapshots') symlinkSync(join(cacheRoot(), name), join(root, name));
  }
  return root;
}
let cache = cacheRoot();

async function runFaultline(
  runId: string,
  extra: string[],
): Promise<{ rec: GuestRunRecord; out: string; code?: number }> {
  const r = await execa(
    'node',
    [cli, 'run', '--quick', '--backing', 'anon', '--results', results, '--run-id', runId, ...extra],
    { reject: false, all: true, timeout: 30 * 60_000, env: { FAULTLINE_VERBOSE: '0', FAULTLINE_CACHE: cache } },
  );
  const rec = await readGuestRunRecord(join(results, runId, 'results.json'));
  return { rec, out: String(r.all).slice(-1500), ...(r.exitCode !== undefined ? { code: r.exitCode } : {}) };
}

/** The run's one guest was restored from `key`, with its restore phases in order within ready. */
function restoredFrom(t: Test, rec: GuestRunRecord, key: string, what: string): void {
  const [start, ...more] = rec.guest.starts ?? [];
  const { phases, binaries: _, ...rest } = start ?? { how: 'none', readyMs: NaN };
  t.same(more, [], 'one guest');
  t.same(rest, { how: 'restored', readyMs: rec.guest.bootMs, snapshot: key }, what);
  const at = [phases?.qmpMs, phases?.loadedMs, phases?.sshMs, phases?.checkedMs];
  t.ok(
    at.every((ms, i) => ms !== undefined && ms >= (at[i - 1] ?? 0)) && (phases?.checkedMs ?? Infinity) <= rest.readyMs,
    `its phases in order, within ready: QMP, loaded, SSH, checked at ${at.join(', ')} ms of ${rest.readyMs}`,
  );
}

/** The run's guest starts without how each got its binaries (checked apart). */
const withoutBinaries = (rec: GuestRunRecord) => (rec.guest.starts ?? []).map(({ binaries: _, ...s }) => s);

/** How the run's first guest got its test binaries. */
function binariesOf(rec: GuestRunRecord): StagedBinaries {
  const b = rec.guest.starts?.[0]?.binaries;
  if (!b) throw new Error(`the run's first guest records no binaries: ${JSON.stringify(rec.guest.starts)}`);
  return b;
}

/** Every subtest's result; numbers in names are blanked (pagemap_ioctl names one after the extra pages it counted). */
const statuses = (rec: GuestRunRecord): string[] =>
  rec.subtests.map((s) => `${s.id.replace(/\d+/g, 'N')} ${s.status}`).sort((a, b) => a.localeCompare(b));

/** The snapshot entry `key` of this file's cache. */
function entryOf(key: string): { dir: string; stream: string; sha256: string } {
  const dir = join(cache, 'snapshots', key);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { file: string; sha256: string };
  return { dir, stream: join(dir, meta.file), sha256: meta.sha256 };
}

t.test(
  'the quick suite passes alike booted with its binaries pushed, booted with them in its initramfs, and restored',
  async (t) => {
    const booted = await runFaultline('booted', ['--no-snapshot', '--push-binaries']);
    t.equal(booted.code, 0, `booted run exit 0 (${booted.out})`);
    t.same(withoutBinaries(booted.rec), [{ how: 'booted', readyMs: booted.rec.guest.bootMs, why: '--no-snapshot' }]);
    const pushedAll = binariesOf(booted.rec);
    t.match(pushedAll, { kept: 0, removed: 0 }, 'with --push-binaries a booted guest holds no test binaries');
    const ran = new Set(booted.rec.programs.map((p) => p.program));
    t.ok(
      pushedAll.pushed >= ran.size && ran.size >= 2 && pushedAll.bytes > 1e6,
      `so every program it ran was pushed (${JSON.stringify(pushedAll)}; ran ${[...ran].join(', ')})`,
    );

    // No snapshot in this file's cache yet: the priming run must boot and save one.
    cache = cacheWithOwnSnapshots();
    const prime = await runFaultline('prime', []);
    t.equal(prime.code, 0, `priming run exit 0 (${prime.out})`);
    const key = prime.rec.guest.starts?.[0]?.snapshot ?? '';
    t.match(key, /^[0-9a-f]{24}$/, 'the priming guest names its snapshot entry');
    t.same(
      withoutBinaries(prime.rec),
      [{ how: 'booted', readyMs: prime.rec.guest.bootMs, why: 'no snapshot of this guest yet', snapshot: key }],
      'the priming guest booted, then was saved',
    );
    t.match(
      binariesOf(prime.rec),
      { kept: pushedAll.pushed, pushed: 0, removed: 0, bytes: 0 },
      'its binaries came in its initramfs: the guest checked them, nothing pushed',
    );
    t.same(statuses(prime.rec), statuses(booted.rec), 'same subtests, same results as with the binaries pushed');
    t.ok(existsSync(entryOf(key).stream), 'snapshot stream in the cache');

    const restored = await runFaultline('restored', []);
    t.equal(restored.code, 0, `restored run exit 0 (${restored.out})`);
    restoredFrom(t, restored.rec, key, 'the next guest was restored from it');
    t.match(
      binariesOf(restored.rec),
      { kept: pushedAll.pushed, pushed: 0, removed: 0, bytes: 0 },
      'it held the binaries it was saved with: the guest checked them, nothing pushed',
    );
    t.equal(restored.rec.guest.uname, booted.rec.guest.uname, 'same kernel');
    t.ok(restored.rec.subtests.length > 20, 'the quick suite ran');
    t.same(statuses(restored.rec), statuses(booted.rec), 'same subtests, same results');
    t.equal(restored.rec.splats.length, 0);
    const console = readFileSync(join(results, 'restored', 'console.log'), 'utf8');
    // console.log = the saved guest's boot, marked as replayed, then the restored guest's own output.
    const [replayed = '', own = ''] = console.split('===== faultline: restored guest =====');
    t.match(replayed, /the boot of the saved guest \(snapshot [0-9a-f]+\)/, 'the replayed boot is marked');
    t.match(replayed, /Linux version/, 'console.log keeps the saved boot');
    t.notMatch(own, /Linux version/, 'the restored guest did not boot');
    t.match(own, /faultline: begin uffd-unit-tests\.zeropage/, 'its console is watched as a booted one');
  },
);

t.test('a corrupted snapshot is detected before the guest resumes, and rebuilt', async (t) => {
  const prime = await runFaultline('prime2', ['--filter', 'zeropage']);
  t.equal(prime.code, 0, prime.out);
  // The entry the first test saved.
  const key = prime.rec.guest.starts?.[0]?.snapshot ?? '';
  restoredFrom(t, prime.rec, key, 'restored from the entry the first test saved');
  // Same size, one byte changed in the middle of the stream: in a page's data only the checksum
  // can tell; in a section header QEMU refuses the stream itself. Either way the checksum is named.
  const entry = entryOf(key);
  corruptByte(entry.stream, Math.floor(statSync(entry.stream).size / 2));
  const r = await runFaultline('corrupt', ['--filter', 'zeropage']);
  t.equal(r.code, 0, `exit 0 (${r.out})`);
  t.same(
    withoutBinaries(r.rec),
    [refusedThenSaved(r.rec, key)],
    'the damaged snapshot was refused, the guest booted and was saved again',
  );
  t.equal(r.rec.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/anon')?.status, 'pass');
  const rebuilt = entryOf(key);
  t.ok(existsSync(rebuilt.stream), 'a new snapshot was saved');
  t.not(rebuilt.sha256, entry.sha256, 'with the checksum of its own stream');
  const again = await runFaultline('after-rebuild', ['--filter', 'zeropage']);
  restoredFrom(t, again.rec, key, 'the rebuilt snapshot is used');

  // The stream's first byte (its QEVM magic): QEMU rejects it at once, and the cause is still named.
  corruptByte(entryOf(key).stream, 0);
  const head = await runFaultline('corrupt-head', ['--filter', 'zeropage']);
  t.same(withoutBinaries(head.rec), [refusedThenSaved(head.rec, key)], 'a stream QEMU refuses: its checksum named');
});

/** Overwrite one byte of `path` at `offset` (same size). */
function corruptByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, offset);
  closeSync(fd);
}

/** The start of a run whose snapshot `key` was damaged: booted because of that, and saved again. */
function refusedThenSaved(rec: GuestRunRecord, key: string) {
  return {
    how: 'booted',
    readyMs: rec.guest.bootMs,
    why: `snapshot ${key} unusable: its stream does not match its checksum`,
    snapshot: key,
  };
}

/** A user program named stale-probe printing its version; v1 exits 1, v2 exits 0. */
function probe(version: 1 | 2): string {
  const dir = join(results, `probe-v${version}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'stale-probe.c');
  writeFileSync(
    path,
    `#include <stdio.h>\nint main(void) { printf("stale-probe v${version}\\n"); return ${version === 1 ? 1 : 0}; }\n`,
  );
  return path;
}

t.test('a restored guest holding an older build of a binary runs the new one (issue 25)', async (t) => {
  // A snapshots/ of this test's own: the saved guest is the one that booted with v1.
  cache = cacheWithOwnSnapshots();
  const programRun = (id: string, version: 1 | 2) =>
    runFaultline(id, ['--program', probe(version)]).then((r) => ({
      ...r,
      sub: r.rec.subtests.find((s) => s.id === 'stale-probe/anon'),
    }));
  const v1 = await programRun('probe-save', 1);
  t.match(
    v1.rec.guest.starts,
    [{ how: 'booted', binaries: { kept: 1, pushed: 0, removed: 0 } }],
    'booted with v1 in its initramfs',
  );
  t.match(v1.sub, { status: 'fail', reason: /stale-probe v1/ }, `v1 ran (${v1.out})`);

  const v2 = await programRun('probe-new', 2);
  t.match(
    v2.rec.guest.starts,
    [{ how: 'restored', binaries: { kept: 0, pushed: 1, removed: 0 } }],
    'restored with v1 inside: the guest hash differs, v2 pushed',
  );
  t.equal(v2.sub?.status, 'pass', `v2 ran, not the saved v1 (${v2.out})`);
  const output = readFileSync(join(results, 'probe-new', v2.rec.programs[0]?.outputFile ?? 'none'), 'utf8');
  t.match(output, /stale-probe v2/, "its output is v2's");

  const again = await programRun('probe-kept', 1);
  t.match(again.rec.guest.starts, [{ how: 'restored', binaries: { kept: 1, pushed: 0, bytes: 0 } }], 'v1 kept');
  t.match(again.sub, { status: 'fail', reason: /stale-probe v1/ }, 'and the kept v1 is what ran');
});
