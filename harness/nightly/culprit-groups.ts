/**
 * Which of a night's regressions become bisects (issue 23): each pass -> fail/error (the
 * comparison already set flaky ones apart), each failing test the baseline did not run but an
 * earlier night passed, each new splat and each significant metric regression, on a tree kernel
 * whose good night tested another commit. Regressions sharing kernel, config and commit window
 * are one group, bisected first on its strongest signal: a splat title, then a test failure, then
 * a metric (culprits.ts then checks the others against that culprit). A group an earlier night of
 * the plan already bisected (same signal, same window), or a failure that an earlier culprit
 * still explains, is not bisected again.
 */
import type { Comparison, MetricChange } from '../analysis/compare.js';
import { evaluateRecord, formatValue, metricToNs, parseMetricSpec, type MetricSpec } from '../bisect/spec.js';
import { splatTitleKey } from '../console/signature.js';
import { nightlyContext, runEntries, type HistoryEntry } from '../history/index.js';
import type { BisectSignal, LoadedJob, NightlyBisect, NightlyRecord } from '../results/nightly.js';
import { FaultlineError } from '../util/errors.js';

/** Hex and decimal numbers in a splat title: addresses, offsets, pids, CPUs, line numbers. */
const SPLAT_NUMBER = /(?:0x)?[0-9a-f]*\d[0-9a-f]*/g;

/** A regex for a splat title on other builds: hex and decimal numbers (addresses, offsets, pids) loosened. */
export function splatTitlePattern(title: string): string {
  return title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(SPLAT_NUMBER, '[0-9a-fx]+');
}

/**
 * A signal's identity: a splat's title as console/ keys it across boots (the same WARN in
 * another pid or on another CPU is the same regression), a test's or metric's id as it is.
 */
function signalKey(s: BisectSignal): string {
  return `${s.kind}\0${s.kind === 'splat' ? splatTitleKey(s.id) : s.id}`;
}

/** One regression of a group and the job that showed it: bisected alone, it runs that job's suite, backing and guest RAM. */
export interface GroupMember {
  signal: BisectSignal;
  job: Pick<LoadedJob['job'], 'backing' | 'suite' | 'guestRam'>;
}

/** A regression group to bisect: NightlyBisect before its outcome, with its members (not recorded). */
export type RegressionGroup = Omit<NightlyBisect, 'outcome'> & { members: GroupMember[] };

/** One member as a group of its own (its own signal, suite, backing and guest RAM), same window. */
export function memberGroup(group: RegressionGroup, m: GroupMember): RegressionGroup {
  const { backing, suite, guestRam } = m.job;
  return { ...group, backing, suite, guestRam, signal: m.signal, signals: [m.signal], members: [m] };
}

/** One regression found in tonight's comparison, with the job that showed it. */
interface Found {
  job: LoadedJob['job'];
  signal: BisectSignal;
  /** The baseline night passed the test (else the last night that did is the good end). */
  baselinePassed: boolean;
}

/** An earlier night with the commit it tested for a kernel. */
export interface GoodNight {
  nightlyId: string;
  commit: string;
}

/** The last earlier night that passed a test on a job's kernel, config, guest RAM and backing. */
export type LastPassingNight = (job: LoadedJob['job'], testId: string) => GoodNight | undefined;

/**
 * The last passing night from the history index's run entries of the plan's earlier nights
 * (newest first) and those nights' records (the commit each tested).
 */
export function lastPassingNightIn(
  history: readonly HistoryEntry[],
  nights: readonly Pick<NightlyRecord, 'nightlyId' | 'planName' | 'commits'>[],
): LastPassingNight {
  const byId = new Map(nights.map((n) => [n.nightlyId, n]));
  const runs = runEntries(history)
    .filter((r) => r.nightlyId !== undefined && byId.has(r.nightlyId))
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  return (job, testId) => {
    for (const r of runs) {
      if (r.kernelName !== job.kernel || r.config !== job.config || r.guestRam !== job.guestRam) continue;
      if (!r.backings.includes(job.backing) || !r.tests.some(([id, st]) => id === testId && st === 'pass')) continue;
      const commit = byId.get(r.nightlyId ?? '')?.commits?.[job.kernel];
      if (commit !== undefined) return { nightlyId: r.nightlyId ?? '', commit };
    }
    return undefined;
  };
}

/** The job of tonight whose run, in this comparison context, has a subtest `id` that `matches`. */
function jobWith(
  runs: readonly LoadedJob[],
  context: string,
  id: string,
  matches: (s: LoadedJob['record']['subtests'][number]) => boolean,
): LoadedJob['job'] | undefined {
  return runs.find(
    (r) =>
      nightlyContext(r.job.kernel, r.job.config, r.job.guestRam) === context &&
      r.record.subtests.some((s) => s.id === id && matches(s)),
  )?.job;
}

/** A failure no known issue explains. */
const unexplainedFailure = (s: { status: string; known?: string }): boolean =>
  (s.status === 'fail' || s.status === 'error') && !s.known;

/**
 * A slowed (or lowered) metric as a bisect signal: a revision is bad when its value lies beyond
 * the geometric mean of the baseline's median and tonight's, on tonight's side of it.
 */
function metricSignal(c: MetricChange): BisectSignal {
  return {
    kind: 'metric',
    id: `${c.id}/${c.metric}`,
    threshold: {
      direction: c.direction === 'lower-is-better' ? 'above' : 'below',
      value: quantityText(Math.sqrt(c.medianBase * c.medianHead), c.unit),
    },
  };
}

/** A threshold as --above/--below read it, without a space (567.3us; a plain number in the metric's own unit). */
function quantityText(value: number, unit: string): string {
  const ns = metricToNs(value, unit);
  return ns === undefined ? formatValue(value, '') : formatValue(ns, 'ns');
}

/** A metric signal as `faultline bisect --metric` parses it. */
export function metricSpecOf(signal: BisectSignal): MetricSpec {
  const [program, ...path] = signal.id.split('/');
  const t = signal.threshold;
  if (t === undefined) throw new FaultlineError(`metric signal ${signal.id} has no threshold in nightly.json`);
  return parseMetricSpec(`${program ?? ''}:${path.join('/')}`, { [t.direction]: t.value });
}

/**
 * Tonight's regressions, each with its job, strongest first: new splats, then failing tests,
 * then metrics that moved significantly and beyond the comparison's threshold.
 */
function regressionsOf(comparison: Comparison, runs: readonly LoadedJob[]): Found[] {
  const out: Found[] = [];
  for (const s of comparison.newSplats) {
    const job = runs.find((r) => r.record.runId === s.runId)?.job;
    if (job) out.push({ job, signal: { kind: 'splat', id: s.title }, baselinePassed: true });
  }
  for (const c of comparison.regressions) {
    if (c.flakyBecause !== undefined || c.known !== undefined) continue;
    const job = jobWith(runs, c.context, c.id, unexplainedFailure);
    if (job) out.push({ job, signal: { kind: 'test', id: c.id }, baselinePassed: true });
  }
  // Failing tonight, not run by the baseline night (its job died, or the test was filtered out):
  // a regression when an earlier night passed it (goodEndOf looks that night up).
  for (const c of comparison.appeared) {
    if (!c.head.every((s) => s === 'fail' || s === 'error')) continue;
    const job = jobWith(runs, c.context, c.id, unexplainedFailure);
    if (job) out.push({ job, signal: { kind: 'test', id: c.id }, baselinePassed: false });
  }
  // The clearest change first: a bisect on it separates good from bad revisions best.
  const metrics = comparison.metricRegressions
    .filter((c) => c.invalidReason === undefined && c.medianBase > 0 && c.medianHead > 0)
    .sort((a, b) => Math.abs(Math.log(b.ratio)) - Math.abs(Math.log(a.ratio)));
  // One signal per subtest (its clearest metric): a slowed path moves its mean, minimum and
  // percentiles together, and that is one regression, not ten.
  const seen = new Set<string>();
  for (const c of metrics) {
    const subtest = `${c.context}\0${c.id}`;
    if (seen.has(subtest)) continue;
    seen.add(subtest);
    const job = jobWith(runs, c.context, c.id, () => true);
    if (job) out.push({ job, signal: metricSignal(c), baselinePassed: true });
  }
  return out;
}

/**
 * The good end of a regression's window: the baseline night, which passed the test (or, for a
 * splat or a metric, ran it); for a test the baseline did not run, the last earlier night that
 * passed it ("previous good"); none when no night did (a new test failing is no regression).
 */
function goodEndOf(
  f: Found,
  baseline: Pick<NightlyRecord, 'commits' | 'nightlyId'>,
  lastPass: LastPassingNight | undefined,
): GoodNight | undefined {
  if (!f.baselinePassed) return lastPass?.(f.job, f.signal.id);
  const commit = baseline.commits?.[f.job.kernel];
  return commit === undefined ? undefined : { nightlyId: baseline.nightlyId, commit };
}

/**
 * Tonight's regression groups on tree kernels whose commit moved since the good night: one per
 * kernel, config and window, its first (strongest) regression as the signal the bisect tests.
 */
export function regressionGroups(
  comparison: Comparison,
  tonight: Pick<NightlyRecord, 'commits'>,
  baseline: Pick<NightlyRecord, 'commits' | 'nightlyId'>,
  runs: readonly LoadedJob[],
  lastPass?: LastPassingNight,
): RegressionGroup[] {
  const groups = new Map<string, RegressionGroup>();
  for (const found of regressionsOf(comparison, runs)) {
    const { job, signal } = found;
    const bad = tonight.commits?.[job.kernel];
    const good = goodEndOf(found, baseline, lastPass);
    if (bad === undefined || good === undefined || good.commit === bad) continue;
    const key = `${job.kernel}\0${job.config}\0${good.commit}\0${bad}`;
    const g = groups.get(key);
    if (g) {
      if (g.signals.some((s) => signalKey(s) === signalKey(signal))) continue;
      g.signals.push(signal);
      g.members.push({ signal, job });
      continue;
    }
    groups.set(key, {
      kernel: job.kernel,
      config: job.config,
      guestRam: job.guestRam,
      backing: job.backing,
      suite: job.suite,
      signal,
      signals: [signal],
      good: good.commit,
      bad,
      goodNight: good.nightlyId,
      members: [{ signal, job }],
    });
  }
  return [...groups.values()];
}

/** Kernel, config and signal: what makes two nights' regressions the same one. */
export function signatureOf(b: Pick<NightlyBisect, 'kernel' | 'config' | 'signal'>): string {
  return `${b.kernel}\0${b.config}\0${signalKey(b.signal)}`;
}

/** An earlier night's bisect, with the night that ran it. */
export interface EarlierBisect {
  nightlyId: string;
  bisect: NightlyBisect;
}

/** The bisects the plan's earlier nights ran themselves (a 'known' entry only points back to one). */
export function earlierBisects(nights: readonly Pick<NightlyRecord, 'nightlyId' | 'bisects'>[]): EarlierBisect[] {
  return nights.flatMap((n) =>
    (n.bisects ?? []).filter((b) => b.outcome !== 'known').map((bisect) => ({ nightlyId: n.nightlyId, bisect })),
  );
}

/** The earlier bisect of a group: same signature and the same window. */
export function alreadyBisected(group: RegressionGroup, earlier: readonly EarlierBisect[]): EarlierBisect | undefined {
  const sig = signatureOf(group);
  return earlier.find(
    (e) => signatureOf(e.bisect) === sig && e.bisect.good === group.good && e.bisect.bad === group.bad,
  );
}

/** A group an earlier night bisected, as tonight's entry: "failing since night X, culprit Y". */
export function knownEntry(group: Omit<NightlyBisect, 'outcome'>, earlier: EarlierBisect): NightlyBisect {
  const b = earlier.bisect;
  const { kernel, config, guestRam, backing, suite, signal, signals, good, bad, goodNight } = group;
  return {
    ...{ kernel, config, guestRam, backing, suite, signal, signals, good, bad, goodNight },
    outcome: 'known',
    since: earlier.nightlyId,
    ...(b.culprit ? { culprit: b.culprit } : {}),
    ...(b.outcome === 'inconclusive' && b.reason !== undefined ? { reason: b.reason } : {}),
  };
}

/** Whether tonight's runs of this kernel and config still show the signal (a failing test or the splat). */
function stillFailing(runs: readonly LoadedJob[], b: NightlyBisect): boolean {
  return runs.some(
    (r) =>
      r.job.kernel === b.kernel &&
      r.job.config === b.config &&
      (b.signal.kind === 'test'
        ? r.record.subtests.some((s) => s.id === b.signal.id && (s.status === 'fail' || s.status === 'error'))
        : b.signal.kind === 'metric'
          ? evaluateRecord(metricSpecOf(b.signal), r.record).kind === 'fail'
          : r.record.splats.some((s) => splatTitleKey(s.title) === splatTitleKey(b.signal.id))),
  );
}

/**
 * Failures that are no regression tonight (the baseline failed too) but that an earlier night's
 * verified culprit explains: the latest culprit per signature whose commit tonight's still
 * contains (`contains(culprit, tonight)`, git's ancestry).
 */
export async function persistentFailures(
  earlier: readonly EarlierBisect[],
  tonight: Pick<NightlyRecord, 'commits'>,
  runs: readonly LoadedJob[],
  contains: (culprit: string, commit: string) => Promise<boolean>,
  skip: ReadonlySet<string>,
): Promise<NightlyBisect[]> {
  const latest = new Map<string, EarlierBisect>();
  for (const e of earlier) if (e.bisect.outcome === 'culprit') latest.set(signatureOf(e.bisect), e);
  const out: NightlyBisect[] = [];
  for (const [sig, e] of latest) {
    const commit = tonight.commits?.[e.bisect.kernel];
    const culprit = e.bisect.culprit?.hash;
    if (skip.has(sig) || commit === undefined || culprit === undefined || !stillFailing(runs, e.bisect)) continue;
    if (!(await contains(culprit, commit))) continue;
    out.push(knownEntry({ ...e.bisect, bad: commit }, e));
  }
  return out;
}
