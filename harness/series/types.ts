import type { Comparison } from '../results/compare.js';
import type { RunRecord, Status } from '../results/types.js';
import type { Diagnostic } from './warnings.js';
import type { ThreadHeaders } from './mbox.js';

/**
 * `faultline series` is wired to the world through a builder and a tester, like bisect:
 * production uses the kernel build + runTests (kernel-adapter.ts); tests and generic projects
 * use commands (command-adapter.ts). A is whatever the build hands to the tests (bzImage +
 * selftests dir for kernels).
 */
export interface BuildResult<A> {
  ok: boolean;
  /** Compiler output of this build (diagnostics are parsed from it); undefined when not available (cache hit). */
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
 * Every setting that changes test results, as plain JSON (any key order): cached base results are
 * reused only under the same settings. Where output goes (results dirs, progress) stays out.
 */
export type ResultSettings = Readonly<Record<string, unknown>>;

export interface SeriesBuilder<A> {
  build(rev: string, worktree: string, label: string): Promise<BuildResult<A>>;
  describe(): string;
  settings(): ResultSettings;
}

export interface SeriesTester<A> {
  /** Run the tests `repeat` times on a built revision; one RunRecord per run. */
  test(
    rev: string,
    worktree: string,
    artifact: A | undefined,
    opts: { repeat: number; label: string },
  ): Promise<RunRecord[]>;
  describe(): string;
  /**
   * With what the build produced that changes results too (the kernel's config hash). Absent
   * (a builds-only tester): its description keys the cache.
   */
  settings?(artifact: A | undefined): ResultSettings;
}

export interface TestSummary {
  runs: number;
  /** Run directories or ids, for finding the logs. */
  runIds: string[];
  counts: Record<Status, number>;
  verdicts: RunRecord['verdict'][];
  splats: number;
  /** Served from the base-results cache. */
  cached?: boolean;
}

export interface PatchRecord {
  index: number;
  total: number;
  subject: string;
  /** The patch's mail Message-ID (mbox input). */
  messageId?: string;
  author?: string;
  /** The commit in faultline's worktree (range input: the original commit when not rebased). */
  commit?: string;
  patchId?: string;
  files: string[];
  apply: { ok: boolean; reason?: string };
  build?: {
    ok: boolean;
    durationMs: number;
    cacheHit: boolean;
    firstError?: string;
    /** New compiler warnings in files this patch touched, vs the build of its parent. */
    newWarnings: Diagnostic[];
    /** False when the parent's warnings were unknown (e.g. its build came from cache without a log). */
    warningsCompared: boolean;
  };
  tests?: TestSummary;
  /** This patch vs the base, when it was tested (--each, or the tip). */
  comparison?: { regressions: number; fixed: number; newSplats: number; metricRegressions: number };
}

export interface SeriesRecord {
  schema: 'faultline.series/1';
  repo: string;
  base: { hash: string; subject: string; ref: string };
  source:
    | { kind: 'mbox'; file: string; cover?: { subject: string; messageId?: string }; thread?: ThreadHeaders }
    | { kind: 'range'; range: string };
  /** sha256 over the base and every patch's `git patch-id --stable`: the same series on the same base hashes the same. */
  patchsetHash: string;
  messageIds: string[];
  tip?: string;
  patches: PatchRecord[];
  baseBuild?: { ok: boolean; durationMs: number; cacheHit: boolean; warnings: number; firstError?: string };
  baseTests?: TestSummary;
  tester: string;
  builder: string;
  repeat: number;
  each: boolean;
  /** Tip vs base, from harness/results/compare.ts. */
  comparison?: Comparison;
  /** One line per reason the series is reported as regressing (empty when it is clean). */
  problems: string[];
  verdict: 'clean' | 'regressed';
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  timing: { baseBuildMs: number; patchBuildMs: number[]; testMs: number; totalMs: number };
}
