import type { Backing, Status, SubtestResult } from '../results/types.js';

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
}

/** One program invocation inside the guest. Runs with cwd = the guest's work dir holding the binaries. */
export interface GuestCommand {
  /** Binary name as pushed (e.g. "uffd-unit-tests"); invoked as ./<program>. */
  program: string;
  args: string[];
  /** The backing this invocation exercises, when it exercises exactly one. */
  backing?: Backing;
  timeoutSec: number;
  /** Label used in logs and output file names (unique within a run). */
  label: string;
}

/** Output of one program invocation, as the transport captured it. */
export interface ProgramOutput {
  /** stdout and stderr interleaved. */
  output: string;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
}

export interface ParsedProgram {
  /** Status of the invocation as a whole (crash, timeout, bad exit code). */
  status: Status;
  reason?: string;
  subtests: SubtestResult[];
}

export interface Suite {
  name: string;
  description: string;
  /** Binaries to push to the guest (built by harness/selftests). */
  programs: readonly string[];
  /** Guest kernel parameters this suite needs for meaningful results (added to the run's command line). */
  guestCmdline?: readonly string[];
  plan(ctx: SuiteContext): GuestCommand[];
  parse(cmd: GuestCommand, out: ProgramOutput, ctx: SuiteContext): ParsedProgram;
}
