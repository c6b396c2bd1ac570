import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { backingNamed, mmSuite } from './mm.js';
import { parseVmtestsTap, vmtestsSuite } from './vmtests.js';
import { REASON_MAX_CHARS } from './parsers/ktap.js';
import type { GuestCommand, ProgramOutput, SuiteContext } from './types.js';
import type { SelftestProgram } from '../results/selftests.js';

// Real outputs of Debian 6.12.117's mm selftests in a faultline guest (TCG, 2 vCPUs, 2 GiB):
// `faultline run --suite mm --mem 2048`, copied from results/<run>/output/.
const capture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', 'mm', name), 'utf8');
const ctx: SuiteContext = {
  backings: ['hugetlb', 'shmem', 'anon'],
  smp: 2,
  memMiB: 2048,
  hugepages2m: 64,
  quick: false,
  programs: [],
};

function parse(
  program: string,
  args: string[],
  file: string,
  exitCode: number | null,
  backing: GuestCommand['backing'] = 'anon',
  signal?: string,
) {
  const cmd: GuestCommand = { program, args, backing, timeoutSec: 900, label: 'x' };
  const out: ProgramOutput = {
    output: capture(file),
    exitCode,
    timedOut: false,
    durationMs: 1000,
    ...(signal ? { signal } : {}),
  };
  return mmSuite.parse(cmd, out, ctx);
}

t.test('cow: 670 KTAP results, each with a unique name and the memory its [RUN] line names', async (t) => {
  const p = parse('cow', [], 'mm.cow.txt', 0);
  t.equal(p.status, 'pass');
  t.equal(p.subtests.length, 670);
  t.equal(new Set(p.subtests.map((s) => s.id)).size, 670, 'ids unique');
  // Its own "# Totals: pass:214 fail:0 xfail:4 xpass:0 skip:452": an expected failure is a pass.
  t.equal(p.subtests.filter((s) => s.status === 'pass').length, 218);
  t.equal(p.subtests.filter((s) => s.status === 'skip').length, 452);
  const hugetlb = p.subtests.filter((s) => s.backing === 'hugetlb');
  t.ok(hugetlb.length > 0 && hugetlb.every((s) => /hugetlb/.test(s.name)), 'hugetlb cases carry the hugetlb backing');
  t.ok(
    p.subtests.some((s) => s.backing === 'hugetlb-1g'),
    'the 1048576 kB cases carry hugetlb-1g',
  );
  t.equal(p.subtests[0]?.name, 'Basic COW after fork() ... with base page: No leak from parent into child');
  t.equal(
    p.subtests[1]?.name,
    'Basic COW after fork() ... with swapped out base page: test 2',
    'a result without a name ("ok 2 # SKIP ...") is named by its heading and number',
  );
});

t.test('hugetlb-read-hwpoison killed by the SIGBUS of its MADV_HWPOISON: a failure with its last line', async (t) => {
  // Captured with `faultline run --suite vmtests,mm --category hugetlb --backing hugetlb --mem 2048`:
  // the console says "Memory failure: 0x2501: Sending SIGBUS to hugetlb-read-hw". sshd cannot name
  // SIGBUS (it sends "SIG@openssh.com"), so the reason says only that a signal killed it.
  const p = parse('hugetlb-read-hwpoison', [], 'mm.hugetlb-read-hwpoison.txt', null, 'hugetlb');
  t.equal(p.status, 'fail', 'a crashed test failed, as run_vmtests.sh counts it');
  t.same(
    p.subtests.map((s) => [s.id, s.status, s.reason]),
    [
      [
        'hugetlb-read-hwpoison',
        'fail',
        'hugetlb-read-hwpoison was killed by a signal: ... HugeTLB read HWPOISON test...',
      ],
    ],
  );
});

t.test('memfd_test on hugetlbfs aborts: the signal named, as sshd names SIGABRT', async (t) => {
  const p = parse('memfd_test', ['hugetlbfs'], 'mm.memfd_test_hugetlbfs.txt', null, 'hugetlb', 'SIGABRT');
  t.equal(p.status, 'fail');
  t.match(p.subtests.at(-1)?.reason, /^memfd_test was killed by SIGABRT: fchmod\(.*\) didn't fail as expected$/);
});

t.test('mremap_test: its four failures are failed subtests, and the exit code is the reason', async (t) => {
  const p = parse('mremap_test', [], 'mm.mremap_test.txt', 1);
  t.equal(p.status, 'fail');
  t.match(p.reason, /^exit 1: # Totals: pass:12 fail:4/);
  const failed = p.subtests.filter((s) => s.status === 'fail');
  t.equal(failed.length, 4);
  t.match(failed[0]?.name, /2GB mremap - Source PUD-aligned/);
  t.same(
    failed.map((s) => s.reason),
    Array(4).fill('Failed to map source region: Cannot allocate memory'),
    'each failure says why: the "# " line printed before its "not ok"',
  );
  t.notOk(
    p.subtests.some((s) => s.name === 'exit status'),
    'the failures explain the exit code',
  );
});

t.test('gup_test -u on a kernel without CONFIG_GUP_TEST: a skip named by its number, program passes', async (t) => {
  const p = parse('gup_test', ['-u'], 'mm.gup_test_-u.txt', 0);
  t.equal(p.status, 'pass', 'exit 0 is what run_vmtests.sh counts');
  t.same(
    p.subtests.map((s) => [s.id, s.status, s.reason]),
    [['gup_test -u/test 1', 'skip', 'Please run this test as root']],
  );
});

t.test('exit codes beside KTAP: a crash after passing results is not hidden', async (t) => {
  const p = parse('transhuge-stress', ['-d', '20'], 'mm.transhuge-stress_-d_20.txt', 139);
  t.equal(p.status, 'fail');
  t.same(
    p.subtests.map((s) => [s.name, s.status]),
    [
      ['Completed', 'pass'],
      ['exit status', 'fail'],
    ],
  );
  const ok = parse('transhuge-stress', ['-d', '20'], 'mm.transhuge-stress_-d_20.txt', 0);
  t.same(
    ok.subtests.map((s) => s.status),
    ['pass'],
  );
});

t.test('backingNamed: what a subtest name says wins over the program default', async (t) => {
  t.equal(backingNamed('Basic COW after fork() with hugetlb (2048 kB)', 'anon'), 'hugetlb');
  t.equal(backingNamed('R/O longterm GUP pin in MAP_SHARED file mapping ... with memfd', 'anon'), 'shmem');
  t.equal(backingNamed('Completed', 'anon'), 'anon');
});

t.test('plan: categories, backings, --quick and destructive programs last', async (t) => {
  const prog = (name: string, category: string, args: string[] = [], destructive = false): SelftestProgram => ({
    name,
    status: 'built',
    mmRuns: [
      {
        category,
        args,
        backings: name === 'cow' ? ['anon', 'shmem', 'hugetlb'] : ['hugetlb'],
        ...(destructive ? { destructive } : {}),
      },
    ],
  });
  const programs = [
    prog('hugepage-mmap', 'hugetlb'),
    prog('hugetlb-soft-offline', 'hugetlb', [], true),
    prog('hugetlb_fault_after_madv', 'hugetlb'),
    prog('cow', 'cow'),
  ];
  programs.push({
    name: 'hugetlb_dio',
    status: 'unavailable',
    reason: "the tree's run_vmtests.sh does not run hugetlb_dio",
  });
  const labels = (c: Partial<SuiteContext>) => mmSuite.plan({ ...ctx, programs, ...c }).map((x) => x.program);
  t.same(labels({}), ['hugepage-mmap', 'hugetlb_fault_after_madv', 'cow', 'hugetlb_dio', 'hugetlb-soft-offline']);
  t.same(labels({ categories: ['cow'] }), ['cow']);
  t.same(labels({ backings: ['shmem'] }), ['cow'], 'hugetlb-only programs need --backing hugetlb');
  const quick = mmSuite.plan({ ...ctx, programs, quick: true });
  t.match(quick.find((c) => c.program === 'hugetlb_fault_after_madv')?.skipReason, /--quick/);
  const shm = mmSuite.plan({ ...ctx, programs: [prog('hugepage-shm', 'hugetlb')] })[0];
  t.same(
    shm?.sysctls?.map((s) => s.path),
    ['/proc/sys/vm/nr_hugepages', '/proc/sys/kernel/shmmax', '/proc/sys/kernel/shmall'],
  );
  t.equal(shm?.settle, true, 'hugetlb programs run after drop_caches + compaction, as in run_vmtests.sh');
});

t.test("run_vmtests.sh's TAP: one subtest per program, its programs' own KTAP behind '# ' left alone", async (t) => {
  const hugetlb = parseVmtestsTap(capture('vmtests.hugetlb.txt'));
  t.equal(hugetlb.length, 12, 'its plan says 1..12');
  t.same(
    hugetlb.filter((s) => s.status !== 'pass').map((s) => [s.name, s.status, s.reason]),
    [
      ['hugetlb_fault_after_madv', 'skip', undefined],
      ['hugetlb_madv_vs_map', 'skip', undefined],
      [
        'charge_reserved_hugetlb.sh -cgroup-v2',
        'fail',
        'exit 127: ./run_vmtests.sh: line 231: ./charge_reserved_hugetlb.sh: cannot execute: required file not found',
      ],
      [
        'hugetlb_reparenting_test.sh -cgroup-v2',
        'fail',
        'exit 127: ./run_vmtests.sh: line 231: ./hugetlb_reparenting_test.sh: cannot execute: required file not found',
      ],
    ],
    'a failure says what its program printed last, without the banner run_test puts around it',
  );
  // The same category once the guest had /bin/bash, pgrep and killall --wait (the capture above predates them).
  const clean = parseVmtestsTap(capture('vmtests.hugetlb.clean.txt'));
  t.equal(clean.length, 12);
  t.same(
    clean.filter((s) => s.status !== 'pass'),
    [],
    'charge_reserved_hugetlb.sh and hugetlb_reparenting_test.sh pass',
  );
  const five = parseVmtestsTap(capture('vmtests.gup_test_mremap_madv_populate_cow_mkdirty.txt'));
  t.same(
    five.map((s) => s.name),
    [
      'gup_test -u',
      'gup_test -a',
      'gup_test -ct -F 0x1 0 19 0x1000',
      'gup_longterm',
      'mremap_test',
      'mremap_dontunmap',
      'madv_populate',
      'cow',
      'mkdirty',
    ],
    "cow's 670 results inside are not run_vmtests.sh's",
  );
  const mremap = five.find((s) => s.name === 'mremap_test');
  t.equal(mremap?.status, 'fail');
  // mremap_test printed 40 lines: the reason keeps the last of them, nearest first, bounded.
  t.match(
    mremap?.reason,
    /^exit 1: # Totals: pass:12 fail:4 xfail:3 xpass:0 skip:0 error:0 \| ok 19 mremap move 1mb .* \| …$/,
  );
  t.ok((mremap?.reason?.length ?? 0) <= 'exit 1: '.length + REASON_MAX_CHARS, 'bounded');
});

t.test('suite vmtests is a reference: its failures are not retried', async (t) => {
  const cmd: GuestCommand = { program: 'run_vmtests.sh', args: ['-t', 'mremap'], timeoutSec: 60, label: 'v' };
  t.ok(vmtestsSuite.isolate !== undefined, 'the suite says how its subtests are retried');
  t.equal(vmtestsSuite.isolate?.(cmd, 'run_vmtests.sh/mremap_test', ctx), undefined);
});
