import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import { compareRuns } from '../analysis/compare.js';
import { PROJECT_ROOT } from '../util/project.js';

// Measured: 53 s cold, 212 s in a loaded full run (6.1 package and source downloaded once); the deadline is above the slowest figure.
t.setTimeout(20 * 60_000);

/**
 * End to end on a stable kernel, on real parts: Debian's 6.1 kernel and linux-source-6.1
 * (downloaded with apt-get on first use, cached), a real QEMU guest (TCG when KVM does
 * not work). 6.1's selftests predate uffd-unit-tests: its stress program is the old
 * userfaultfd.c, with other test-type words and its unit checks inside every mode.
 * No false results: every backing it can test runs under its own word, the one it
 * cannot is a skip naming the program, and its checks are subtests.
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-61-'));
const faultline = (args: string[], timeoutMin = 30) =>
  execa('node', [cli, ...args], {
    reject: false,
    all: true,
    timeout: timeoutMin * 60_000,
    env: { FAULTLINE_VERBOSE: '0' },
  });

const RAN_BACKINGS = ['anon', 'shmem', 'hugetlb', 'hugetlb-private'];

t.test("faultline run --debian-kernel 6.1 --quick: userfaultfd.c's checks per backing, no false FAIL", async (t) => {
  const r = await faultline([
    'run',
    '--debian-kernel',
    '6.1',
    '--quick',
    '--backing',
    'hugetlb,shmem,anon',
    '--results',
    results,
    '--run-id',
    'stable61',
  ]);
  t.equal(r.exitCode, 0, `exit 0 (output tail: ${String(r.all).slice(-2000)})`);
  const rec = await readGuestRunRecord(join(results, 'stable61', 'results.json'));
  t.equal(rec.verdict, 'pass');
  t.equal(rec.kernel.source, 'debian-package');
  t.match(rec.guest.uname, /^6\.1\./);
  t.same(
    rec.subtests
      .filter((s) => s.status !== 'pass' && s.status !== 'skip')
      .map((s) => `${s.id}: ${s.status} ${s.reason ?? ''}`),
    [],
    'no fail or error',
  );
  t.same(rec.splats, []);

  const ran = rec.subtests.filter((s) => s.status !== 'skip');
  t.ok(ran.length >= 20, `${ran.length} subtests ran (>= 20)`);
  t.ok(
    ran.every(
      (s) => s.program === 'uffd-stress' && s.backing !== undefined && s.id === `uffd-stress/${s.name}/${s.backing}`,
    ),
    'ids are uffd-stress/<check>/<backing>',
  );
  const ids = new Set(ran.map((s) => s.id));
  for (const b of RAN_BACKINGS) {
    for (const check of ['stress', 'zeropage', 'signal', 'events'])
      t.ok(ids.has(`uffd-stress/${check}/${b}`), `${check} on ${b} passed`);
  }
  // Minor faults need shared memory: 6.1 runs them on shmem and hugetlb_shared only.
  t.ok(ids.has('uffd-stress/minor/shmem') && ids.has('uffd-stress/minor/hugetlb'), 'minor on shmem and hugetlb passed');
  t.notOk(ids.has('uffd-stress/minor/hugetlb-private'), 'no minor check on private hugetlb');

  const commands = new Map(rec.programs.filter((p) => p.program === 'uffd-stress').map((p) => [p.backing, p.command]));
  t.equal(
    commands.get('hugetlb'),
    './uffd-stress hugetlb_shared 8 4 /dev/hugepages/uffd-stress-hugetlb',
    "shared hugetlb under 6.1's word, on a hugetlbfs file",
  );
  t.equal(commands.get('hugetlb-private'), './uffd-stress hugetlb 8 4', '6.1\'s "hugetlb" is the private mapping');

  const shmemPrivate = rec.subtests.find((s) => s.id === 'uffd-stress/stress/shmem-private');
  t.equal(shmemPrivate?.status, 'skip');
  t.equal(shmemPrivate?.backing, 'shmem-private');
  t.match(
    shmemPrivate?.reason,
    /uffd-stress, built from the tree's userfaultfd\.c, has no test type for shmem-private/,
  );
  t.equal(rec.programs.find((p) => p.backing === 'shmem-private')?.status, 'skip');
  // Asked for and reported, each as a skip that says why: an empty list would prove nothing.
  const unit = rec.subtests.filter((s) => s.program === 'uffd-unit-tests');
  t.not(unit.length, 0, 'uffd-unit-tests is reported');
  t.same(
    unit
      .filter((s) => s.status !== 'skip' || s.reason !== 'the tree has no uffd-unit-tests (added in 6.4)')
      .map((s) => `${s.id}: ${s.status} ${s.reason ?? ''}`),
    [],
    'uffd-unit-tests: too old, a skip',
  );
});

t.test('latency suites run 6.1 and 6.12 on one clocksource, so their times compare', async (t) => {
  // Left to itself 6.1 finds the vCPUs' TSCs unsynchronized under TCG and runs on hpet, 6.12 on
  // tsc: a two-kernel nightly then compared hpet times with tsc times.
  const recs = [];
  for (const kernel of ['6.1', '6.12']) {
    const id = `clock-${kernel}`;
    const r = await faultline([
      'run',
      '--debian-kernel',
      kernel,
      '--suite',
      'uffd-lat,postcopy',
      '--quick',
      '--backing',
      'shmem',
      '--filter',
      'minor',
      '--results',
      results,
      '--run-id',
      id,
    ]);
    t.equal(r.exitCode, 0, `${kernel}: exit 0 (output tail: ${String(r.all).slice(-2000)})`);
    const rec = await readGuestRunRecord(join(results, id, 'results.json'));
    t.match(rec.qemu.command.join(' '), /-append [^]*\btsc=reliable clocksource=tsc\b/, `${kernel}: asked for tsc`);
    t.equal(rec.guest.clocksource, 'tsc', `${kernel}: the guest runs on tsc`);
    t.ok(
      rec.subtests.some((s) => s.id === 'uffd-lat/minor-continue/shmem/blocking' && s.status === 'pass') &&
        rec.subtests.some((s) => s.id === 'postcopy/minor/shmem' && s.status === 'pass'),
      `${kernel}: both latency suites measured`,
    );
    recs.push(rec);
  }
  const c = compareRuns(recs.slice(0, 1), recs.slice(1));
  t.ok(
    c.metrics.some((m) => m.unit === 'ns'),
    'times compared',
  );
  t.same(
    c.metrics.filter((m) => m.invalidReason !== undefined).map((m) => m.key),
    [],
    'no change is invalid',
  );
});
