import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRunRecord } from '../results/record.js';
import type { ProgramRun, Status } from '../results/types.js';
import { PROJECT_ROOT } from '../util/project.js';

// Measured: 673 s, and 1,120 s in a loaded full run (mm selftests built once per tree state); the deadline is above the slowest figure.
t.setTimeout(40 * 60_000);

/**
 * Suite mm against the kernel's own runner, in one guest: `--suite vmtests,mm` runs the
 * tree's run_vmtests.sh for the categories, then faultline's invocations of the same programs,
 * and every program must come out the same in both (pass, fail or skip by kselftest's
 * exit-code rule). Debian 6.12's kernel; the hugetlb category and those whose programs
 * finish in seconds to a minute under TCG (thp's take four minutes, and are left out).
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-mm-'));
const faultline = (args: string[], timeoutMin = 40) =>
  execa('node', [cli, 'run', '--results', results, ...args], {
    reject: false,
    all: true,
    timeout: timeoutMin * 60_000,
  });

/** run_vmtests.sh's name for a command ("./bash ./x.sh -a" -> "x.sh -a", "./gup_test -u" -> "gup_test -u"). */
const invocation = (p: ProgramRun): string => p.command.replace(/^\.\/bash /, '').replace(/^\.\//, '');
/** A program the tree cannot compile is missing for run_vmtests.sh: exit 127, a failure there. */
const asRunVmtests = (p: ProgramRun): Status =>
  p.status === 'error' && /does not compile/.test(p.reason ?? '') ? 'fail' : p.status;

/** What run_vmtests.sh runs for the categories compared, by its names. */
const REFERENCE = [
  ...['hugepage-mmap', 'hugepage-shm', 'map_hugetlb', 'hugepage-mremap', 'hugepage-vmemmap', 'hugetlb-madvise'],
  ...['hugetlb_dio', 'hugetlb_fault_after_madv', 'hugetlb_madv_vs_map', 'thuge-gen'],
  ...['charge_reserved_hugetlb.sh -cgroup-v2', 'hugetlb_reparenting_test.sh -cgroup-v2'],
  ...['gup_test -u', 'gup_test -a', 'gup_test -ct -F 0x1 0 19 0x1000', 'gup_longterm'],
  ...['mremap_test', 'mremap_dontunmap', 'madv_populate', 'cow', 'mkdirty'],
];
/** run_vmtests.sh runs these only with -d; suite mm runs them, last. */
const DESTRUCTIVE = ['hugetlb-soft-offline', 'hugetlb-read-hwpoison'];

t.test('suite mm and run_vmtests.sh agree on every program, in one guest', async (t) => {
  const categories = 'hugetlb,gup_test,mremap,madv_populate,mkdirty,cow';
  const r = await faultline([
    '--suite',
    'vmtests,mm',
    '--category',
    categories,
    '--backing',
    'hugetlb,shmem,anon',
    '--mem',
    '2048',
    '--retries',
    '0',
    '--run-id',
    'compare',
  ]);
  const rec = await readRunRecord(join(results, 'compare', 'results.json'));
  t.notOk(rec.infraError, `no infrastructure error: ${rec.infraError ?? ''} ${r.all.slice(-800)}`);
  const reference = rec.subtests.filter((s) => s.suite === 'vmtests');
  const programs = rec.programs.filter((p) => p.program !== 'run_vmtests.sh');
  const mine = programs.filter((p) => !DESTRUCTIVE.includes(invocation(p)));
  t.same(reference.map((s) => s.name).sort(), [...REFERENCE].sort(), "run_vmtests.sh ran the categories' programs");
  t.same(
    programs.slice(-DESTRUCTIVE.length).map(invocation),
    DESTRUCTIVE,
    'suite mm also runs the destructive programs, last',
  );
  t.same(
    mine.map((p) => [invocation(p), asRunVmtests(p)]).sort(),
    reference.map((s) => [s.name, s.status]).sort(),
    'each program: the same verdict in suite mm as in run_vmtests.sh',
  );
  t.equal(
    reference.find((s) => s.name === 'charge_reserved_hugetlb.sh -cgroup-v2')?.status,
    'pass',
    'the cgroup scripts find pgrep and killall --wait in the guest',
  );
  // The same verdicts, with the detail run_vmtests.sh does not keep.
  const mmSubtests = rec.subtests.filter((s) => s.suite === 'mm');
  t.ok(mmSubtests.length > 600, `suite mm reports each program's own results (${mmSubtests.length})`);
  t.ok(
    mmSubtests.every((s) => s.backing !== undefined),
    'every subtest carries its backing',
  );
  const anyFail = reference.some((s) => s.status === 'fail');
  t.equal(r.exitCode, anyFail ? 1 : 0, 'exit code follows the verdicts');
});

t.test('--list: the categories and programs the tree offers, nothing booted', async (t) => {
  const r = await faultline(['--list', '--suite', 'mm'], 10);
  t.equal(r.exitCode, 0, r.all.slice(-500));
  t.match(r.stdout, /suite mm: /);
  t.match(r.stdout, /category hugetlb \(14 commands\)/);
  t.match(r.stdout, /bash charge_reserved_hugetlb\.sh -cgroup-v2/);
  t.match(r.stdout, /khugepaged\s+anon,shmem\s+failed: .*does not compile/, "the tree's broken program is named");
});

t.test('bad --category: one line naming the categories, exit 2', async (t) => {
  const r = await faultline(['--suite', 'mm', '--category', 'hugetbl'], 2);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, /unknown category 'hugetbl' for suite mm: choose from hugetlb, gup_test/);
  const noSuite = await faultline(['--category', 'cow'], 2);
  t.equal(noSuite.exitCode, 2);
  t.match(noSuite.stderr, /--category picks categories of suite mm: add --suite mm/);
});
