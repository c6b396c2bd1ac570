/**
 * Gather what the HTML report shows (log excerpts from run directories, trends from the history
 * index, the baseline night) and write <nightly>/report/index.html atomically.
 */
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { nightlyContext, nightlyEntries, runEntries, runEntry, type HistoryEntry } from '../history/index.js';
import { STALE_NIGHTS, knownIssueTimeline, staleKnownIssues } from '../analysis/known-issue-history.js';
import type { Comparison } from '../analysis/compare.js';
import { median } from '../stats/descriptive.js';
import type { RunRecord, SubtestResult } from '../results/types.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { errorMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { loadNightlyRuns, readNightlyRecord, type LoadedJob, type NightlyRecord } from '../results/nightly.js';
import { renderReport, type ReportInput, type ReportRun } from './html.js';
import type { TrendPoint } from './latency-html.js';
import { neighbours, NIGHTS_PAGE, writeNightsPage } from './nights.js';
import type { TrendBar } from './svg.js';

const EXCERPT_MAX = 4000;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function bound(s: string): string {
  return s.length > EXCERPT_MAX ? `...\n${s.slice(-EXCERPT_MAX)}` : s;
}

/** The part of a program's output about one subtest: around its last failure line, else the tail. */
function excerptFor(output: string, t: Pick<SubtestResult, 'name'>): string {
  const lines = output.split('\n');
  let at = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i] ?? '';
    if (l.includes(t.name) && /not ok|fail|error|FAIL|ERROR|bail/i.test(l)) {
      at = i;
      break;
    }
  }
  if (at < 0) return bound(lines.slice(-30).join('\n'));
  return bound(lines.slice(Math.max(0, at - 20), at + 6).join('\n'));
}

async function excerpts(record: RunRecord, runDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (record.verdict === 'pass') return out;
  const files = new Map<string, string | undefined>();
  const outputOf = async (file: string): Promise<string | undefined> => {
    if (!file) return undefined;
    if (!files.has(file)) files.set(file, await readText(join(runDir, file)));
    return files.get(file);
  };
  for (const t of record.subtests) {
    if (t.status !== 'fail' && t.status !== 'error') continue;
    const prog = record.programs.find(
      (p) =>
        p.program === t.program &&
        (p.backing === t.backing || p.backing === undefined || t.backing === undefined) &&
        p.outputFile,
    );
    const text = prog ? await outputOf(prog.outputFile) : undefined;
    if (text !== undefined) out.set(t.id, excerptFor(text, t));
  }
  for (const p of record.programs) {
    if ((p.status === 'fail' || p.status === 'error') && p.outputFile) {
      const text = await outputOf(p.outputFile);
      if (text !== undefined) out.set(`program:${p.outputFile}`, bound(text.split('\n').slice(-30).join('\n')));
    }
  }
  if (record.infraError !== undefined) {
    const con = await readText(join(runDir, 'console.log'));
    if (con !== undefined) out.set('console', bound(con.split('\n').slice(-40).join('\n')));
  }
  return out;
}

function nightLabel(startedAt: string): string {
  return startedAt.slice(0, 16).replace('T', ' ');
}

/**
 * Status bars for the last `nights` complete nights of the plan, and each latency case's p50 per
 * night (median over the night's repetitions) by `${nightly context}|${case id}`.
 */
function computeTrends(
  history: readonly HistoryEntry[],
  planName: string,
  current: NightlyRecord,
  opts: { nights?: number } = {},
): { trend: TrendBar[]; caseTrends: Map<string, TrendPoint[]> } {
  let nights = nightlyEntries(history, planName).filter((n) => n.complete && n.shard === undefined);
  if (!nights.some((n) => n.nightlyId === current.nightlyId) && current.shard === undefined) {
    nights.push({
      kind: 'nightly',
      nightlyId: current.nightlyId,
      dir: '',
      planName,
      planHash: current.planHash,
      startedAt: current.startedAt,
      complete: current.complete,
      jobs: current.jobs.length,
      verdicts: { pass: 0, fail: 0, error: 0 },
      tests: { pass: 0, fail: 0, skip: 0, error: 0, flaky: 0 },
    });
  }
  nights = nights.slice(-(opts.nights ?? 30));
  const idx = new Map(nights.map((n, i) => [n.nightlyId, i]));
  const trend: TrendBar[] = nights.map((n) => ({
    label: nightLabel(n.startedAt),
    pass: n.tests.pass,
    fail: n.tests.fail,
    error: n.tests.error,
    skip: n.tests.skip,
  }));
  const perNight = new Map<string, number[][]>();
  for (const r of runEntries(history)) {
    const i = r.nightlyId !== undefined ? idx.get(r.nightlyId) : undefined;
    if (i === undefined) continue;
    const ctx = nightlyContext(r.kernelName ?? '', r.config ?? '', r.guestRam ?? 'none');
    for (const [id, status, metrics] of r.tests) {
      const p50 = metrics?.find(([name, , unit]) => name === 'total_p50' && unit === 'ns');
      if (!p50 || (status !== 'pass' && status !== 'flaky')) continue;
      const key = `${ctx}|${id}`;
      const s = perNight.get(key) ?? nights.map(() => []);
      s[i]?.push(p50[1]);
      perNight.set(key, s);
    }
  }
  const caseTrends = new Map<string, TrendPoint[]>();
  for (const [key, s] of perNight)
    caseTrends.set(
      key,
      s.map((vals, i) => ({ label: trend[i]?.label ?? '', value: vals.length ? median(vals) : undefined })),
    );
  return { trend, caseTrends };
}

export interface GenerateReportInput {
  dir: string;
  record: NightlyRecord;
  runs: readonly LoadedJob[];
  history: readonly HistoryEntry[];
  comparison?: Comparison;
  baselineId?: string;
  /** The baseline night's directory: its latency figures and distributions are drawn next to tonight's. */
  baselineDir?: string;
  /** Results root of the history: links between nights and <root>/nights.html. */
  resultsRoot?: string;
  /** Output directory (default <dir>/report). */
  outDir?: string;
}

async function loadBaseline(dir: string): Promise<{ id: string; runs: LoadedJob[] } | undefined> {
  try {
    const rec = await readNightlyRecord(dir);
    return { id: rec.nightlyId, runs: await loadNightlyRuns(dir, rec) };
  } catch (e) {
    log.warn(`report: baseline night ${dir} not drawn: ${errorMessage(e)}`);
    return undefined;
  }
}

export async function generateReport(input: GenerateReportInput): Promise<string> {
  const outDir = input.outDir ?? join(input.dir, 'report');
  const runs: ReportRun[] = [];
  for (const r of input.runs) {
    runs.push({
      job: r.job,
      record: r.record,
      href: relative(outDir, r.dir) || '.',
      excerpts: await excerpts(r.record, r.dir),
    });
  }
  const { trend, caseTrends } = computeTrends(input.history, input.record.planName, input.record);
  // Tonight's runs count as a night of the plan, whether or not the history has them yet.
  const { nightlyId, planName } = input.record;
  const tonight = input.runs.map((r) => runEntry(r.record, '', { nightlyId, planName }));
  const nights = [...input.history, ...tonight];
  const knownSince = knownIssueTimeline(nights, planName);
  const staleKnown = staleKnownIssues(nights, planName, [...knownSince.keys()], STALE_NIGHTS);
  const baseline = input.baselineDir !== undefined ? await loadBaseline(input.baselineDir) : undefined;
  const baselineId = input.baselineId ?? baseline?.id ?? input.comparison?.base.runs[0];
  let nav: ReportInput['nav'];
  if (input.resultsRoot !== undefined) {
    nav = {
      ...neighbours(input.history, input.record.planName, input.record.nightlyId, input.resultsRoot, outDir),
      all: relative(outDir, join(input.resultsRoot, NIGHTS_PAGE)),
    };
    await writeNightsPage(input.resultsRoot, input.history);
  }
  const html = renderReport({
    nightly: input.record,
    runs,
    ...(input.comparison ? { comparison: input.comparison } : {}),
    ...(baselineId !== undefined ? { baselineId } : {}),
    ...(baseline ? { baseline } : {}),
    trend,
    caseTrends,
    knownSince,
    staleKnown,
    ...(nav ? { nav } : {}),
    generatedAt: new Date().toISOString(),
  });
  const path = join(outDir, 'index.html');
  await writeFileAtomic(path, html);
  return path;
}
