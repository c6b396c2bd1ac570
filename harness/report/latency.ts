/**
 * The latency model the reports read: uffd-lat's subtests as cases (operation, backing, handler
 * mode), each with its repetitions' percentiles and the per-fault log2 histogram merged over
 * them. Metric names are uffd-lat's own (harness/suites/parsers/uffd-lat.ts): total_p50,
 * total_p90, total_p99, total_p99_9, total_max, notify_p50, resolve_p50, iterations and the
 * histogram buckets total_ns_log2_<k>.
 */
import {
  clocksourceMismatch,
  compareSamples,
  invalidated,
  type CompareStatsOptions,
  type SampleComparison,
} from '../analysis/compare.js';
import { median } from '../stats/descriptive.js';
import { BACKINGS, type RunRecord, type SubtestResult } from '../results/types.js';
import { percentileSupported, quantileLabel, sampleCount, samplesNeeded } from '../results/units.js';

/** uffd-lat's case names (tests/uffd-lat/uffd-lat.c kind_names) as people write them. */
const OPERATIONS: Record<string, string> = {
  'first-touch': 'first touch (no uffd)',
  'missing-copy': 'MISSING+COPY',
  'missing-zeropage': 'MISSING+ZEROPAGE',
  'minor-continue': 'MINOR+CONTINUE',
  move: 'MOVE',
  'move-thp': 'MOVE (THP)',
  wp: 'WP',
  'wp-async': 'WP_ASYNC',
};
const OPERATION_ORDER = Object.keys(OPERATIONS);
const MODES: Record<string, string> = { blocking: 'blocking', poll: 'busy-poll' };

/** One repetition of a case: the figures uffd-lat printed for it. */
export interface CaseRun {
  runId: string;
  /** Samples measured (metric iterations). */
  n?: number;
  total: { p50: number; p90?: number; p99?: number; p99_9?: number; max?: number };
  notifyP50?: number;
  resolveP50?: number;
  /** The guest's clocksource: figures from different clocksources are not comparable. */
  clocksource?: string;
}

export interface LatencyCase {
  /** Subtest id, e.g. uffd-lat/minor-continue/hugetlb/blocking. */
  id: string;
  op: string;
  opLabel: string;
  backing: string;
  mode?: string;
  modeLabel: string;
  runs: CaseRun[];
  /** total_ns log2 buckets summed over the repetitions: bucket k holds 2^k <= ns < 2^(k+1). */
  hist: Map<number, number>;
}

export type PercentileName = 'p50' | 'p90' | 'p99' | 'p99_9';
export const PERCENTILES: readonly [PercentileName, number][] = [
  ['p50', 0.5],
  ['p90', 0.9],
  ['p99', 0.99],
  ['p99_9', 0.999],
];

/** A percentile over repetitions: the median of each run's figure, and whether n supports it. */
export interface PercentileCell {
  q: number;
  value: number;
  supported: boolean;
  /** Why it is not supported, for a tooltip. */
  note?: string;
}

function metric(s: SubtestResult, name: string): number | undefined {
  const v = s.metrics?.find((m) => m.name === name)?.value;
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

function parseCase(s: SubtestResult): Pick<LatencyCase, 'op' | 'opLabel' | 'backing' | 'mode' | 'modeLabel'> {
  const [op = s.name, seg1, seg2] = s.name.split('/');
  const backing = s.backing ?? seg1 ?? '';
  const mode = seg2 ?? (seg1 !== undefined && seg1 !== backing ? seg1 : undefined);
  return {
    op,
    opLabel: OPERATIONS[op] ?? op,
    backing,
    ...(mode !== undefined ? { mode } : {}),
    // Cases without a handler thread (first touch, WP_ASYNC) have no mode.
    modeLabel: mode !== undefined ? (MODES[mode] ?? mode) : '–',
  };
}

function caseRun(r: RunRecord, s: SubtestResult, p50: number): CaseRun {
  const opt = (name: string): number | undefined => metric(s, name);
  const total: CaseRun['total'] = { p50 };
  for (const [k, name] of [
    ['p90', 'total_p90'],
    ['p99', 'total_p99'],
    ['p99_9', 'total_p99_9'],
    ['max', 'total_max'],
  ] as const) {
    const v = opt(name);
    if (v !== undefined) total[k] = v;
  }
  const n = sampleCount(s, 'total_p50');
  const notify = opt('notify_p50');
  const resolve = opt('resolve_p50');
  return {
    runId: r.runId,
    ...(n !== undefined ? { n } : {}),
    total,
    ...(notify !== undefined ? { notifyP50: notify } : {}),
    ...(resolve !== undefined ? { resolveP50: resolve } : {}),
    ...(r.guest?.clocksource ? { clocksource: r.guest.clocksource } : {}),
  };
}

function order(c: LatencyCase, backings: readonly string[]): [number, number, string, string] {
  const b = backings.indexOf(c.backing);
  const o = OPERATION_ORDER.indexOf(c.op);
  return [b < 0 ? 99 : b, o < 0 ? 99 : o, c.op, c.mode ?? ''];
}

function byCaseOrder(a: LatencyCase, b: LatencyCase, backings: readonly string[]): number {
  const x = order(a, backings);
  const y = order(b, backings);
  for (let i = 0; i < x.length; i++) {
    const p = x[i] ?? 0;
    const q = y[i] ?? 0;
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

/**
 * Every per-fault latency case in `records` (subtests that passed and carry total_p50 in ns),
 * repetitions of one case merged, in a stable order: backing (`backingOrder`, e.g. the plan's,
 * then faultline's), operation, handler mode.
 */
export function latencyCases(records: readonly RunRecord[], backingOrder: readonly string[] = []): LatencyCase[] {
  const byId = new Map<string, LatencyCase>();
  for (const r of records) {
    for (const s of r.subtests) {
      const p50 = metric(s, 'total_p50');
      if (p50 === undefined || (s.status !== 'pass' && s.status !== 'flaky')) continue;
      let c = byId.get(s.id);
      if (!c) {
        c = { id: s.id, ...parseCase(s), runs: [], hist: new Map() };
        byId.set(s.id, c);
      }
      c.runs.push(caseRun(r, s, p50));
      for (const m of s.metrics ?? []) {
        const k = /^total_ns_log2_(\d+)$/.exec(m.name)?.[1];
        if (k !== undefined && Number.isFinite(m.value)) c.hist.set(Number(k), (c.hist.get(Number(k)) ?? 0) + m.value);
      }
    }
  }
  return sortCases([...byId.values()], backingOrder);
}

/** Cases in report order: backing (`backingOrder` first, then faultline's), operation, handler mode. */
export function sortCases(cases: LatencyCase[], backingOrder: readonly string[] = []): LatencyCase[] {
  const backings = [...backingOrder, ...BACKINGS.filter((b) => !backingOrder.includes(b))];
  return cases.sort((a, b) => byCaseOrder(a, b, backings));
}

/** Samples per repetition that every repetition reached (the count percentiles are judged by). */
export function samplesPerRun(c: LatencyCase): number | undefined {
  const ns = c.runs.map((r) => r.n).filter((n): n is number => n !== undefined);
  return ns.length ? Math.min(...ns) : undefined;
}

export function percentile(c: LatencyCase, name: PercentileName): PercentileCell {
  const q = PERCENTILES.find(([p]) => p === name)?.[1] ?? 0.5;
  const values = c.runs.map((r) => r.total[name]).filter((v): v is number => v !== undefined);
  const n = samplesPerRun(c);
  const supported = percentileSupported(q, n);
  return {
    q,
    value: values.length ? median(values) : NaN,
    supported,
    ...(supported
      ? {}
      : {
          note: `${quantileLabel(q)} needs at least ${samplesNeeded(q)} samples per run; this case has ${n ?? '?'} (the figure would be the maximum)`,
        }),
  };
}

/** The p50 samples a comparison works on: one per repetition. */
function p50Samples(c: LatencyCase): number[] {
  return c.runs.map((r) => r.total.p50);
}

/**
 * base vs head on their repetitions' p50 (Mann-Whitney, bootstrap CI of the median ratio);
 * invalid when their guests ran on different clocksources.
 */
export function compareCases(base: LatencyCase, head: LatencyCase, opts: CompareStatsOptions = {}): SampleComparison {
  const c = compareSamples(p50Samples(base), p50Samples(head), 'lower-is-better', opts);
  const mismatch = clocksourceMismatch(
    base.runs.map((r) => r.clocksource),
    head.runs.map((r) => r.clocksource),
  );
  return mismatch === undefined ? c : invalidated(c, mismatch);
}

/** "MINOR+CONTINUE · hugetlb · blocking" */
export function caseTitle(c: Pick<LatencyCase, 'opLabel' | 'backing' | 'modeLabel'>): string {
  return [c.opLabel, c.backing, c.modeLabel === '–' ? '' : c.modeLabel].filter(Boolean).join(' · ');
}
