import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hugetlbfsMountOf, parseVmtestsScript, shellWords } from './vmtests-script.js';
import { mmRunsOf } from './mm-build.js';
import { MM_PROGRAMS } from './mm-programs.js';

// The trees' own run_vmtests.sh, copied unchanged (fixtures/README.md).
const script = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

t.test('shellWords: quotes removed, a trailing comment dropped', async (t) => {
  t.same(shellWords('./uffd-stress hugetlb "$half_ufd_size_MB" 32'), [
    './uffd-stress',
    'hugetlb',
    '$half_ufd_size_MB',
    '32',
  ]);
  t.same(shellWords(`./x 'a b' c # note`), ['./x', 'a b', 'c']);
  t.same(shellWords('./x ""'), ['./x', '']);
});

t.test('6.12 run_vmtests.sh: categories, default-mode gup tests, destructive block', async (t) => {
  const inv = parseVmtestsScript(script('run_vmtests.6.12.117.sh'));
  const hugetlb = inv.filter((i) => i.category === 'hugetlb').map((i) => i.argv.join(' '));
  t.same(hugetlb, [
    './hugepage-mmap',
    './hugepage-shm',
    './map_hugetlb',
    './hugepage-mremap',
    './hugepage-vmemmap',
    './hugetlb-madvise',
    './hugetlb_dio',
    './hugetlb_fault_after_madv',
    './hugetlb_madv_vs_map',
    './thuge-gen',
    './charge_reserved_hugetlb.sh -cgroup-v2',
    './hugetlb_reparenting_test.sh -cgroup-v2',
    './hugetlb-soft-offline',
    './hugetlb-read-hwpoison',
  ]);
  t.same(
    inv.filter((i) => i.destructive).map((i) => i.argv[0]),
    ['./hugetlb-soft-offline', './hugetlb-read-hwpoison'],
  );
  // The -a matrix (inside run_gup_matrix and the `if $RUN_ALL` branch) is not a default run.
  t.same(
    inv.filter((i) => i.category === 'gup_test').map((i) => i.argv.join(' ')),
    ['./gup_test -u', './gup_test -a', './gup_test -ct -F 0x1 0 19 0x1000', './gup_longterm'],
  );
  t.same(
    inv.filter((i) => i.category === 'thp').map((i) => i.argv.join(' ')),
    [
      './khugepaged',
      './khugepaged -s 2',
      './transhuge-stress -d 20',
      './split_huge_page_test ${SPLIT_HUGE_PAGE_TEST_XFS_PATH}',
    ],
  );
  t.ok(
    inv.some((i) => i.argv.join(' ') === 'bash ./va_high_addr_switch.sh'),
    'interpreter words kept',
  );
});

t.test('6.12: faultline runs every invocation of its programs, with the arguments resolved', async (t) => {
  const inv = parseVmtestsScript(script('run_vmtests.6.12.117.sh'));
  const runs = MM_PROGRAMS.flatMap((p) => mmRunsOf(p, inv).map((r) => ({ p: p.name, ...r })));
  t.notOk(
    runs.some((r) => r.unresolved),
    'no argument left unresolved',
  );
  t.same(runs.find((r) => r.p === 'split_huge_page_test')?.args, [], 'no XFS: no path argument');
  t.same(
    runs.filter((r) => r.p === 'memfd_test').map((r) => [r.args, r.backings]),
    [
      [[], ['shmem']],
      [['hugetlbfs'], ['hugetlb']],
    ],
  );
  for (const p of MM_PROGRAMS)
    t.ok(
      runs.some((r) => r.p === p.name),
      `${p.name} has a run`,
    );
});

t.test('6.1 run_vmtests.sh: no categories; $mnt is the hugetlbfs it mounts at ./huge', async (t) => {
  const text = script('run_vmtests.6.1.192.sh');
  const inv = parseVmtestsScript(text);
  t.equal(hugetlbfsMountOf(text), './huge');
  t.equal(hugetlbfsMountOf(script('run_vmtests.6.12.117.sh')), undefined, '6.12 mounts none');
  t.notOk(inv.some((i) => i.category !== undefined));
  const mremap = MM_PROGRAMS.find((p) => p.name === 'hugepage-mremap');
  const runs = mremap ? mmRunsOf(mremap, inv, './huge') : [];
  t.equal(runs.length, 1);
  t.equal(runs[0]?.category, 'hugetlb', "the category comes from faultline's table");
  t.same(runs[0]?.args, ['./huge/huge_mremap']);
  t.equal(runs[0]?.hugetlbfsDir, './huge');
  t.notOk(runs[0]?.unresolved);
  const cow = MM_PROGRAMS.find((p) => p.name === 'cow');
  t.equal(cow ? mmRunsOf(cow, inv).length : -1, 0, '6.1 has no cow in run_vmtests.sh');
});
