/**
 * Which of a night's regressions become bisects (issue 23): each pass -> fail/error (the
 * comparison already set flaky ones apart) and each new splat on a tree kernel whose baseline
 * night tested another commit. Regressions sharing kernel, config and commit window are one group,
 * bisected once on its strongest signal: a splat title before a test failure. A group an earlier
 * night of the plan already bisected (same signal, same window), or a failure that an earlier
 * culprit still explains, is not bisected again.
 */
import type { Comparison } from '../analysis/compare.js';
import { nightlyContext } from '../history/index.js';
import type { BisectSignal, LoadedJob, NightlyBisect, NightlyRecord } from '../results/nightly.js';

/** A regex for a splat title on other builds: hex and decimal numbers (addresses, offsets, pids) loosened. */
export function splatTitlePattern(title: string): string {
  return title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/(?:0x)?[0-9a-f]*\d[0-9a-f]*/g, '[0-9a-fx]+');
}

/** A regression group to bisect: NightlyBisect before its outcome. */
export type RegressionGroup = Omit<NightlyBisect, 'outcome'>;

/** One regression found in tonight's comparison, with the job that showed it. */
interface Found {
  job: LoadedJob['job'];
  signal: BisectSignal;
}

/** The job of tonight that showed a failing subtest in this comparison context. */
function jobOfTest(runs: readonly LoadedJob[], context: string, id: string): LoadedJob['job'] | undefined {
  return runs.find(
    (r) =>
      nightlyContext(r.job.kernel, r.job.config, r.job.guestRam) === context &&
      r.record.subtests.some((s) => s.id === id && (s.status === 'fail' || s.status === 'error')),
  )?.job;
}

/** Tonight's regressions, each with its job: new splats first (the strongest signal), then failing tests. */
function regressionsOf(comparison: Comparison, runs: readonly LoadedJob[]): Found[] {
  const out: Found[] = [];
  for (const s of comparison.newSplats) {
    const job = runs.find((r) => r.record.runId === s.runId)?.job;
    if (job) out.push({ job, signal: { kind: 'splat', id: s.title } });
  }
  for (const c of comparison.regressions) {
    if (c.flakyBecause !== undefined || c.known !== undefined) continue;
    const job = jobOfTest(runs, c.context, c.id);
    if (job) out.push({ job, signal: { kind: 'test', id: c.id } });
  }
  return out;
}

/**
 * Tonight's regression groups on tree kernels whose commit moved since the baseline night: one per
 * kernel, config and window, its first (strongest) regression as the signal the bisect tests.
 */
export function regressionGroups(
  comparison: Comparison,
  tonight: Pick<NightlyRecord, 'commits'>,
  baseline: Pick<NightlyRecord, 'commits' | 'nightlyId'>,
  runs: readonly LoadedJob[],
): RegressionGroup[] {
  const groups = new Map<string, RegressionGroup>();
  for (const { job, signal } of regressionsOf(comparison, runs)) {
    const bad = tonight.commits?.[job.kernel];
    const good = baseline.commits?.[job.kernel];
    if (bad === undefined || good === undefined || good === bad) continue;
    const key = `${job.kernel}\0${job.config}\0${good}\0${bad}`;
    const g = groups.get(key);
    if (g) {
      if (!g.signals.some((s) => s.kind === signal.kind && s.id === signal.id)) g.signals.push(signal);
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
      good,
      bad,
      goodNight: baseline.nightlyId,
    });
  }
  return [...groups.values()];
}

/** Kernel, config and signal: what makes two nights' regressions the same one. */
export function signatureOf(b: Pick<NightlyBisect, 'kernel' | 'config' | 'signal'>): string {
  return `${b.kernel}\0${b.config}\0${b.signal.kind}\0${b.signal.id}`;
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
export function knownEntry(group: RegressionGroup, earlier: EarlierBisect): NightlyBisect {
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
        : r.record.splats.some((s) => s.title === b.signal.id)),
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
