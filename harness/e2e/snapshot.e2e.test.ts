import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, openSync, readFileSync, writeSync, closeSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import type { GuestRunRecord } from '../results/types.js';
import { cacheRoot } from '../util/fsutil.js';
import { PROJECT_ROOT } from '../util/project.js';

/**
 * Ready guests from a snapshot, end to end on real parts (Debian 6.12, real QEMU, TCG
 * here): the quick suite run on a booted guest and on a restored one gives the same
 * results; a corrupted snapshot is detected, never resumed, and rebuilt.
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-snapshot-'));

async function runFaultline(
  runId: string,
  extra: string[],
): Promise<{ rec: GuestRunRecord; out: string; code?: number }> {
  const r = await execa(
    'node',
    [cli, 'run', '--quick', '--backing', 'anon', '--results', results, '--run-id', runId, ...extra],
    { reject: false, all: true, timeout: 30 * 60_000, env: { FAULTLINE_VERBOSE: '0' } },
  );
  const rec = await readGuestRunRecord(join(results, runId, 'results.json'));
  return { rec, out: String(r.all).slice(-1500), ...(r.exitCode !== undefined ? { code: r.exitCode } : {}) };
}

/** Every subtest's result; numbers in names are blanked (pagemap_ioctl names one after the extra pages it counted). */
const statuses = (rec: GuestRunRecord): string[] =>
  rec.subtests.map((s) => `${s.id.replace(/\d+/g, 'N')} ${s.status}`).sort((a, b) => a.localeCompare(b));

/** The entry a run's guest was restored from or saved to. */
function entryOf(rec: GuestRunRecord): { dir: string; stream: string; sha256: string } {
  const key = rec.guest.starts?.[0]?.snapshot ?? '';
  const dir = join(cacheRoot(), 'snapshots', key);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { file: string; sha256: string };
  return { dir, stream: join(dir, meta.file), sha256: meta.sha256 };
}

t.test('the quick suite passes alike on a booted guest and on one restored from a snapshot', async (t) => {
  const booted = await runFaultline('booted', ['--no-snapshot']);
  t.equal(booted.code, 0, `booted run exit 0 (${booted.out})`);
  t.same(booted.rec.guest.starts, [{ how: 'booted', readyMs: booted.rec.guest.bootMs, why: '--no-snapshot' }]);

  // Makes sure a snapshot exists (saved by this boot, or restored from one already there).
  const prime = await runFaultline('prime', ['--filter', 'zeropage']);
  t.equal(prime.code, 0, `priming run exit 0 (${prime.out})`);
  t.ok(prime.rec.guest.starts?.[0]?.snapshot, 'the guest was saved, or restored from a snapshot');
  t.ok(existsSync(entryOf(prime.rec).stream), 'snapshot stream in the cache');

  const restored = await runFaultline('restored', []);
  t.equal(restored.code, 0, `restored run exit 0 (${restored.out})`);
  t.match(restored.rec.guest.starts, [{ how: 'restored', snapshot: prime.rec.guest.starts?.[0]?.snapshot }]);
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
});

t.test('a corrupted snapshot is detected before the guest resumes, and rebuilt', async (t) => {
  const prime = await runFaultline('prime2', ['--filter', 'zeropage']);
  t.equal(prime.code, 0, prime.out);
  const entry = entryOf(prime.rec);
  // Same size, one byte changed in the middle of guest RAM: only the checksum can tell.
  const fd = openSync(entry.stream, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, Math.floor(statSync(entry.stream).size / 2));
  closeSync(fd);
  const r = await runFaultline('corrupt', ['--filter', 'zeropage']);
  t.equal(r.code, 0, `exit 0 (${r.out})`);
  t.match(r.rec.guest.starts, [{ how: 'booted', why: /does not match its checksum/ }]);
  t.equal(r.rec.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/anon')?.status, 'pass');
  const rebuilt = entryOf(r.rec);
  t.ok(existsSync(rebuilt.stream), 'a new snapshot was saved');
  t.not(rebuilt.sha256, '', 'with its checksum');
  const again = await runFaultline('after-rebuild', ['--filter', 'zeropage']);
  t.match(again.rec.guest.starts, [{ how: 'restored' }], 'the rebuilt snapshot is used');
});
