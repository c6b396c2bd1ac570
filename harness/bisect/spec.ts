import { BACKINGS, type Backing, type RunRecord, type Splat } from '../results/types.js';
import { isFatalSplat } from '../console/severity.js';
import { basename } from 'node:path';
import { UsageError } from '../util/errors.js';

/**
 * What a bisect step tests, parsed from the command line:
 *   --test uffd-unit-tests:minor/hugetlb                  a subtest must pass
 *   --metric uffd-lat:minor-continue/hugetlb/blocking/total_p50 --above 20us
 *                                                         a metric must not exceed (or --below: fall under) a threshold
 *   --splat REGEX | --splat any                           the console must show no kernel splat whose title matches
 *   --program repro.c (alone)                             the user's program must pass (not fail, crash or take the kernel down)
 * "program:path" names the subtest id "program/path" in RunRecord.subtests; a metric spec's last
 * path element is the metric name inside that subtest's `metrics`.
 */
export type TestSpec = SubtestSpec | MetricSpec | SplatSpec | ProgramSpec;

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

/** Bad when a run's console has a splat whose title matches (syzkaller bisects by crash title). */
export interface SplatSpec {
  kind: 'splat';
  /** "--splat REGEX", as the user wrote it. */
  text: string;
  /** Matched against Splat.title; absent for `--splat any` (every splat kind counts). */
  pattern?: RegExp;
}

/** Bad when one of the user's --program files fails or crashes (syzkaller's reproducer bisection). */
export interface ProgramSpec {
  kind: 'program';
  /** "--program repro.c", as the user wrote it. */
  text: string;
  /** The programs' names in the results (file names without .c). */
  programs: string[];
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

const TIME_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, usec: 1e3, ms: 1e6, msec: 1e6, s: 1e9, sec: 1e9 };

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

function isBacking(s: string): s is Backing {
  return (BACKINGS as readonly string[]).includes(s);
}

/**
 * The backing named anywhere in a test path: ids put it in the middle too
 * (uffd-lat/minor-continue/shmem/blocking). Two of them: the longest (hugetlb-private over hugetlb).
 */
function backingOf(path: readonly string[]): Backing | undefined {
  return path
    .filter(isBacking)
    .reduce<Backing | undefined>((best, b) => (best === undefined || b.length > best.length ? b : best), undefined);
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

/** A real uffd-lat subtest id and metric, for help and errors (spec.test.ts checks it against a captured run). */
export const METRIC_EXAMPLE = 'uffd-lat:minor-continue/hugetlb/blocking/total_p50';

export function parseMetricSpec(text: string, threshold: { above?: string; below?: string }): MetricSpec {
  const ex = `${METRIC_EXAMPLE} --above 20us`;
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

/**
 * The kind of spec a record's `spec` text is, from the forms the parsers above write (a
 * `--test-cmd` bisect records "test-cmd: CMD").
 */
export function specKindOf(text: string): TestSpec['kind'] | 'command' {
  if (text.startsWith('--splat ')) return 'splat';
  if (text.startsWith('--program ')) return 'program';
  if (text.startsWith('test-cmd: ')) return 'command';
  return / --(above|below) /.test(text) ? 'metric' : 'subtest';
}

/** `--splat any` or a regular expression matched against the splat's title. */
export function parseSplatSpec(text: string): SplatSpec {
  const t = text.trim();
  if (t === '')
    throw new UsageError(
      `--splat needs a title pattern or 'any': e.g. --splat 'WARNING: .* userfaultfd_ioctl' or --splat any`,
    );
  if (t === 'any') return { kind: 'splat', text: '--splat any' };
  try {
    return { kind: 'splat', text: `--splat ${t}`, pattern: new RegExp(t) };
  } catch (e) {
    throw new UsageError(
      `--splat '${t}' is not a valid regular expression (${(e as Error).message}): e.g. 'KASAN: use-after-free in uffd_' or any`,
    );
  }
}

/** `--program FILE.c ...` without --test/--metric/--splat: the programs themselves are the test. */
export function parseProgramSpec(files: readonly string[]): ProgramSpec {
  if (files.length === 0) throw new UsageError('--program needs a C file: e.g. --program repro.c');
  return {
    kind: 'program',
    text: files.map((f) => `--program ${basename(f)}`).join(' '),
    programs: files.map((f) => basename(f).replace(/\.c$/, '')),
  };
}

/** What one run of a revision says about the spec. */
export type Evaluation =
  | { kind: 'pass' | 'fail'; value?: number; unit?: string; detail: string }
  /** The revision cannot answer: the test does not exist or was skipped there (bisect skips it). */
  | { kind: 'untestable'; detail: string }
  /** The run itself broke (guest died, harness error): retried, then skipped. */
  | { kind: 'infra'; detail: string }
  /**
   * The test failed as a known issue (--known-issues) explains, not as the bisected failure: the
   * run did not answer, and runs again (a flake's error on the way to the one bisected).
   */
  | { kind: 'known'; detail: string };

function splatText(s: Splat): string {
  return `${s.title}${s.test ? ` (during ${s.test})` : ''}`;
}

type JudgedRecord = Pick<RunRecord, 'subtests' | 'infraError' | 'splats'>;

export function evaluateRecord(spec: TestSpec, record: JudgedRecord): Evaluation {
  if (spec.kind === 'splat') return evaluateSplats(spec, record);
  if (spec.kind === 'program') return evaluatePrograms(spec, record);
  const sub = record.subtests.find((s) => s.id === spec.subtestId);
  if (!sub) return evaluateAbsent(spec, record);
  if (spec.kind === 'subtest') {
    if (sub.status === 'pass') return { kind: 'pass', detail: 'pass' };
    if (sub.status === 'skip') return { kind: 'untestable', detail: `skipped${sub.reason ? `: ${sub.reason}` : ''}` };
    if (sub.known !== undefined)
      return { kind: 'known', detail: `known issue ${sub.known}: ${sub.status}${sub.reason ? `: ${sub.reason}` : ''}` };
    // 'error' is the test crashing: that is the revision's behaviour, so it counts as a failure.
    // 'flaky' failed first and passed on a rerun: the first attempt is what this run saw (the
    // bisect runs with retries 0 and repeats under its own policy, which must see that failure).
    return { kind: 'fail', detail: `${sub.status}${sub.reason ? `: ${sub.reason}` : ''}` };
  }
  return evaluateMetric(spec, sub);
}

/**
 * The spec's subtest is not in the results. A guest that died with a splat on the console (with
 * infraError, or, in newer records, a failed subtest instead) failed the test: the kernel broke
 * under it, which is the revision's behaviour, not the harness's. Without a splat a dead guest is
 * infra; a finished run without the subtest means the test does not exist at this revision.
 */
function evaluateAbsent(spec: SubtestSpec | MetricSpec, record: JudgedRecord): Evaluation {
  const crash = record.splats.find(isFatalSplat) ?? (record.infraError !== undefined ? record.splats[0] : undefined);
  if (crash)
    return { kind: 'fail', detail: `kernel ${crash.kind} before ${spec.subtestId} finished: ${splatText(crash)}` };
  if (record.infraError !== undefined) return { kind: 'infra', detail: record.infraError };
  return { kind: 'untestable', detail: `no subtest ${spec.subtestId} in the results` };
}

/**
 * --program: every result of the user's programs (one per backing, or one per KTAP test) must
 * pass; a failure, or a crash of the program or the kernel under it (status error), is bad. A run
 * with no result of them: the kernel died before (bad when it left a splat), harness trouble, or
 * the programs did not run (untestable).
 */
function evaluatePrograms(spec: ProgramSpec, record: JudgedRecord): Evaluation {
  const mine = record.subtests.filter((s) => spec.programs.includes(s.program));
  const bad = mine.find((s) => s.status === 'fail' || s.status === 'error' || s.status === 'flaky');
  if (bad) return { kind: 'fail', detail: `${bad.id}: ${bad.status}${bad.reason ? `: ${bad.reason}` : ''}` };
  const passed = mine.filter((s) => s.status === 'pass');
  if (passed.length > 0) return { kind: 'pass', detail: `${passed.length} passed` };
  if (mine.length > 0) {
    const skip = mine[0];
    return { kind: 'untestable', detail: `skipped${skip?.reason ? `: ${skip.reason}` : ''}` };
  }
  const crash = record.splats.find(isFatalSplat) ?? (record.infraError !== undefined ? record.splats[0] : undefined);
  if (crash) return { kind: 'fail', detail: `kernel ${crash.kind} before the program finished: ${splatText(crash)}` };
  if (record.infraError !== undefined) return { kind: 'infra', detail: record.infraError };
  return { kind: 'untestable', detail: `no result of ${spec.programs.join(', ')} in the run` };
}

function evaluateMetric(spec: MetricSpec, sub: JudgedRecord['subtests'][number]): Evaluation {
  if (sub.status === 'skip') return { kind: 'untestable', detail: `skipped${sub.reason ? `: ${sub.reason}` : ''}` };
  const m = sub.metrics?.find((x) => x.name === spec.metric);
  if (!m) {
    if (sub.status === 'fail' || sub.status === 'error')
      return { kind: 'fail', detail: `${sub.status} without metric ${spec.metric}` };
    return { kind: 'untestable', detail: `subtest ${spec.subtestId} has no metric ${spec.metric}` };
  }
  let value = m.value;
  let unit = m.unit;
  if (spec.threshold.unit === 'ns') {
    const ns = metricToNs(m.value, m.unit);
    if (ns === undefined)
      return { kind: 'untestable', detail: `metric ${spec.metric} is in '${m.unit}', not a time unit` };
    value = ns;
    unit = 'ns';
  }
  const bad = spec.direction === 'above' ? value > spec.threshold.value : value < spec.threshold.value;
  return {
    kind: bad ? 'fail' : 'pass',
    value,
    unit,
    detail: `${spec.metric}=${formatValue(value, unit)} (${spec.direction} ${spec.threshold.text} is bad)`,
  };
}

function splatMatches(spec: SplatSpec, s: Pick<Splat, 'title'>): boolean {
  return spec.pattern === undefined || spec.pattern.test(s.title);
}

/**
 * --splat: a matching splat makes the run bad whatever else happened (a guest it killed included:
 * a commit that panics the kernel must be able to come out as the culprit). Without one, a run
 * that broke or that another fatal splat cut short cannot say the revision is good.
 */
function evaluateSplats(spec: SplatSpec, record: JudgedRecord): Evaluation {
  // --splat any: a splat a known issue explains is not what is bisected; a named one is, known or not.
  const hit = record.splats.find((s) => splatMatches(spec, s) && (spec.pattern !== undefined || s.known === undefined));
  if (hit) return { kind: 'fail', detail: `${hit.kind}: ${splatText(hit)}` };
  const other = record.splats.find(isFatalSplat);
  if (record.infraError !== undefined)
    return { kind: 'infra', detail: `${record.infraError}${other ? ` (${other.title})` : ''}` };
  if (other) return { kind: 'untestable', detail: `the kernel hit another splat first: ${splatText(other)}` };
  if (record.subtests.length === 0)
    return { kind: 'untestable', detail: 'the run ran no tests (check --suite, --backing and --filter)' };
  const others = record.splats.length;
  return {
    kind: 'pass',
    detail: others
      ? `no matching splat (${others} other${others > 1 ? 's' : ''}: ${record.splats[0]?.title ?? ''})`
      : 'no splat',
  };
}

export function formatValue(value: number, unit: string): string {
  if (unit !== 'ns') return `${+value.toPrecision(4)}${unit ? ` ${unit}` : ''}`;
  if (value >= 1e9) return `${+(value / 1e9).toPrecision(4)}s`;
  if (value >= 1e6) return `${+(value / 1e6).toPrecision(4)}ms`;
  if (value >= 1e3) return `${+(value / 1e3).toPrecision(4)}us`;
  return `${+value.toPrecision(4)}ns`;
}
