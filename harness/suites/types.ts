import type { Backing, Status, SubtestResult } from '../results/types.js';
import type { SelftestProgram } from '../results/selftests.js';
import type { GuestSysctl } from '../selftests/mm-programs.js';

/** What a suite needs to know about the guest and the user's selection to plan its commands. */
export interface SuiteContext {
  backings: readonly Backing[];
  smp: number;
  memMiB: number;
  /** Hugepages (2 MiB) the guest reserved at boot. */
  hugepages2m: number;
  /** Short iteration counts (CI, bisect steps). */
  quick: boolean;
  /** Optional test-name filter given by the user (e.g. "minor"). */
  filter?: string;
  /** Categories the user picked (suite mm: `--category hugetlb,cow`); none: all. */
  categories?: readonly string[];
  /** The programs built from the tested tree (manifest.json): what the tree's programs can do. */
  programs: readonly SelftestProgram[];
}

/** One program invocation inside the guest. Runs with cwd = the guest's work dir holding the binaries. */
export interface GuestCommand {
  /** Binary name as pushed (e.g. "uffd-unit-tests"); invoked as ./<program>. */
  program: string;
  args: string[];
  /** Environment for the program (e.g. FAULTLINE_BACKING for user programs). */
  env?: Record<string, string>;
  /** Files the program leaves behind that hold guest resources (hugetlbfs files): removed after it, whatever its outcome. */
  leaves?: string[];
  /** The backing this invocation exercises, when it exercises exactly one. */
  backing?: Backing;
  /** A pushed interpreter that runs the program (kselftest's bash scripts): `./<interpreter> ./<program>`. */
  interpreter?: string;
  /** Guest settings the program needs: made just before it, put back after it whatever its outcome. */
  sysctls?: GuestSysctl[];
  /** A hugetlbfs mounted at this directory (relative to the work dir) before the program, if none is. */
  hugetlbfsDir?: string;
  /** Drop caches and compact memory first, so hugepages can be allocated (as run_vmtests.sh does). */
  settle?: boolean;
  /** Not run: recorded as a skip with this reason (the tree asks for something faultline cannot give). */
  skipReason?: string;
  timeoutSec: number;
  /** Label used in logs and output file names (unique within a run). */
  label: string;
}

/** Output of one program invocation, as the transport captured it. */
export interface ProgramOutput {
  /** stdout and stderr interleaved. */
  output: string;
  exitCode: number | null;
  /** The signal that ended the program (ssh's exit-signal, e.g. SIGSEGV), when one did and it was not the timeout's KILL. */
  signal?: string;
  timedOut: boolean;
  durationMs: number;
}

/**
 * The result that stands for how a program ended (a crash, bail-out, short plan or exit code
 * that its own results do not explain), beside those results. A retry whose program passes no
 * longer reports it: for this result that absence is a pass.
 */
export const EXIT_STATUS = 'exit status';

/** "killed by SIGSEGV", or "killed by a signal" when the transport did not name it. */
export function killedBy(out: Pick<ProgramOutput, 'signal'>): string {
  return `killed by ${out.signal ?? 'a signal'}`;
}

export interface ParsedProgram {
  /** Status of the invocation as a whole (crash, timeout, bad exit code). */
  status: Status;
  reason?: string;
  subtests: SubtestResult[];
}

export interface ResumePlan {
  /** Subtests not reported yet; `reason` says why no command of the plan can reach one. */
  unreached: (Pick<SubtestResult, 'id' | 'name' | 'backing'> & { reason?: string })[];
  commands: GuestCommand[];
}

/**
 * Guest kernel parameters of the suites that measure time: every kernel on one clocksource, so
 * kernels can be compared. Under TCG Debian's 6.1 finds the vCPUs' TSCs unsynchronized and falls
 * back to hpet, where a clock read is an emulated MMIO access (~0.9 us against ~60 ns on tsc),
 * while 6.12 keeps tsc. `clocksource=tsc` also wins over a higher-rated clock (kvm-clock).
 */
export const SAME_CLOCKSOURCE_CMDLINE: readonly string[] = ['tsc=reliable', 'clocksource=tsc'];

export interface Suite {
  name: string;
  description: string;
  /** Binaries to push to the guest (built by harness/selftests). */
  programs: readonly string[];
  /** Programs the suite builds from the tested tree on demand (suite mm), pushed with the rest. */
  buildPrograms?(tree: string): Promise<SelftestProgram[]>;
  /** Guest kernel parameters this suite needs for meaningful results (added to the run's command line). */
  guestCmdline?: readonly string[];
  plan(ctx: SuiteContext): GuestCommand[];
  parse(cmd: GuestCommand, out: ProgramOutput, ctx: SuiteContext): ParsedProgram;
  /**
   * The id of the subtest that was running when the program had printed `output` (a
   * prefix of its output): a kernel splat that arrived then is charged to it. Undefined
   * when the output names none (the splat is charged to the program).
   */
  runningSubtest?(cmd: GuestCommand, output: string, ctx: SuiteContext): string | undefined;
  /**
   * `cmd` died before it finished (error exit, signal, guest death): the subtests it planned
   * but nobody reported yet (`reached`: the ids it and earlier resumes reported), and
   * commands that run them, in order. Empty when nothing is left or the suite cannot tell.
   */
  resume?(
    cmd: GuestCommand,
    reached: ReadonlySet<string>,
    ctx: SuiteContext,
    crashed?: ReadonlySet<string>,
  ): ResumePlan;
  /**
   * A command that reruns subtest `id` (reported by `cmd`) on its own; default: `cmd` as it
   * was. Undefined: the suite's subtests are not retried.
   */
  isolate?(cmd: GuestCommand, id: string, ctx: SuiteContext): GuestCommand | undefined;
}
