/**
 * Comparing two sets of runs (previous night vs tonight, RUN_A vs RUN_B, base vs series).
 *
 * Statuses: pass->fail is a regression only when it is consistent; a test whose status changes
 * while the kernel did not (mixed results within one side, or known to flip in history) is
 * reported as flaky, separately. Metrics: repetitions on each side form two samples; a metric
 * is flagged only when the difference is statistically significant (Mann-Whitney U by default,
 * Welch's t optional) AND the median moved the wrong way by more than a threshold (5%).
 * A bootstrap CI on the median ratio is reported alongside for humans.
 */
import type { JSONSchemaType } from 'ajv';
import { guestRamContext, statusSchema } from '../results/record.js';
import { SPLAT_KINDS, type RunRecord, type Splat, type Status, type SubtestResult } from '../results/types.js';
import { formatChange, isHistogramBucket, metricQuantile, sampleCount } from '../results/units.js';
import { median } from '../stats/descriptive.js';
import { bootstrapMedianRatioCI } from '../stats/bootstrap.js';
import { mannWhitneyU, welchT, type TestResult } from '../stats/hypothesis.js';
import { str, strings, num, count } from '../util/schema.js';
import { splatSignature } from '../console/signature.js';
import { kernelIdentity } from './kernel-identity.js';

/** Why a change counts as flaky, not as a regression. */
const FLAKY_BECAUSE = ['mixed-results', 'same-kernel', 'known-flaky'] as const;

// ---------------------------------------------------------------------------------------------
// Metric comparison

export type MetricDirection = 'lower-is-better' | 'higher-is-better';

/** Latencies and times are better lower; rates and throughputs better higher. */
export function metricDirection(name: string, unit: string): MetricDirection {
  const u = unit.toLowerCase();
  const n = name.toLowerCase();
  if (/\/s$|^ops|iops|per.?sec|bps$|^hz$/.test(u) || /throughput|bandwidth|ops_per|rate|per_sec|iops/.test(n))
    return 'higher-is-better';
  return 'lower-is-better';
}

export interface CompareStatsOptions {
  /** Significance level (default 0.05). */
  alpha?: number;
  /** Relative change of the median beyond which a significant difference is flagged (default 0.05). */
  threshold?: number;
  test?: 'mann-whitney' | 'welch';
  bootstrapIterations?: number;
  seed?: number;
}

export interface SampleComparison {
  nBase: number;
  nHead: number;
  medianBase: number;
  medianHead: number;
  /** median(head) / median(base). */
  ratio: number;
  ci: { low: number; high: number };
  test: TestResult;
  significant: boolean;
  /** Significant, beyond the threshold, and in the bad direction. */
  regression: boolean;
  /** Significant, beyond the threshold, and in the good direction. */
  improvement: boolean;
  /**
   * Why the two samples are not comparable (their guests read time from different clocksources):
   * then neither regression nor improvement, and the change is printed as invalid, not as a ratio.
   */
  invalidReason?: string;
}

/** The primitive series validation reuses: two samples of one metric. */
export function compareSamples(
  base: readonly number[],
  head: readonly number[],
  direction: MetricDirection,
  opts: CompareStatsOptions = {},
): SampleComparison {
  const alpha = opts.alpha ?? 0.05;
  const threshold = opts.threshold ?? 0.05;
  const mb = median(base);
  const mh = median(head);
  const ratio = mb === 0 ? (mh === 0 ? 1 : Infinity) : mh / mb;
  const test = opts.test === 'welch' ? welchT(base, head) : mannWhitneyU(base, head);
  const ci = bootstrapMedianRatioCI(base, head, {
    ...(opts.bootstrapIterations !== undefined ? { iterations: opts.bootstrapIterations } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  });
  const significant = test.p < alpha;
  const worse = direction === 'lower-is-better' ? ratio - 1 : 1 - ratio;
  return {
    nBase: base.length,
    nHead: head.length,
    medianBase: mb,
    medianHead: mh,
    ratio,
    ci,
    test,
    significant,
    regression: significant && worse > threshold,
    improvement: significant && -worse > threshold,
  };
}

/**
 * Why timings taken on guests with these clocksources cannot be compared, or undefined when they
 * can (one and the same clocksource on both sides, or a side that did not record it). Under TCG a
 * clock read costs ~10x more on hpet (an emulated MMIO access) than on tsc (clock-overhead p50
 * 700 ns against 67 ns on real runs), and a kernel that found TSC unstable runs on hpet.
 */
export function clocksourceMismatch(
  base: Iterable<string | undefined>,
  head: Iterable<string | undefined>,
): string | undefined {
  const known = (xs: Iterable<string | undefined>): string[] =>
    [...new Set(xs)].filter((x): x is string => x !== undefined && x !== '').sort();
  const b = known(base);
  const h = known(head);
  if (b.length === 0 || h.length === 0) return undefined;
  if (b.length === 1 && h.length === 1 && b[0] === h[0]) return undefined;
  return `guests on different clocksources (${b.join(', ')} → ${h.join(', ')})`;
}

/** A comparison whose sides are not comparable: kept for the record, flagged as neither better nor worse. */
export function invalidated<T extends SampleComparison>(c: T, reason: string): T {
  return { ...c, regression: false, improvement: false, invalidReason: reason };
}

/** The change as people read it ("×5.1", "−10.0%"), or that there is none to read and why. */
export function formatSampleChange(c: SampleComparison): string {
  return c.invalidReason !== undefined ? `invalid: ${c.invalidReason}` : formatChange(c.ratio);
}

/** Metrics read from the guest's clock: times and rates per second. */
function clockBased(unit: string): boolean {
  return /^(ns|us|µs|ms|s)$|\/s$/.test(unit);
}

// ---------------------------------------------------------------------------------------------
// Run-set comparison

export interface CompareRunsOptions extends CompareStatsOptions {
  /**
   * Groups runs that are comparable: tests are matched by context + subtest id. For a nightly
   * this is the plan's kernel/config/guest-RAM; by default the guest RAM backend.
   */
  contextOf?: (r: RunRecord) => string;
  /** Test keys (context + id) known to flip status on an unchanged kernel (from history). */
  knownFlaky?: ReadonlySet<string>;
}

export interface StatusChange {
  key: string;
  context: string;
  id: string;
  base: Status[];
  head: Status[];
  reason?: string;
  /** Why a change was classified flaky rather than a regression. */
  flakyBecause?: (typeof FLAKY_BECAUSE)[number];
  /** The known issue (known-issues.ts) that explains the head's failure. */
  known?: string;
}

export interface MetricChange extends SampleComparison {
  key: string;
  context: string;
  id: string;
  metric: string;
  unit: string;
  direction: MetricDirection;
}

export interface SplatChange {
  signature: string;
  kind: Splat['kind'];
  title: string;
  context: string;
  test?: string;
  excerpt: string;
  runId: string;
}

export interface Comparison {
  options: { alpha: number; threshold: number; test: 'mann-whitney' | 'welch' };
  base: { runs: string[]; kernels: string[] };
  head: { runs: string[]; kernels: string[] };
  /** Consistent pass (or absent status) -> fail/error, with the kernel changed. */
  regressions: StatusChange[];
  /** Pass -> fail/error that a known issue explains on the head side: not a regression. */
  known?: StatusChange[];
  fixed: StatusChange[];
  flaky: StatusChange[];
  appeared: { key: string; context: string; id: string; head: Status[] }[];
  vanished: { key: string; context: string; id: string; base: Status[] }[];
  newSplats: SplatChange[];
  goneSplats: SplatChange[];
  metricRegressions: MetricChange[];
  metricImprovements: MetricChange[];
  /** Every compared metric, flagged or not (for the report's latency table). */
  metrics: MetricChange[];
  /** Head runs that hit an infrastructure error (not a verdict on the kernel). */
  infraErrors: { runId: string; error: string }[];
  /** True when anything regressed (status, splat or metric). */
  regressed: boolean;
}

// ---------------------------------------------------------------------------------------------
// The Comparison as records embed it (series results.json)

const statuses: JSONSchemaType<Status[]> = { type: 'array', items: statusSchema };
const runSet = {
  type: 'object',
  required: ['runs', 'kernels'],
  properties: { runs: strings, kernels: strings },
} as const;

const statusChangeSchema: JSONSchemaType<StatusChange> = {
  type: 'object',
  required: ['key', 'context', 'id', 'base', 'head'],
  properties: {
    key: str,
    context: str,
    id: str,
    base: statuses,
    head: statuses,
    reason: { type: 'string', nullable: true },
    flakyBecause: { type: 'string', enum: FLAKY_BECAUSE, nullable: true },
    known: { type: 'string', nullable: true },
  },
};

const metricChangeSchema: JSONSchemaType<MetricChange> = {
  type: 'object',
  required: [
    'key',
    'context',
    'id',
    'metric',
    'unit',
    'direction',
    'nBase',
    'nHead',
    'medianBase',
    'medianHead',
    'ratio',
    'ci',
    'test',
    'significant',
    'regression',
    'improvement',
  ],
  properties: {
    key: str,
    context: str,
    id: str,
    metric: str,
    unit: str,
    direction: { type: 'string', enum: ['lower-is-better', 'higher-is-better'] },
    nBase: count,
    nHead: count,
    medianBase: num,
    medianHead: num,
    ratio: num,
    ci: { type: 'object', required: ['low', 'high'], properties: { low: num, high: num } },
    test: {
      type: 'object',
      required: ['statistic', 'p', 'method'],
      properties: { statistic: num, p: num, method: str },
    },
    significant: { type: 'boolean' },
    regression: { type: 'boolean' },
    improvement: { type: 'boolean' },
    invalidReason: { type: 'string', nullable: true },
  },
};

const splatChangeSchema: JSONSchemaType<SplatChange> = {
  type: 'object',
  required: ['signature', 'kind', 'title', 'context', 'excerpt', 'runId'],
  properties: {
    signature: str,
    kind: { type: 'string', enum: SPLAT_KINDS },
    title: str,
    context: str,
    test: { type: 'string', nullable: true },
    excerpt: str,
    runId: str,
  },
};

const testKey = { key: str, context: str, id: str } as const;

export const comparisonSchema: JSONSchemaType<Comparison> = {
  type: 'object',
  required: [
    'options',
    'base',
    'head',
    'regressions',
    'fixed',
    'flaky',
    'appeared',
    'vanished',
    'newSplats',
    'goneSplats',
    'metricRegressions',
    'metricImprovements',
    'metrics',
    'infraErrors',
    'regressed',
  ],
  properties: {
    options: {
      type: 'object',
      required: ['alpha', 'threshold', 'test'],
      properties: { alpha: num, threshold: num, test: { type: 'string', enum: ['mann-whitney', 'welch'] } },
    },
    base: runSet,
    head: runSet,
    regressions: { type: 'array', items: statusChangeSchema },
    known: { type: 'array', items: statusChangeSchema, nullable: true },
    fixed: { type: 'array', items: statusChangeSchema },
    flaky: { type: 'array', items: statusChangeSchema },
    appeared: {
      type: 'array',
      items: { type: 'object', required: ['key', 'context', 'id', 'head'], properties: { ...testKey, head: statuses } },
    },
    vanished: {
      type: 'array',
      items: { type: 'object', required: ['key', 'context', 'id', 'base'], properties: { ...testKey, base: statuses } },
    },
    newSplats: { type: 'array', items: splatChangeSchema },
    goneSplats: { type: 'array', items: splatChangeSchema },
    metricRegressions: { type: 'array', items: metricChangeSchema },
    metricImprovements: { type: 'array', items: metricChangeSchema },
    metrics: { type: 'array', items: metricChangeSchema },
    infraErrors: {
      type: 'array',
      items: { type: 'object', required: ['runId', 'error'], properties: { runId: str, error: str } },
    },
    regressed: { type: 'boolean' },
  },
};

const NON_FINITE_PATHS = [
  ['medianBase'],
  ['medianHead'],
  ['ratio'],
  ['ci', 'low'],
  ['ci', 'high'],
  ['test', 'statistic'],
  ['test', 'p'],
];

/**
 * JSON has no NaN nor Infinity: JSON.stringify writes the non-finite numbers a metric change can
 * hold (the ratio over a zero base median, the CI when no resample has a non-zero base median)
 * as null. Read back, such a null is NaN again ("no finite value"), which the report already
 * renders; a null anywhere else is left for the schema to refuse.
 */
export function reviveComparison(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const c = value as Record<string, unknown>;
  for (const list of [c['metrics'], c['metricRegressions'], c['metricImprovements']]) {
    if (!Array.isArray(list)) continue;
    for (const change of list) for (const path of NON_FINITE_PATHS) nullToNaN(change, path);
  }
  return value;
}

function nullToNaN(obj: unknown, path: string[]): void {
  const [head, ...rest] = path;
  if (typeof obj !== 'object' || obj === null || head === undefined) return;
  const o = obj as Record<string, unknown>;
  if (rest.length > 0) nullToNaN(o[head], rest);
  else if (o[head] === null) o[head] = NaN;
}

interface Side {
  /** `known`: the known issue of its failures, when every failure had one (`unexplained`: one had none). */
  statuses: Map<
    string,
    { context: string; id: string; statuses: Status[]; reason?: string; known?: string; unexplained?: boolean }
  >;
  metrics: Map<string, { context: string; id: string; metric: string; unit: string; values: number[] }>;
  splats: Map<string, SplatChange>;
  kernels: Map<string, Set<string>>;
  /** Guest clocksources per context (runs that recorded one). */
  clocksources: Map<string, Set<string>>;
}

function collect(runs: readonly RunRecord[], contextOf: (r: RunRecord) => string): Side {
  const side: Side = {
    statuses: new Map(),
    metrics: new Map(),
    splats: new Map(),
    kernels: new Map(),
    clocksources: new Map(),
  };
  for (const r of runs) {
    const ctx = contextOf(r);
    const ks = side.kernels.get(ctx) ?? new Set<string>();
    ks.add(kernelIdentity(r));
    side.kernels.set(ctx, ks);
    const cs = side.clocksources.get(ctx) ?? new Set<string>();
    if (r.guest?.clocksource) cs.add(r.guest.clocksource);
    side.clocksources.set(ctx, cs);
    for (const t of r.subtests) addSubtest(side, ctx, t);
    for (const s of r.splats) {
      const sig = `${ctx}|${splatSignature(s)}`;
      if (!side.splats.has(sig)) {
        side.splats.set(sig, {
          signature: splatSignature(s),
          kind: s.kind,
          title: s.title,
          context: ctx,
          excerpt: s.excerpt,
          runId: r.runId,
          ...(s.test !== undefined ? { test: s.test } : {}),
        });
      }
    }
  }
  return side;
}

function addSubtest(side: Side, ctx: string, t: SubtestResult): void {
  const key = ctx ? `${ctx}|${t.id}` : t.id;
  const e = side.statuses.get(key) ?? { context: ctx, id: t.id, statuses: [] };
  e.statuses.push(t.status);
  if (t.reason !== undefined && (t.status === 'fail' || t.status === 'error')) e.reason = t.reason;
  if (bad(t.status)) {
    if (t.known === undefined) e.unexplained = true;
    else e.known ??= t.known;
  }
  side.statuses.set(key, e);
  for (const m of t.metrics ?? []) {
    // A log2 histogram bucket is part of a distribution (drawn by the reports), not a metric to flag.
    if (!Number.isFinite(m.value) || isHistogramBucket(m.name, m.unit)) continue;
    if (!tailComparable(t, m.name)) continue;
    const mk = `${key}|${m.name}|${m.unit}`;
    const me = side.metrics.get(mk) ?? { context: ctx, id: t.id, metric: m.name, unit: m.unit, values: [] };
    me.values.push(m.value);
    side.metrics.set(mk, me);
  }
}

/**
 * Tail percentiles are compared only when at least 10 samples lie beyond them: p99.9 of 1,000
 * samples is the largest one or two, and a night-to-night change in it is noise (clock-overhead's
 * p99.9 moved 97 -> 583 ns between two real nights and failed the nightly).
 */
const MIN_TAIL_SAMPLES = 10;

function tailComparable(t: SubtestResult, metric: string): boolean {
  const q = metricQuantile(metric);
  const n = q === undefined ? undefined : sampleCount(t, metric);
  return q === undefined || n === undefined || n * (1 - q) >= MIN_TAIL_SAMPLES - 1e-9;
}

const bad = (s: Status): boolean => s === 'fail' || s === 'error';

/** Compare base (e.g. last night) with head (tonight). */
export function compareRuns(
  base: readonly RunRecord[],
  head: readonly RunRecord[],
  opts: CompareRunsOptions = {},
): Comparison {
  const contextOf = opts.contextOf ?? guestRamContext;
  const b = collect(base, contextOf);
  const h = collect(head, contextOf);
  const out = emptyComparison(base, head, opts);
  compareStatuses(b, h, opts, out);
  for (const [sig, s] of h.splats) if (!b.splats.has(sig)) out.newSplats.push(s);
  for (const [sig, s] of b.splats) if (!h.splats.has(sig)) out.goneSplats.push(s);
  compareMetrics(b, h, opts, out);
  sortByKey(out);
  out.regressed = out.regressions.length > 0 || out.newSplats.length > 0 || out.metricRegressions.length > 0;
  return out;
}

/** A comparison with its options and sides filled in, nothing classified yet. */
function emptyComparison(base: readonly RunRecord[], head: readonly RunRecord[], opts: CompareRunsOptions): Comparison {
  return {
    options: { alpha: opts.alpha ?? 0.05, threshold: opts.threshold ?? 0.05, test: opts.test ?? 'mann-whitney' },
    base: { runs: base.map((r) => r.runId), kernels: [...new Set(base.map((r) => r.kernel.release ?? r.kernel.path))] },
    head: { runs: head.map((r) => r.runId), kernels: [...new Set(head.map((r) => r.kernel.release ?? r.kernel.path))] },
    regressions: [],
    fixed: [],
    flaky: [],
    appeared: [],
    vanished: [],
    newSplats: [],
    goneSplats: [],
    metricRegressions: [],
    metricImprovements: [],
    metrics: [],
    infraErrors: head
      .filter((r) => r.infraError !== undefined)
      .map((r) => ({ runId: r.runId, error: r.infraError ?? '' })),
    regressed: false,
  };
}

/** Sorts statuses into regressions, fixed, flaky, appeared and vanished. */
function compareStatuses(b: Side, h: Side, opts: CompareRunsOptions, out: Comparison): void {
  const sameKernel = (ctx: string): boolean => {
    const kb = b.kernels.get(ctx);
    const kh = h.kernels.get(ctx);
    if (!kb || !kh || kb.size !== 1 || kh.size !== 1) return false;
    return [...kb][0] === [...kh][0];
  };
  for (const [key, he] of h.statuses) {
    const be = b.statuses.get(key);
    const headStatuses = he.statuses;
    if (!be) {
      out.appeared.push({ key, context: he.context, id: he.id, head: headStatuses });
      continue;
    }
    const baseBad = be.statuses.some(bad);
    const baseGood = be.statuses.some((s) => s === 'pass');
    const headBad = headStatuses.some(bad);
    const headGood = headStatuses.some((s) => s === 'pass');
    if (!headBad && !baseBad) continue;
    const change: StatusChange = {
      key,
      context: he.context,
      id: he.id,
      base: be.statuses,
      head: headStatuses,
      ...(he.reason !== undefined ? { reason: he.reason } : {}),
    };
    const mixed = (baseBad && baseGood) || (headBad && headGood);
    if (headBad && !baseBad && he.known !== undefined && he.unexplained !== true)
      (out.known ??= []).push({ ...change, known: he.known });
    else if (headBad && !baseBad) {
      if (opts.knownFlaky?.has(key)) out.flaky.push({ ...change, flakyBecause: 'known-flaky' });
      else if (mixed) out.flaky.push({ ...change, flakyBecause: 'mixed-results' });
      else if (sameKernel(he.context)) out.flaky.push({ ...change, flakyBecause: 'same-kernel' });
      else if (baseGood) out.regressions.push(change);
    } else if (!headBad && baseBad) {
      if (mixed) out.flaky.push({ ...change, flakyBecause: 'mixed-results' });
      else if (headGood) out.fixed.push(change);
    } else if (mixed) {
      // Failing on both sides but intermittently on at least one: flaky, not news.
      out.flaky.push({ ...change, flakyBecause: opts.knownFlaky?.has(key) ? 'known-flaky' : 'mixed-results' });
    }
  }
  for (const [key, be] of b.statuses)
    if (!h.statuses.has(key)) out.vanished.push({ key, context: be.context, id: be.id, base: be.statuses });
}

/**
 * Compares every metric both sides measured; flags significant regressions and improvements.
 * Times and rates of a context whose sides ran on different guest clocksources are invalid:
 * kept with the reason, never flagged.
 */
function compareMetrics(b: Side, h: Side, opts: CompareRunsOptions, out: Comparison): void {
  let seed = opts.seed ?? 1;
  for (const [mk, hm] of h.metrics) {
    const bm = b.metrics.get(mk);
    if (!bm) continue;
    const direction = metricDirection(hm.metric, hm.unit);
    const sample = compareSamples(bm.values, hm.values, direction, { ...opts, seed: seed++ });
    const mismatch = clockBased(hm.unit)
      ? clocksourceMismatch(b.clocksources.get(hm.context) ?? [], h.clocksources.get(hm.context) ?? [])
      : undefined;
    const c = mismatch === undefined ? sample : invalidated(sample, mismatch);
    const change: MetricChange = {
      ...c,
      key: mk,
      context: hm.context,
      id: hm.id,
      metric: hm.metric,
      unit: hm.unit,
      direction,
    };
    out.metrics.push(change);
    if (c.regression) out.metricRegressions.push(change);
    if (c.improvement) out.metricImprovements.push(change);
  }
}

/** Orders every keyed list by key so a comparison reads (and diffs) the same each time. */
function sortByKey(out: Comparison): void {
  const byKey = <T extends { key: string }>(a: T, z: T): number => (a.key < z.key ? -1 : a.key > z.key ? 1 : 0);
  for (const list of [
    out.regressions,
    out.fixed,
    out.flaky,
    out.appeared,
    out.vanished,
    out.metrics,
    out.metricRegressions,
    out.metricImprovements,
  ])
    list.sort(byKey);
}

/** A compact text rendering for terminals and CI logs. */
export function formatComparison(c: Comparison, maxLines = 40): string {
  const lines: string[] = [];
  const fmtS = (xs: Status[]): string => xs.join(',');
  const section = <T>(title: string, items: T[], f: (x: T) => string): void => {
    if (items.length === 0) return;
    lines.push(`${title} (${items.length}):`);
    for (const x of items.slice(0, maxLines)) lines.push(`  ${f(x)}`);
    if (items.length > maxLines) lines.push(`  ... ${items.length - maxLines} more`);
  };
  section(
    'REGRESSIONS pass->fail',
    c.regressions,
    (x) => `${x.key}: ${fmtS(x.base)} -> ${fmtS(x.head)}${x.reason ? ` (${x.reason})` : ''}`,
  );
  section(
    'known issues (not regressions)',
    c.known ?? [],
    (x) => `${x.key}: ${fmtS(x.base)} -> ${fmtS(x.head)} [${x.known ?? ''}]`,
  );
  section('NEW SPLATS', c.newSplats, (x) => `[${x.context}] ${x.title}${x.test ? ` (during ${x.test})` : ''}`);
  section(
    'METRIC REGRESSIONS',
    c.metricRegressions,
    (x) =>
      `${x.key}: ${fmtNum(x.medianBase)} -> ${fmtNum(x.medianHead)} ${x.unit} (${pct(x.ratio)}, p=${x.test.p.toPrecision(2)}, 95% CI ${x.ci.low.toFixed(3)}..${x.ci.high.toFixed(3)})`,
  );
  section(
    'INVALID: timings not compared',
    invalidGroups(c.metrics),
    (x) => `${x.context || 'all runs'}: ${x.count} metric(s), ${x.reason}`,
  );
  section(
    'flaky (kept apart from regressions)',
    c.flaky,
    (x) => `${x.key}: ${fmtS(x.base)} -> ${fmtS(x.head)} [${x.flakyBecause ?? ''}]`,
  );
  section('fixed', c.fixed, (x) => `${x.key}: ${fmtS(x.base)} -> ${fmtS(x.head)}`);
  section('metric improvements', c.metricImprovements, (x) => `${x.key}: ${pct(x.ratio)}`);
  section('appeared', c.appeared, (x) => `${x.key}: ${fmtS(x.head)}`);
  section('vanished', c.vanished, (x) => `${x.key}: ${fmtS(x.base)}`);
  section('infrastructure errors', c.infraErrors, (x) => `${x.runId}: ${x.error}`);
  const invalid = c.metrics.filter((m) => m.invalidReason !== undefined).length;
  lines.push(
    `compare: ${c.regressions.length} regressions, ${c.newSplats.length} new splats, ${c.metricRegressions.length}/${c.metrics.length - invalid} metrics worse (p<${c.options.alpha}, >${(c.options.threshold * 100).toFixed(0)}%)${invalid ? `, ${invalid} invalid` : ''}, ${c.flaky.length} flaky, ${c.fixed.length} fixed`,
  );
  return lines.join('\n');
}

/** Invalid metric changes, one entry per context and reason. */
export function invalidGroups(metrics: readonly MetricChange[]): { context: string; reason: string; count: number }[] {
  const groups = new Map<string, { context: string; reason: string; count: number }>();
  for (const m of metrics) {
    if (m.invalidReason === undefined) continue;
    const k = `${m.context}\n${m.invalidReason}`;
    const g = groups.get(k) ?? { context: m.context, reason: m.invalidReason, count: 0 };
    g.count++;
    groups.set(k, g);
  }
  return [...groups.values()];
}

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6 || (a > 0 && a < 1e-3)) return x.toExponential(3);
  return a >= 100 ? x.toFixed(0) : a >= 1 ? x.toFixed(2) : x.toFixed(4);
}

function pct(ratio: number): string {
  const p = (ratio - 1) * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;
}
