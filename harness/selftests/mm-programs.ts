import type { Backing } from '../results/types.js';

/**
 * The mm selftests faultline runs as suite `mm`: the programs run_vmtests.sh runs on
 * hugetlb, shmem and THP memory (and the neighbours reviewers of those series expect),
 * plus tools/testing/selftests/memfd. The tree's run_vmtests.sh says how each is invoked;
 * this table says what faultline needs beyond that: the memory it exercises (what
 * `--backing` selects on), the guest settings run_vmtests.sh gives it around the call,
 * and how to build it.
 */

/** A /proc/sys setting made just before a program and put back after it. */
export interface GuestSysctl {
  path: string;
  value: number;
  /** Only raise the setting to `value` (run_vmtests.sh's hugepage reservation). */
  atLeast?: boolean;
}

export interface MmProgramSpec {
  name: string;
  /** Category for trees whose run_vmtests.sh predates categories (6.1). */
  category: string;
  /** The memory it exercises; a subtest whose name says which gets that one. */
  backings: readonly Backing[];
  /** Source directory under tools/testing/selftests ('mm', or 'vm' before 6.3, is the default). */
  dir?: 'memfd';
  /** A kselftest shell script, run with the bash pushed next to it. */
  script?: boolean;
  /** Extra libraries to link (statically). */
  libs?: readonly string[];
  /** Files it runs from its directory (built or copied with it). */
  helpers?: readonly string[];
  sysctls?: readonly GuestSysctl[];
  /** Why a --quick run leaves it out (a race reproducer that loops for many minutes under TCG). */
  long?: string;
  /** Invocations for programs run_vmtests.sh does not run (memfd), each on its own memory. */
  ownRuns?: readonly { args: readonly string[]; backings: readonly Backing[] }[];
}

const NR_HUGEPAGES = '/proc/sys/vm/nr_hugepages';
/**
 * run_vmtests.sh raises the 2 MiB reservation to 256 MiB for the hugetlb programs before
 * its "#cleanup" line (and the gup and userfaultfd ones), then puts it back.
 */
const HUGETLB_MIN: GuestSysctl = { path: NR_HUGEPAGES, value: 128, atLeast: true };
/** run_vmtests.sh: "For this test, we need one and just one huge page". */
const ONE_HUGEPAGE: GuestSysctl = { path: NR_HUGEPAGES, value: 1 };

const H: readonly Backing[] = ['hugetlb'];

export const MM_PROGRAMS: readonly MmProgramSpec[] = [
  { name: 'hugepage-mmap', category: 'hugetlb', backings: H, sysctls: [HUGETLB_MIN] },
  {
    name: 'hugepage-shm',
    category: 'hugetlb',
    backings: H,
    sysctls: [
      HUGETLB_MIN,
      { path: '/proc/sys/kernel/shmmax', value: 268435456 },
      { path: '/proc/sys/kernel/shmall', value: 4194304 },
    ],
  },
  { name: 'map_hugetlb', category: 'hugetlb', backings: H, sysctls: [HUGETLB_MIN] },
  { name: 'hugepage-mremap', category: 'hugetlb', backings: H, sysctls: [HUGETLB_MIN] },
  { name: 'hugepage-vmemmap', category: 'hugetlb', backings: H, sysctls: [HUGETLB_MIN] },
  { name: 'hugetlb-madvise', category: 'hugetlb', backings: H, sysctls: [HUGETLB_MIN] },
  { name: 'hugetlb_dio', category: 'hugetlb', backings: H, sysctls: [HUGETLB_MIN] },
  {
    name: 'hugetlb_fault_after_madv',
    category: 'hugetlb',
    backings: H,
    sysctls: [ONE_HUGEPAGE],
    long: 'a race reproducer: 10,000 rounds of two threads over a hugepage, more than 15 min under TCG',
  },
  { name: 'hugetlb_madv_vs_map', category: 'hugetlb', backings: H, sysctls: [ONE_HUGEPAGE] },
  { name: 'gup_test', category: 'gup_test', backings: ['anon', 'hugetlb'], sysctls: [HUGETLB_MIN] },
  { name: 'gup_longterm', category: 'gup_test', backings: ['anon', 'shmem', 'hugetlb'], sysctls: [HUGETLB_MIN] },
  { name: 'mremap_test', category: 'mremap', backings: ['anon'] },
  { name: 'thuge-gen', category: 'hugetlb', backings: H },
  {
    name: 'charge_reserved_hugetlb.sh',
    category: 'hugetlb',
    backings: H,
    script: true,
    helpers: ['write_to_hugetlbfs', 'write_hugetlb_memory.sh'],
  },
  {
    name: 'hugetlb_reparenting_test.sh',
    category: 'hugetlb',
    backings: H,
    script: true,
    helpers: ['write_to_hugetlbfs'],
  },
  {
    name: 'hugetlb-soft-offline',
    category: 'hugetlb',
    backings: H,
    sysctls: [
      { path: NR_HUGEPAGES, value: 8 },
      { path: '/proc/sys/vm/enable_soft_offline', value: 1 },
    ],
  },
  { name: 'hugetlb-read-hwpoison', category: 'hugetlb', backings: H },
  { name: 'mremap_dontunmap', category: 'mremap', backings: ['anon'] },
  { name: 'madv_populate', category: 'madv_populate', backings: ['anon', 'shmem'] },
  { name: 'soft-dirty', category: 'soft_dirty', backings: ['anon', 'shmem'] },
  { name: 'cow', category: 'cow', backings: ['anon', 'shmem', 'hugetlb'] },
  { name: 'khugepaged', category: 'thp', backings: ['anon', 'shmem'] },
  { name: 'transhuge-stress', category: 'thp', backings: ['anon'] },
  { name: 'split_huge_page_test', category: 'thp', backings: ['anon', 'shmem'] },
  { name: 'migration', category: 'migration', backings: ['anon', 'shmem'], libs: ['-lnuma'] },
  { name: 'mkdirty', category: 'mkdirty', backings: ['anon'] },
  {
    name: 'memfd_test',
    category: 'memfd',
    backings: ['shmem', 'hugetlb'],
    dir: 'memfd',
    // memfd's run_hugetlbfs_test.sh wants 8 free hugepages for the hugetlbfs run.
    sysctls: [{ path: NR_HUGEPAGES, value: 8, atLeast: true }],
    ownRuns: [
      { args: [], backings: ['shmem'] },
      { args: ['hugetlbfs'], backings: ['hugetlb'] },
    ],
  },
];

/** Every category suite `mm` knows, in table order. */
export const MM_CATEGORIES: readonly string[] = [...new Set(MM_PROGRAMS.map((p) => p.category))];

export function mmProgramSpec(name: string): MmProgramSpec | undefined {
  return MM_PROGRAMS.find((p) => p.name === name);
}
