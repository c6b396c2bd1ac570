/**
 * What happens after a nightly's jobs are done (and after a merge): index the runs in the history,
 * compare with the baseline night, write comparison.json, run the culprit loop, have the views
 * (junit.xml, the HTML report) written, and print a compact summary.
 */
import { join, relative } from 'node:path';
import {
  appendHistory,
  nightlyContext,
  nightlySummaryEntry,
  previousNightly,
  readHistory,
  runEntry,
  type HistoryEntry,
  type HistoryRunEntry,
} from '../history/index.js';
import { knownFlakyKeys } from '../analysis/flaky.js';
import { formatKnownIssues } from '../analysis/known-issue-history.js';
import { compareRuns, formatComparison, type Comparison } from '../analysis/compare.js';
import type { RunRecord } from '../results/types.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { errorMessage } from '../util/errors.js';
import {
  loadNightlyRuns,
  readNightlyRecord,
  writeNightlyRecord,
  type LoadedJob,
  type NightlyRecord,
} from '../results/nightly.js';
import { writeCulpritKnownIssues } from './culprit-known-issues.js';
import { culpritLoop, formatBisects, type CulpritLoopContext } from './culprits.js';
import { guestRamContext } from '../results/record.js';
import type { RunViewWriter } from '../run/request.js';

/** What a night's report is drawn from. */
export interface NightReportInput {
  dir: string;
  record: NightlyRecord;
  runs: readonly LoadedJob[];
  history: readonly HistoryEntry[];
  resultsRoot: string;
  comparison?: Comparison;
  /** The baseline night's directory, when the night was compared with one. */
  baselineDir?: string;
}

/**
 * The files a night and its runs are shown as (TAP, JUnit, HTML). report/ writes them and the
 * CLI hands them in: nightly/ produces records only.
 */
export interface NightlyViews {
  /** A run's views beside its results.json. */
  run: RunViewWriter;
  /** The night's JUnit file and HTML report; their paths. */
  night(input: NightReportInput): Promise<{ reportPath: string; junitPath: string }>;
}

export interface FinalizeOptions {
  resultsRoot: string;
  views: NightlyViews;
  baseline?: string;
  compare: boolean;
  /** Append to the history index (default true). */
  index?: boolean;
  /** Print the summary to stdout (default true). */
  print?: boolean;
  /** Run the plan's culprit loop (`bisect:`) after the comparison, with these settings. */
  bisect?: Omit<CulpritLoopContext, 'plan' | 'dir' | 'views'>;
}

export interface FinalizeResult {
  comparison?: Comparison;
  baselineDir?: string;
  reportPath: string;
  junitPath: string;
  summary: string;
}

/** Context of each run for comparisons: the plan's kernel + config + guest RAM. */
export function contextMap(runs: readonly LoadedJob[]): Map<string, string> {
  return new Map(runs.map((r) => [r.record.runId, nightlyContext(r.job.kernel, r.job.config, r.job.guestRam)]));
}

export async function compareNightlies(
  base: { dir: string; record: NightlyRecord },
  head: { runs: LoadedJob[] },
  history: readonly HistoryEntry[],
  planName: string,
  excludeNightly: string,
): Promise<Comparison> {
  const baseRuns = await loadNightlyRuns(base.dir, base.record);
  const ctx = new Map([...contextMap(baseRuns), ...contextMap(head.runs)]);
  const past = history.filter((e) => (e.kind === 'run' ? e.nightlyId : e.nightlyId) !== excludeNightly);
  return compareRuns(
    baseRuns.map((r) => r.record),
    head.runs.map((r) => r.record),
    {
      contextOf: (r: RunRecord) => ctx.get(r.runId) ?? guestRamContext(r),
      knownFlaky: knownFlakyKeys(past, { planName, lastNights: 14 }),
    },
  );
}

/** One line per kernel/config/guest-RAM row: backing columns with suite verdict counts. */
function matrixSummary(record: NightlyRecord): string {
  const rows = new Map<string, Map<string, string[]>>();
  for (const j of record.jobs) {
    const row = `${j.kernel}/${j.config}/ram=${j.guestRam}`;
    const r = rows.get(row) ?? new Map<string, string[]>();
    const cell = `${j.backing}`;
    const v = r.get(cell) ?? [];
    v.push(j.verdict ?? 'pending');
    r.set(cell, v);
    rows.set(row, r);
  }
  const lines: string[] = [];
  for (const [row, cells] of rows) {
    const parts = [...cells].map(([b, vs]) => {
      const pass = vs.filter((v) => v === 'pass').length;
      const fail = vs.filter((v) => v === 'fail').length;
      const err = vs.filter((v) => v === 'error').length;
      const mark = fail > 0 ? 'FAIL' : err > 0 ? 'ERR' : vs.includes('pending') ? '...' : 'ok';
      return `${b}:${mark}(${pass}/${vs.length}${fail ? ` ${fail}F` : ''}${err ? ` ${err}E` : ''})`;
    });
    lines.push(`  ${row}  ${parts.join('  ')}`);
  }
  const v = { pass: 0, fail: 0, error: 0 };
  for (const j of record.jobs) if (j.verdict) v[j.verdict]++;
  return [
    `nightly ${record.nightlyId} (${record.planName}${record.shard ? `, shard ${record.shard.index}/${record.shard.count}` : ''}): ${record.jobs.length} jobs: ${v.pass} pass, ${v.fail} fail, ${v.error} infra error`,
    ...lines,
  ].join('\n');
}

/** Compare with the baseline night (given, or the plan's previous one) and write comparison.json/.txt. */
async function compareWithBaseline(
  dir: string,
  record: NightlyRecord,
  runs: LoadedJob[],
  history: readonly HistoryEntry[],
  opts: FinalizeOptions,
): Promise<{ comparison?: Comparison; baselineDir?: string; baseRecord?: NightlyRecord }> {
  if (!opts.compare) return opts.baseline !== undefined ? { baselineDir: opts.baseline } : {};
  let baselineDir = opts.baseline;
  if (baselineDir === undefined) {
    const prev = previousNightly(history, record.planName, record.startedAt, record.nightlyId);
    if (prev) baselineDir = join(opts.resultsRoot, prev.dir);
  }
  if (baselineDir === undefined) {
    log.info('no previous nightly of this plan in the history: nothing to compare against yet');
    return {};
  }
  try {
    const base = await readNightlyRecord(baselineDir);
    const comparison = await compareNightlies(
      { dir: baselineDir, record: base },
      { runs },
      history,
      record.planName,
      record.nightlyId,
    );
    comparison.base.runs = [base.nightlyId];
    await writeJsonAtomic(join(dir, 'comparison.json'), { baseline: base.nightlyId, baselineDir, ...comparison });
    await writeFileAtomic(join(dir, 'comparison.txt'), formatComparison(comparison) + '\n');
    return { comparison, baselineDir, baseRecord: base };
  } catch (e) {
    log.warn(`comparison with ${baselineDir} skipped: ${errorMessage(e)}`);
    return {};
  }
}

export async function finalizeNightly(
  dir: string,
  record: NightlyRecord,
  opts: FinalizeOptions,
): Promise<FinalizeResult> {
  const runs = await loadNightlyRuns(dir, record);
  const index = opts.index ?? true;
  let entries: HistoryRunEntry[] = [];
  if (index) {
    entries = runs.map((r) =>
      runEntry(r.record, relative(opts.resultsRoot, r.dir), {
        nightlyId: record.nightlyId,
        planName: record.planName,
        jobKey: r.job.key,
        kernelName: r.job.kernel,
        config: r.job.config,
        guestRam: r.job.guestRam,
      }),
    );
    await appendHistory(opts.resultsRoot, [
      ...entries,
      nightlySummaryEntry(record, relative(opts.resultsRoot, dir), entries),
    ]);
  }
  const history = await readHistory(opts.resultsRoot);

  const { comparison, baselineDir, baseRecord } = await compareWithBaseline(dir, record, runs, history, opts);

  if (opts.bisect && record.plan.bisect && comparison && baseRecord) {
    const input = { record, baseline: baseRecord, comparison, runs, history, resultsRoot: opts.resultsRoot };
    record.bisects = await culpritLoop({ ...opts.bisect, plan: record.plan, dir, views: opts.views.run }, input);
    await writeNightlyRecord(dir, record);
    for (const f of await writeCulpritKnownIssues(dir, record))
      log.info(`culprit known issues for the next nights: ${relative(dir, f)}`);
    // The night's entry again, now with its culprits (the index keeps an id's last entry).
    if (index)
      await appendHistory(opts.resultsRoot, [nightlySummaryEntry(record, relative(opts.resultsRoot, dir), entries)]);
  }

  const { reportPath, junitPath } = await opts.views.night({
    dir,
    record,
    runs,
    history,
    resultsRoot: opts.resultsRoot,
    ...(comparison ? { comparison } : {}),
    ...(comparison && baselineDir !== undefined ? { baselineDir } : {}),
  });

  const summary = [
    matrixSummary(record),
    ...(comparison ? [formatComparison(comparison, 15)] : []),
    ...formatBisects(record.bisects ?? []),
    ...formatKnownIssues(
      runs.map((r) => r.record),
      [
        ...history,
        ...runs.map((r) => runEntry(r.record, '', { nightlyId: record.nightlyId, planName: record.planName })),
      ],
      record.planName,
    ),
    `report: ${reportPath}`,
    `junit: ${junitPath}`,
  ].join('\n');
  if (opts.print ?? true) process.stdout.write(summary + '\n');
  return {
    ...(comparison ? { comparison } : {}),
    ...(baselineDir !== undefined ? { baselineDir } : {}),
    reportPath,
    junitPath,
    summary,
  };
}
