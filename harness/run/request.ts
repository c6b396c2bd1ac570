import type { KernelSpec } from '../kernel/bootable.js';
import type { Backing, GuestRam, RunRecord } from '../results/types.js';

export type { KernelSpec };

export const ACCEL_REQUESTS = ['auto', 'kvm', 'tcg'] as const;
export type AccelRequest = (typeof ACCEL_REQUESTS)[number];

/**
 * Writes the views of a finished run into its directory (TAP, JUnit, the latency page): report/
 * has them, and the CLI decides which to write. run/ and nightly/ only produce records.
 */
export type RunViewWriter = (dir: string, record: RunRecord) => Promise<void>;

/**
 * The memory a run tests when no --backing is given: `faultline run`, `series` and a bisect
 * without a backing of its own (--splat, --program). A kernel splat can come from any of them:
 * a WARN on shmem's write-protect path never shows on anon alone.
 */
export const DEFAULT_BACKINGS: readonly Backing[] = ['hugetlb', 'shmem', 'anon'];

/** Everything `faultline run` needs; the CLI, nightly, series and bisect all build one of these. */
export interface RunRequest {
  kernel: KernelSpec;
  /** Kernel tree to build the selftests from. Default: the Debian linux-source matching the kernel. */
  selftestsTree?: string;
  /** Pre-built selftest binaries dir (e.g. from `faultline build`); skips building them. */
  selftestsDir?: string;
  suites: string[];
  /** The user's own C programs (`--program FILE.c`), run after the suites once per backing. */
  programs?: string[];
  backings: Backing[];
  memMiB: number;
  smp: number;
  accel: AccelRequest;
  guestRam: GuestRam;
  /** Per-test timeout (seconds). */
  timeoutSec: number;
  /** Deadline for boot to SSH-ready (seconds). */
  bootTimeoutSec: number;
  /** Parent directory of run directories (default ./results). */
  resultsRoot: string;
  runId?: string;
  quick: boolean;
  filter?: string;
  /** Categories of suite mm to run (`--category`); none: all. */
  categories?: string[];
  keepVm: boolean;
  hugepages2m: number;
  hugepages1g: number;
  /** Guest NUMA nodes (QEMU -numa); 1: none. */
  numaNodes?: number;
  aptOptions?: string[];
  /** Ask apt for the Debian kernel's version even when the cached answer is fresh (--refresh). */
  refresh?: boolean;
  /** Never touch the network: caches only, exit 4 naming what is missing (--offline). */
  offline?: boolean;
  /** Extra kernel command line. */
  cmdline?: string;
  /**
   * Reruns of each failing or erroring subtest on its own; one that passes on a retry is
   * `flaky`. series and bisect pass 0: their own repetition policies must see every attempt.
   */
  retries: number;
  /** Boot every guest instead of restoring ready ones from a snapshot (--no-snapshot). */
  noSnapshot?: boolean;
  /** Push the test binaries into a booted guest over SSH instead of appending them to its initramfs. */
  pushBinaries?: boolean;
  /** Exit 1 when a subtest is flaky (default: a run whose only trouble is flakiness exits 0). */
  flakyIsFailure?: boolean;
  /** Known-issues files whose entries mark expected failures (known-issues.ts); none: nothing is known. */
  knownIssues?: string[];
  /** Exit 1 when a known issue is present (default: a run whose only failures are known exits 0). */
  knownIsFailure?: boolean;
}
