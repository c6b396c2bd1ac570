import type { RunRecord } from '../results/types.js';
import { UsageError } from '../util/errors.js';

/**
 * The revision tester's two halves. A builder turns a checked-out revision into an artifact
 * (a bootable kernel with its selftests, or a command's output dir); a runner tests an
 * artifact once, returning a RunRecord. Kernel: kernel.ts; host commands: command.ts.
 */

/** What one build of a revision produced. */
export interface RevisionBuild<A> {
  ok: boolean;
  /**
   * Compiler output of the make that produced the artifact (on a cache hit: the earlier make's,
   * which may have started from another obj dir state); undefined when not available.
   */
  log?: string;
  /** Files this build certainly compiled (beyond those that printed diagnostics). */
  compiled?: string[];
  /** True when this was a build from scratch (its warnings are the complete baseline). */
  full: boolean;
  firstError?: string;
  durationMs: number;
  cacheHit: boolean;
  artifact?: A;
}

/**
 * Every setting that changes test results, as plain JSON (any key order): cached results are
 * reused only under the same settings. Where output goes (results dirs, progress) stays out.
 */
export type ResultSettings = Readonly<Record<string, unknown>>;

/** How to build a revision. */
export interface BuildRequest {
  /** Run the build even when its artifact is cached (its log is wanted). */
  compile?: boolean;
  /** A stranger's code (a series' patches): shared caches are read, never written. */
  untrusted?: boolean;
}

export interface RevisionBuilder<A> {
  build(rev: string, worktree: string, request?: BuildRequest): Promise<RevisionBuild<A>>;
  describe(): string;
  settings(): ResultSettings;
}

/** One test of a built revision. */
export interface RunContext<A> {
  rev: string;
  worktree: string;
  artifact: A | undefined;
  /** 0-based count of the runs at this revision so far (across calls). */
  index: number;
  /** Unique among the runs of this tester: step label, revision and index. */
  runId: string;
}

export interface TestedRun {
  record: RunRecord;
  /** The run's results directory, when it has one. */
  dir?: string;
}

export interface RevisionRunner<A> {
  /** Once per test() call, before the runs: what the runs need from the revision (e.g. --program). */
  prepare?(rev: string, worktree: string, artifact: A | undefined): Promise<void>;
  run(ctx: RunContext<A>): Promise<TestedRun>;
  describe(): string;
  /** The settings, with what the build produced that changes results too (the kernel's config hash). */
  settings(artifact: A | undefined): ResultSettings;
}

/**
 * The user's --program does not compile against this revision's headers. Bad input (exit 2)
 * where the user runs it once; bisect skips the revision instead (it is not a kernel build break).
 */
export class ProgramCompileError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'ProgramCompileError';
  }
}
