import { BACKINGS, type Backing, type RunRecord } from '../results/types.js';
import { UsageError } from '../util/errors.js';

/**
 * What a bisect step tests, parsed from the command line:
 *   --test uffd-unit-tests:minor/hugetlb                  a subtest must pass
 *   --metric uffd-lat:continue/hugetlb/p50 --above 20us   a metric must not exceed (or --below: fall under) a threshold
 * "program:path" names the subtest id "program/path" in RunRecord.subtests; a metric spec's last
 * path element is the metric name inside that subtest's `metrics`.
 */
export type TestSpec = SubtestSpec | MetricSpec;

interface SpecBase {
  /** As the user wrote it (for reports and the resume key). */
  text: string;
  program: string;
  /** RunRecord subtest id, e.g. "uffd-unit-tests/minor/hugetlb". */
  subtestId: string;
  /** Test name within the program (first path element), used as the run filter. */
  testName: string;
  backing?: Backing;
}

export interface SubtestSpec extends SpecBase {
  kind: 'subtest';
}

export interface MetricSpec extends SpecBase {
  kind: 'metric';
  metric: string;
  /** 'above': a revision is bad when the value is above the threshold; 'below': when under it. */
  direction: 'above' | 'below';
  threshold: Quantity;
}

/** A number with an optional unit; time quantities are normalised to nanoseconds. */
export interface Quantity {
  value: number;
  /** 'ns' for time quantities; '' for plain numbers (compared in the metric's own unit). */
  unit: 'ns' | '';
  text: string;
}

const TIME_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, usec: 1e3, ms: 1e6, msec: 1e6, s: 1e9, sec: 1e9 };

export function parseQuantity(text: string, flag: string): Quantity {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-zµ]*)\s*$/i.exec(text);
  if (!m?.[1]) throw new UsageError(`${flag} '${text}' is not a number with a unit: write e.g. 20us, 1.5ms or 800ns`);
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase();
  if (!unit) return { value: n, unit: '', text };
  const scale = TIME_UNITS[unit];
  if (scale === undefined) throw new UsageError(`${flag} '${text}': unknown unit '${m[2]}': use ns, us, ms or s`);
  return { value: n * scale, unit: 'ns', text };
}

/** A metric value in ns when its unit is a time unit; undefined when it is not. */
export function metricToNs(value: number, unit: string): number | undefined {
  const scale = TIME_UNITS[unit.trim().toLowerCase()];
  return scale === undefined ? undefined : value * scale;
}

function splitSpec(text: string, flag: string, example: string): { program: string; path: string[] } {
  const m = /^([A-Za-z0-9_.+-]+):([A-Za-z0-9_.+\-/]+)$/.exec(text.trim());
  if (!m?.[1] || !m[2]) throw new UsageError(`${flag} '${text}' is not program:test[/backing]: e.g. ${example}`);
  const path = m[2].split('/');
  if (path.some((p) => p === '')) throw new UsageError(`${flag} '${text}' has an empty path element: e.g. ${example}`);
  return { program: m[1], path };
}

function backingOf(path: readonly string[]): Backing | undefined {
  const last = path[path.length - 1];
  return last !== undefined && (BACKINGS as readonly string[]).includes(last) ? (last as Backing) : undefined;
}

export function parseSubtestSpec(text: string): SubtestSpec {
  const ex = 'uffd-unit-tests:minor/hugetlb';
  const { program, path } = splitSpec(text, '--test', ex);
  const backing = backingOf(path);
  return {
    kind: 'subtest',
    text,
    program,
    subtestId: `${program}/${path.join('/')}`,
    testName: path[0] ?? '',
    ...(backing ? { backing } : {}),
  };
}

export function parseMetricSpec(text: string, threshold: { above?: string; below?: string }): MetricSpec {
  const ex = 'uffd-lat:continue/hugetlb/p50 --above 20us';
  const { program, path } = splitSpec(text, '--metric', ex);
  if (path.length < 2) throw new UsageError(`--metric '${text}' needs test and metric name: e.g. ${ex}`);
  if ((threshold.above === undefined) === (threshold.below === undefined)) {
    throw new UsageError(`--metric needs exactly one of --above or --below: e.g. ${ex}`);
  }
  const direction = threshold.above !== undefined ? 'above' : 'below';
  const q = parseQuantity((threshold.above ?? threshold.below) as string, `--${direction}`);
  const metric = path[path.length - 1] as string;
  const testPath = path.slice(0, -1);
  const backing = backingOf(testPath);
  return {
    kind: 'metric',
    text: `${text} --${direction} ${q.text}`,
    program,
    subtestId: `${program}/${testPath.join('/')}`,
    testName: testPath[0] ?? '',
    metric,
    direction,
    threshold: q,
    ...(backing ? { backing } : {}),
  };
}

/** What one run of a revision says about the spec. */
export type Evaluation =
  | { kind: 'pass' | 'fail'; value?: number; unit?: string; detail: string }
  /** The revision cannot answer: the test does not exist or was skipped there (bisect skips it). */
  | { kind: 'untestable'; detail: string }
  /** The run itself broke (guest died, harness error): retried, then skipped. */
  | { kind: 'infra'; detail: string };

export function evaluateRecord(spec: TestSpec, record: Pick<RunRecord, 'subtests' | 'infraError'>): Evaluation {
  const sub = record.subtests.find((s) => s.id === spec.subtestId);
  if (!sub) {
    if (record.infraError !== undefined) return { kind: 'infra', detail: record.infraError };
    return { kind: 'untestable', detail: `no subtest ${spec.subtestId} in the results` };
  }
  if (spec.kind === 'subtest') {
    if (sub.status === 'pass') return { kind: 'pass', detail: 'pass' };
    if (sub.status === 'skip') return { kind: 'untestable', detail: `skipped${sub.reason ? `: ${sub.reason}` : ''}` };
    // 'error' is the test crashing: that is the revision's behaviour, so it counts as a failure.
    return { kind: 'fail', detail: `${sub.status}${sub.reason ? `: ${sub.reason}` : ''}` };
  }
  if (sub.status === 'skip') return { kind: 'untestable', detail: `skipped${sub.reason ? `: ${sub.reason}` : ''}` };
  const m = sub.metrics?.find((x) => x.name === spec.metric);
  if (!m) {
    if (sub.status === 'fail' || sub.status === 'error') return { kind: 'fail', detail: `${sub.status} without metric ${spec.metric}` };
    return { kind: 'untestable', detail: `subtest ${spec.subtestId} has no metric ${spec.metric}` };
  }
  let value = m.value;
  let unit = m.unit;
  if (spec.threshold.unit === 'ns') {
    const ns = metricToNs(m.value, m.unit);
    if (ns === undefined) return { kind: 'untestable', detail: `metric ${spec.metric} is in '${m.unit}', not a time unit` };
    value = ns;
    unit = 'ns';
  }
  const bad = spec.direction === 'above' ? value > spec.threshold.value : value < spec.threshold.value;
  return { kind: bad ? 'fail' : 'pass', value, unit, detail: `${spec.metric}=${formatValue(value, unit)} (${spec.direction} ${spec.threshold.text} is bad)` };
}

export function formatValue(value: number, unit: string): string {
  if (unit !== 'ns') return `${+value.toPrecision(4)}${unit ? ` ${unit}` : ''}`;
  if (value >= 1e9) return `${+(value / 1e9).toPrecision(4)}s`;
  if (value >= 1e6) return `${+(value / 1e6).toPrecision(4)}ms`;
  if (value >= 1e3) return `${+(value / 1e3).toPrecision(4)}us`;
  return `${+value.toPrecision(4)}ns`;
}
