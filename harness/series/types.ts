import type { Comparison } from '../analysis/compare.js';
import type { RunRecord, Status } from '../results/types.js';
import type { Diagnostic } from '../toolchain/diagnostics.js';
import type { ThreadHeaders } from './mbox.js';

/** A series regressed (a problem is listed) or is clean. */
export const SERIES_VERDICTS = ['clean', 'regressed'] as const;

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
  /** Tip vs base, from harness/analysis/compare.ts. */
  comparison?: Comparison;
  /** One line per reason the series is reported as regressing (empty when it is clean). */
  problems: string[];
  verdict: (typeof SERIES_VERDICTS)[number];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  timing: { baseBuildMs: number; patchBuildMs: number[]; testMs: number; totalMs: number };
}
