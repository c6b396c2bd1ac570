/**
 * Gather what the HTML report shows (log excerpts from run directories, trends from the history
 * index) and write <nightly>/report/index.html atomically.
 */
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { nightlyContext, nightlyEntries, runEntries, type HistoryEntry } from '../history/index.js';
import { median, type Comparison } from '../results/compare.js';
import type { RunRecord, SubtestResult } from '../results/types.js';
import { writeFileAtomic } from '../util/fsutil.js';
import type { LoadedJob, NightlyRecord } from '../nightly/record.js';
import { renderReport, type MetricTrend, type ReportRun } from './html.js';
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
export function excerptFor(output: string, t: Pick<SubtestResult, 'name'>): string {
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
    const prog = record.programs.find((p) => p.program === t.program && (p.backing === t.backing || p.backing === undefined || t.backing === undefined) && p.outputFile);
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

/** Status bars and metric medians for the last `nights` complete nights of the plan. */
export function computeTrends(history: readonly HistoryEntry[], planName: string, current: NightlyRecord, opts: { nights?: number; maxMetricPlots?: number; preferKeys?: readonly string[] } = {}): { trend: TrendBar[]; metricTrends: MetricTrend[] } {
  let nights = nightlyEntries(history, planName).filter((n) => n.complete && n.shard === undefined);
  if (!nights.some((n) => n.nightlyId === current.nightlyId) && current.shard === undefined) {
    nights.push({ kind: 'nightly', nightlyId: current.nightlyId, dir: '', planName, planHash: current.planHash, startedAt: current.startedAt, complete: current.complete, jobs: current.jobs.length, verdicts: { pass: 0, fail: 0, error: 0 }, tests: { pass: 0, fail: 0, skip: 0, error: 0, flaky: 0 } });
  }
  nights = nights.slice(-(opts.nights ?? 30));
  const idx = new Map(nights.map((n, i) => [n.nightlyId, i]));
  const trend: TrendBar[] = nights.map((n) => ({ label: nightLabel(n.startedAt), pass: n.tests.pass, fail: n.tests.fail, error: n.tests.error, skip: n.tests.skip }));
  const series = new Map<string, { unit: string; label: string; perNight: number[][] }>();
  for (const r of runEntries(history)) {
    const i = r.nightlyId !== undefined ? idx.get(r.nightlyId) : undefined;
    if (i === undefined) continue;
    const ctx = nightlyContext(r.kernelName ?? '', r.config ?? '', r.guestRam);
    for (const [id, , metrics] of r.tests) {
      if (!metrics) continue;
      for (const [name, value, unit] of metrics) {
        const key = `${ctx}|${id}|${name}|${unit}`;
        let s = series.get(key);
        if (!s) {
          s = { unit, label: `${ctx} ${id} · ${name}`, perNight: nights.map(() => []) };
          series.set(key, s);
        }
        s.perNight[i]?.push(value);
      }
    }
  }
  const prefer = new Set(opts.preferKeys ?? []);
  const keys = [...series.keys()].filter((k) => (series.get(k)?.perNight.filter((v) => v.length > 0).length ?? 0) >= 2);
  keys.sort((a, b) => Number(prefer.has(b)) - Number(prefer.has(a)) || (a < b ? -1 : 1));
  const metricTrends: MetricTrend[] = keys.slice(0, opts.maxMetricPlots ?? 12).map((k) => {
    const s = series.get(k);
    return {
      key: k,
      label: s?.label ?? k,
      unit: s?.unit ?? '',
      points: (s?.perNight ?? []).map((vals, i) => ({ label: trend[i]?.label ?? '', value: vals.length ? median(vals) : undefined })),
    };
  });
  return { trend, metricTrends };
}

export interface GenerateReportInput {
  dir: string;
  record: NightlyRecord;
  runs: readonly LoadedJob[];
  history: readonly HistoryEntry[];
  comparison?: Comparison;
  baselineId?: string;
  /** Output directory (default <dir>/report). */
  outDir?: string;
}

export async function generateReport(input: GenerateReportInput): Promise<string> {
  const outDir = input.outDir ?? join(input.dir, 'report');
  const runs: ReportRun[] = [];
  for (const r of input.runs) {
    runs.push({ job: r.job, record: r.record, href: relative(outDir, r.dir) || '.', excerpts: await excerpts(r.record, r.dir) });
  }
  const { trend, metricTrends } = computeTrends(input.history, input.record.planName, input.record, { preferKeys: (input.comparison?.metricRegressions ?? []).map((m) => m.key) });
  const html = renderReport({
    nightly: input.record,
    runs,
    ...(input.comparison ? { comparison: input.comparison } : {}),
    ...(input.baselineId !== undefined ? { baselineId: input.baselineId } : input.comparison?.base.runs[0] !== undefined ? { baselineId: input.comparison.base.runs[0] } : {}),
    trend,
    metricTrends,
    generatedAt: new Date().toISOString(),
  });
  const path = join(outDir, 'index.html');
  await writeFileAtomic(path, html);
  return path;
}
