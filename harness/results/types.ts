/**
 * The result records faultline writes and reads. results.json is the source of truth;
 * TAP, junit.xml, HTML and KCIDB are views of it. Anything read back from disk goes
 * through validateRunRecord() (record.ts), never a bare cast.
 */
import type { KnownIssueOutcome } from './known-issues.js';

/** Why a program ran again: the subtests a died program had not reached, or a failed one alone. */
export const PROGRAM_PURPOSES = ['resume', 'retry'] as const;
/** Where a run's kernel came from. */
export const KERNEL_SOURCES = ['debian-package', 'path', 'build'] as const;
/** How a guest started. */
export const GUEST_STARTS = ['booted', 'restored'] as const;

/**
 * `flaky`: failed or errored, then passed when rerun on its own (`--retries`); every
 * attempt is kept in SubtestResult.attempts.
 */
export const STATUSES = ['pass', 'fail', 'skip', 'error', 'flaky'] as const;
export type Status = (typeof STATUSES)[number];

/** Memory that a test's pages live on inside the guest. */
export const BACKINGS = [
  'anon',
  'shmem',
  'shmem-private',
  'shmem-thp',
  'hugetlb',
  'hugetlb-private',
  'hugetlb-1g',
] as const;
export type Backing = (typeof BACKINGS)[number];

/** How guest RAM itself is backed on the host (QEMU memory backend). */
export const GUEST_RAMS = ['anon', 'shmem', 'hugetlb'] as const;
export type GuestRam = (typeof GUEST_RAMS)[number];

export const ACCELS = ['kvm', 'tcg'] as const;
export type Accel = (typeof ACCELS)[number];

export interface Metric {
  name: string;
  value: number;
  unit: string;
}

/** A kernel complaint found on the serial console. */
export interface Splat {
  kind: SplatKind;
  /** First line of the report, e.g. "BUG: KASAN: use-after-free in foo+0x12/0x40". */
  title: string;
  /** The report's lines (bounded), for the log excerpt in reports. */
  excerpt: string;
  /** The test program that was running when the kernel printed it (from the kmsg markers). */
  test?: string;
  /**
   * The subtest that was running: the last subtest line the program had printed when the
   * report's first line reached the console (both timed on arrival at the host).
   */
  subtest?: string;
  /** Line number in console.log where it starts (1-based). */
  line: number;
  /** The known issue (known-issues.ts) that explains it: it does not fail the run. */
  known?: string;
}

export const SPLAT_KINDS = [
  'oops',
  'bug',
  'warning',
  'kasan',
  'kfence',
  'ubsan',
  'soft-lockup',
  'hard-lockup',
  'hung-task',
  'rcu-stall',
  'panic',
] as const;
export type SplatKind = (typeof SPLAT_KINDS)[number];

export interface SubtestResult {
  /** Stable path: program/test[/backing], e.g. "uffd-unit-tests/minor/hugetlb". */
  id: string;
  /** The suite this came from, e.g. "uffd". */
  suite: string;
  /** The program that produced it, e.g. "uffd-unit-tests". */
  program: string;
  /** The test within the program, e.g. "minor". */
  name: string;
  /**
   * The name as the program printed it, when `name` (and so `id`) replaced the numbers in it
   * that change from run to run, e.g. "transact_test Extra pages 6 (0.0%), extra thread faults 6."
   * for name "transact_test Extra pages N (N%), extra thread faults N.".
   */
  title?: string;
  backing?: Backing;
  status: Status;
  reason?: string;
  durationMs?: number;
  metrics?: Metric[];
  /**
   * Every run of this subtest in order when it ran more than once (the first run, then
   * each retry): what CI dashboards show as flaky attempts. Absent for a single run.
   */
  attempts?: SubtestAttempt[];
  /**
   * The known issue (known-issues.ts) that explains this failure: `status` stays what it was,
   * and the verdict leaves it out (unless --known-is-failure).
   */
  known?: string;
}

/** One run of a subtest: its outcome and where its program's raw output is. */
export interface SubtestAttempt {
  status: Status;
  reason?: string;
  /** Raw output of the program run that produced this attempt, relative to the run directory. */
  outputFile: string;
}

/** One execution of a test program in the guest. */
export interface ProgramRun {
  program: string;
  /** The command line as run in the guest. */
  command: string;
  backing?: Backing;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** Overall status of this program invocation (crash / timeout / parse failure are 'error' or 'fail'). */
  status: Status;
  reason?: string;
  /** File holding the raw output, relative to the run directory. */
  outputFile: string;
  /**
   * Why it ran: absent for a planned program; `resume` runs the subtests a program that died
   * had not reached; `retry` reruns a failed subtest on its own.
   */
  purpose?: (typeof PROGRAM_PURPOSES)[number];
}

export interface KernelInfo {
  /** Where the kernel came from. */
  source: (typeof KERNEL_SOURCES)[number];
  path: string;
  /** uname -r as reported by the guest (or the package's version before boot). */
  release?: string;
  package?: string;
  packageVersion?: string;
  configHash?: string;
}

/** How one guest of a run started. */
export interface GuestStart {
  how: (typeof GUEST_STARTS)[number];
  /** QEMU start to ready for tests. */
  readyMs: number;
  /** Why a booted guest was not restored. */
  why?: string;
  /** The snapshot entry (its key in the cache) the guest was restored from, or saved to. */
  snapshot?: string;
  /**
   * A restore's phases, each as ms from QEMU's start: QMP answering, the snapshot loaded and the
   * guest resumed, SSH answering, the guest checked (kernel, boot id, clock and RNG refreshed).
   */
  phases?: RestorePhases;
  /**
   * Loaded from the snapshot (paused) while the run waited for its turn (a nightly job whose
   * lane was busy): readyMs and phases count from when the run was let go, QMP and load at 0.
   */
  ahead?: boolean;
  /**
   * The test binaries this guest got: already there (a booted guest's from its initramfs, a
   * restored one's from the saved guest) or pushed.
   */
  binaries?: StagedBinaries;
}

/** How a guest came to hold the run's test binaries (the guest's SHA-256 of each, checked against the host's). */
export interface StagedBinaries {
  /** Files the guest already held with the wanted content. */
  kept: number;
  /** Files pushed because the guest lacked them or held other content. */
  pushed: number;
  /** Files in the guest's directory the run does not want, removed. */
  removed: number;
  /** Bytes pushed. */
  bytes: number;
  /** The check and the push, end to end. */
  ms: number;
}

export interface RestorePhases {
  qmpMs: number;
  loadedMs: number;
  sshMs: number;
  checkedMs: number;
}

/** The QEMU guest a run booted (what was asked of QEMU). */
export interface QemuInfo {
  command: string[];
  accel: Accel;
  accelNote?: string;
  memMiB: number;
  smp: number;
  guestRam: GuestRam;
  /** Guest NUMA nodes asked of QEMU (absent: one). */
  numaNodes?: number;
}

/** What the booted guest reported about itself. */
export interface GuestInfo {
  uname?: string;
  clocksource?: string;
  bootMs?: number;
  /** Guests started (booted or restored): 1, plus one for each reboot after a program took the guest down. */
  boots?: number;
  /** How each guest started, in order: booted, or restored from a snapshot of a ready guest. */
  starts?: GuestStart[];
  /** NUMA nodes and 1 GiB hugepages the guest kernel reports after boot. */
  numaNodes?: number;
  hugepages1g?: number;
}

export type RunSummary = Record<Status, number> & { total: number };
export const VERDICTS = ['pass', 'fail', 'error'] as const;
export type Verdict = (typeof VERDICTS)[number];

export interface RunRecord {
  schema: 'faultline.run/1';
  runId: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  kernel: KernelInfo;
  selftests: { source: string; tree?: string };
  /**
   * The guest, present together with `guest` when the run boots one; both absent when the test
   * ran on the host (a bisect or series `--test` command) or the run ended before a guest was
   * configured (a nightly job whose kernel did not build).
   */
  qemu?: QemuInfo;
  guest?: GuestInfo;
  suites: string[];
  backings: Backing[];
  programs: ProgramRun[];
  subtests: SubtestResult[];
  splats: Splat[];
  /** Set when the run could not complete (guest died, SSH lost, ...). */
  infraError?: string;
  /** The known issues that applied: present (matched a failure) or absent (their tests passed). */
  knownIssues?: KnownIssueOutcome[];
  summary: RunSummary;
  verdict: Verdict;
  /** Time spent inside guest test processes vs total, for the harness-overhead figure. */
  timing: {
    totalMs: number;
    testsMs: number;
    bootMs: number;
    pushMs: number;
    prepareMs: number;
    /**
     * A run that waited for its turn (a nightly job whose lane was busy): its start to the go,
     * not in totalMs. It was prepared and its guest loaded in that time, then it waited.
     */
    aheadMs?: number;
  };
}

/** A run that boots a guest: what `faultline run` builds and fills in as the guest reports. */
export type GuestRunRecord = RunRecord & { qemu: QemuInfo; guest: GuestInfo };
