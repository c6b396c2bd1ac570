/**
 * The nightly HTML report: one self-contained static page (inline CSS and SVG, no scripts, no
 * external requests). Rendering is a pure function of ReportInput so it is cheap to benchmark
 * and to test; generate.ts gathers the input (log excerpts, history trends) from disk.
 */
import { median, quantile, type Comparison, type MetricChange } from '../results/compare.js';
import type { RunRecord, Status } from '../results/types.js';
import type { NightlyJobState, NightlyRecord } from '../nightly/record.js';
import { esc, fmt, svgHistogram, svgLine, svgStatusTrend, type TrendBar } from './svg.js';

export interface ReportRun {
  job: NightlyJobState;
  record: RunRecord;
  /** Link to the run directory, relative to the report page. */
  href: string;
  /** Log excerpts keyed by subtest id; console tail under the key "console". */
  excerpts: Map<string, string>;
}

export interface MetricTrend {
  key: string;
  label: string;
  unit: string;
  points: { label: string; value: number | undefined }[];
}

export interface ReportInput {
  nightly: NightlyRecord;
  runs: ReportRun[];
  comparison?: Comparison;
  baselineId?: string;
  trend: TrendBar[];
  metricTrends: MetricTrend[];
  generatedAt: string;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.c-pass{background:#c9ecd0}.c-fail{background:#f4c1bf}.c-error{background:#f7dcb4}.c-flaky{background:#fbf0a8}
.c-skip{background:#e6e6e6}.c-pending{background:#fff;color:#888}.c-none{background:#fafafa;color:#bbb}
#matrix td.cell{text-align:center;min-width:5em}#matrix td.cell a{color:inherit;text-decoration:none;display:block}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:6px;overflow:auto;max-height:24em;font-size:12px;white-space:pre-wrap}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}.muted{color:#777}.bad{color:#b3261e;font-weight:600}.good{color:#2a7a3b}
.hists{display:flex;flex-wrap:wrap;gap:12px}.hists figure{margin:0;border:1px solid #eee;padding:4px}figcaption{font-size:11px;max-width:320px;word-break:break-all}
.legend span{display:inline-block;padding:1px 8px;margin-right:4px;border:1px solid #ccc}
`;

type CellState = 'pass' | 'fail' | 'error' | 'flaky' | 'skip' | 'pending' | 'none';

function jobAnchor(id: string): string {
  return `job-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

function cellState(jobs: readonly NightlyJobState[], runs: ReadonlyMap<string, ReportRun>): CellState {
  if (jobs.length === 0) return 'none';
  const v = jobs.map((j) => j.verdict);
  if (v.some((x) => x === undefined)) return 'pending';
  const pass = v.filter((x) => x === 'pass').length;
  const fail = v.filter((x) => x === 'fail').length;
  const err = v.filter((x) => x === 'error').length;
  if (fail > 0 && pass > 0) return 'flaky';
  if (fail > 0) return 'fail';
  if (err > 0) return 'error';
  // A subtest that failed and then passed on a retry inside a job.
  if (jobs.some((j) => runs.get(j.id)?.record.subtests.some((t) => t.status === 'flaky'))) return 'flaky';
  const allSkipped = jobs.every((j) => {
    const r = runs.get(j.id)?.record;
    return r !== undefined && r.subtests.length > 0 && r.subtests.every((t) => t.status === 'skip');
  });
  return allSkipped ? 'skip' : 'pass';
}

function renderMatrix(input: ReportInput, byJob: ReadonlyMap<string, ReportRun>): string {
  const jobs = input.nightly.jobs;
  const rowsKey = (j: NightlyJobState): string => `${j.kernel}|${j.config}|${j.guestRam}`;
  const rows = [...new Set(jobs.map(rowsKey))];
  const backings = [...new Set(jobs.map((j) => j.backing))];
  const suites = [...new Set(jobs.map((j) => j.suite))];
  const out: string[] = ['<table id="matrix"><thead><tr><th rowspan="2">kernel</th><th rowspan="2">config</th><th rowspan="2">guest RAM</th>'];
  for (const b of backings) out.push(`<th colspan="${suites.length}">${esc(b)}</th>`);
  out.push('</tr><tr>');
  for (let i = 0; i < backings.length; i++) for (const s of suites) out.push(`<th>${esc(s)}</th>`);
  out.push('</tr></thead><tbody>');
  for (const row of rows) {
    const [kernel = '', config = '', ram = ''] = row.split('|');
    out.push(`<tr><th>${esc(kernel)}</th><td>${esc(config)}</td><td>${esc(ram)}</td>`);
    for (const b of backings) {
      for (const s of suites) {
        const cellJobs = jobs.filter((j) => rowsKey(j) === row && j.backing === b && j.suite === s);
        const st = cellState(cellJobs, byJob);
        const pass = cellJobs.filter((j) => j.verdict === 'pass').length;
        const label = st === 'none' ? '—' : `${pass}/${cellJobs.length}`;
        const first = cellJobs.find((j) => j.verdict !== 'pass') ?? cellJobs[0];
        const title = cellJobs.map((j) => `${j.id}: ${j.verdict ?? 'pending'}`).join('\n');
        out.push(`<td class="cell c-${st}" title="${esc(title)}" data-state="${st}">${first ? `<a href="#${jobAnchor(first.id)}">${label}</a>` : label}</td>`);
      }
    }
    out.push('</tr>');
  }
  out.push('</tbody></table>');
  out.push('<p class="legend"><span class="c-pass">pass</span><span class="c-fail">fail</span><span class="c-flaky">flaky (mixed over repetitions, or passed on a retry)</span><span class="c-error">infrastructure error</span><span class="c-skip">all skipped</span><span class="c-pending">pending</span></p>');
  return out.join('');
}

function statusList(xs: readonly Status[]): string {
  return xs.map((s) => `<span class="${s === 'pass' ? 'good' : s === 'fail' || s === 'error' ? 'bad' : 'muted'}">${s}</span>`).join(', ');
}

function renderComparison(c: Comparison, baselineId: string | undefined): string {
  const out: string[] = [`<h2 id="regressions">Changes since ${esc(baselineId ?? 'the previous night')}</h2>`];
  out.push(
    `<p>${c.regressions.length ? `<span class="bad">${c.regressions.length} regression(s)</span>` : '<span class="good">no status regressions</span>'}, ${c.newSplats.length} new splat(s), ${c.metricRegressions.length} metric regression(s) of ${c.metrics.length} compared (p &lt; ${c.options.alpha}, beyond ${(c.options.threshold * 100).toFixed(0)}%), ${c.flaky.length} flaky, ${c.fixed.length} fixed, ${c.appeared.length} appeared, ${c.vanished.length} vanished.</p>`,
  );
  const table = (title: string, head: string[], rows: string[][]): void => {
    if (rows.length === 0) return;
    out.push(`<h3>${esc(title)}</h3><table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>`);
    for (const r of rows.slice(0, 500)) out.push(`<tr>${r.map((x) => `<td>${x}</td>`).join('')}</tr>`);
    out.push('</tbody></table>');
    if (rows.length > 500) out.push(`<p class="muted">... ${rows.length - 500} more in comparison.json</p>`);
  };
  table('Regressions (pass → fail)', ['context', 'test', 'before', 'now', 'reason'], c.regressions.map((x) => [esc(x.context), esc(x.id), statusList(x.base), statusList(x.head), esc(x.reason ?? '')]));
  table('New kernel splats', ['context', 'kind', 'title', 'during'], c.newSplats.map((x) => [esc(x.context), esc(x.kind), esc(x.title), esc(x.test ?? '')]));
  table('Metric regressions', ['context', 'test', 'metric', 'before', 'now', 'change', 'p', '95% CI of ratio'], c.metricRegressions.map(metricRow));
  table('Flaky (status changed without a kernel change; not counted as regressions)', ['context', 'test', 'before', 'now', 'why'], c.flaky.map((x) => [esc(x.context), esc(x.id), statusList(x.base), statusList(x.head), esc(x.flakyBecause ?? '')]));
  table('Fixed', ['context', 'test', 'before', 'now'], c.fixed.map((x) => [esc(x.context), esc(x.id), statusList(x.base), statusList(x.head)]));
  table('Metric improvements', ['context', 'test', 'metric', 'before', 'now', 'change', 'p', '95% CI of ratio'], c.metricImprovements.map(metricRow));
  table('Appeared', ['context', 'test', 'now'], c.appeared.map((x) => [esc(x.context), esc(x.id), statusList(x.head)]));
  table('Vanished', ['context', 'test', 'before'], c.vanished.map((x) => [esc(x.context), esc(x.id), statusList(x.base)]));
  return out.join('');
}

function metricRow(m: MetricChange): string[] {
  const pct = (m.ratio - 1) * 100;
  return [
    esc(m.context),
    esc(m.id),
    esc(m.metric),
    `${fmt(m.medianBase)} ${esc(m.unit)}`,
    `${fmt(m.medianHead)} ${esc(m.unit)}`,
    `${pct >= 0 ? '+' : ''}${pct.toFixed(1)}%`,
    m.test.p.toPrecision(2),
    `${fmt(m.ci.low)}..${fmt(m.ci.high)}`,
  ];
}

function renderFailures(runs: readonly ReportRun[]): string {
  const bad = runs.filter((r) => r.record.verdict !== 'pass');
  const out: string[] = [`<h2 id="failures">Failures (${bad.length} job${bad.length === 1 ? '' : 's'})</h2>`];
  if (bad.length === 0) out.push('<p class="good">Every job passed.</p>');
  const flaky = runs.flatMap((r) => r.record.subtests.filter((t) => t.status === 'flaky').map((t) => ({ job: r.job.id, t })));
  if (flaky.length) {
    out.push(`<h3>Flaky subtests (passed on a retry)</h3><ul>${flaky.map(({ job, t }) => `<li class="c-flaky">${esc(job)}: ${esc(t.id)}: ${esc(t.reason ?? '')}</li>`).join('')}</ul>`);
  }
  for (const r of bad) {
    const rec = r.record;
    out.push(`<details open id="${jobAnchor(r.job.id)}"><summary class="bad">${esc(r.job.id)}: ${rec.verdict.toUpperCase()}${rec.infraError ? ' (infrastructure)' : ''}</summary>`);
    out.push(`<p class="muted">kernel ${esc(rec.kernel.release ?? rec.kernel.path)} · ${esc(rec.qemu.accel)} · <a href="${esc(r.href)}/results.json">results.json</a> · <a href="${esc(r.href)}/console.log">console.log</a>${r.job.failedAttempts?.length ? ` · retried after an infrastructure error (${r.job.failedAttempts.length})` : ''}</p>`);
    if (rec.infraError) {
      out.push(`<p class="bad">${esc(rec.infraError.split('\n')[0] ?? '')}</p>`);
      const more = rec.infraError.split('\n').slice(1).join('\n');
      const con = r.excerpts.get('console');
      if (more || con) out.push(`<pre>${esc([more, con ? `--- console.log (tail) ---\n${con}` : ''].filter(Boolean).join('\n'))}</pre>`);
    }
    for (const t of rec.subtests.filter((x) => x.status === 'fail' || x.status === 'error')) {
      out.push(`<h4>${esc(t.id)}: <span class="bad">${t.status}</span> ${esc(t.reason ?? '')}</h4>`);
      const ex = r.excerpts.get(t.id);
      if (ex) out.push(`<pre>${esc(ex)}</pre>`);
    }
    for (const p of rec.programs.filter((x) => (x.status === 'fail' || x.status === 'error') && !rec.subtests.some((t) => t.program === x.program && (t.status === 'fail' || t.status === 'error')))) {
      out.push(`<h4>${esc(p.program)}${p.backing ? ` (${esc(p.backing)})` : ''}: <span class="bad">${p.status}</span> ${esc(p.reason ?? '')}${p.timedOut ? ' (timed out)' : ''}</h4>`);
      const ex = r.excerpts.get(`program:${p.outputFile}`);
      if (ex) out.push(`<pre>${esc(ex)}</pre>`);
    }
    for (const s of rec.splats) {
      out.push(`<h4 class="bad">kernel ${esc(s.kind)}${s.subtest ? ` during ${esc(s.subtest)}` : s.test ? ` during ${esc(s.test)}` : ''}: ${esc(s.title)}</h4><pre>${esc(s.excerpt)}</pre>`);
    }
    out.push('</details>');
  }
  return out.join('');
}

interface MetricRowData {
  context: string;
  id: string;
  metric: string;
  unit: string;
  values: number[];
}

function renderLatency(input: ReportInput): string {
  const byKey = new Map<string, MetricRowData>();
  for (const r of input.runs) {
    const ctx = `${r.job.kernel}+${r.job.config}+${r.job.guestRam}`;
    for (const t of r.record.subtests) {
      for (const m of t.metrics ?? []) {
        const k = `${ctx}|${t.id}|${m.name}|${m.unit}`;
        const e = byKey.get(k) ?? { context: ctx, id: t.id, metric: m.name, unit: m.unit, values: [] };
        e.values.push(m.value);
        byKey.set(k, e);
      }
    }
  }
  const out: string[] = [`<h2 id="latency">Latency and other metrics (${byKey.size})</h2>`];
  if (byKey.size === 0) {
    out.push('<p class="muted">No metrics in this nightly.</p>');
    return out.join('');
  }
  const cmp = new Map((input.comparison?.metrics ?? []).map((m) => [m.key, m]));
  const rows = [...byKey.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  out.push('<table id="metrics"><thead><tr><th>context</th><th>test</th><th>metric</th><th>n</th><th>median</th><th>p10</th><th>p90</th><th>min</th><th>max</th><th>baseline median</th><th>change</th><th>p</th><th></th></tr></thead><tbody>');
  for (const [k, e] of rows) {
    const c = cmp.get(k);
    const flag = c?.regression ? '<span class="bad">worse</span>' : c?.improvement ? '<span class="good">better</span>' : '';
    out.push(
      `<tr><td>${esc(e.context)}</td><td>${esc(e.id)}</td><td>${esc(e.metric)}</td><td class="num">${e.values.length}</td><td class="num">${fmt(median(e.values))} ${esc(e.unit)}</td><td class="num">${fmt(quantile(e.values, 0.1))}</td><td class="num">${fmt(quantile(e.values, 0.9))}</td><td class="num">${fmt(Math.min(...e.values))}</td><td class="num">${fmt(Math.max(...e.values))}</td><td class="num">${c ? fmt(c.medianBase) : ''}</td><td class="num">${c ? `${((c.ratio - 1) * 100).toFixed(1)}%` : ''}</td><td class="num">${c ? c.test.p.toPrecision(2) : ''}</td><td>${flag}</td></tr>`,
    );
  }
  out.push('</tbody></table>');
  // Histograms: flagged metrics first, then the rest, bounded so a big nightly stays a small page.
  const flagged = new Set((input.comparison?.metricRegressions ?? []).map((m) => m.key));
  const chosen = [...rows].sort((a, b) => Number(flagged.has(b[0])) - Number(flagged.has(a[0]))).slice(0, 48);
  out.push('<h3>Histograms over repetitions</h3><div class="hists">');
  for (const [k, e] of chosen) {
    const svg = svgHistogram(e.values, { unit: e.unit, title: `${e.context} ${e.id} ${e.metric}` });
    out.push(`<figure>${svg}<figcaption>${flagged.has(k) ? '<span class="bad">worse</span> ' : ''}${esc(e.context)} ${esc(e.id)} · ${esc(e.metric)} (n=${e.values.length})</figcaption></figure>`);
  }
  out.push('</div>');
  if (rows.length > chosen.length) out.push(`<p class="muted">${rows.length - chosen.length} more metrics in the table above.</p>`);
  return out.join('');
}

function renderTrends(input: ReportInput): string {
  const out: string[] = [`<h2 id="trends">Trends over the last ${input.trend.length} night(s)</h2>`];
  if (input.trend.length < 2) out.push('<p class="muted">Trends appear once the history holds more than one night of this plan.</p>');
  out.push(svgStatusTrend(input.trend));
  if (input.metricTrends.length) {
    out.push('<div class="hists">');
    for (const m of input.metricTrends) out.push(`<figure>${svgLine(m.points, { unit: m.unit, title: m.label })}<figcaption>${esc(m.label)}</figcaption></figure>`);
    out.push('</div>');
  }
  return out.join('');
}

function renderJobs(input: ReportInput, byJob: ReadonlyMap<string, ReportRun>): string {
  const out = [`<h2 id="jobs">Jobs (${input.nightly.jobs.length})</h2><details><summary>all jobs</summary><table><thead><tr><th>job</th><th>verdict</th><th>tests</th><th>duration</th><th>attempts</th><th>run</th></tr></thead><tbody>`];
  for (const j of input.nightly.jobs) {
    const r = byJob.get(j.id);
    const s = r?.record.summary;
    out.push(
      `<tr><td>${esc(j.id)}</td><td class="c-${j.verdict ?? 'pending'}">${esc(j.verdict ?? 'pending')}</td><td>${s ? `${s.pass}/${s.total} pass${s.fail ? `, ${s.fail} fail` : ''}${s.error ? `, ${s.error} error` : ''}` : ''}</td><td class="num">${j.durationMs !== undefined ? `${(j.durationMs / 1000).toFixed(0)} s` : ''}</td><td class="num">${j.attempts}</td><td>${r ? `<a href="${esc(r.href)}/results.json">results</a>` : ''}</td></tr>`,
    );
  }
  out.push('</tbody></table></details>');
  return out.join('');
}

export function renderReport(input: ReportInput): string {
  const n = input.nightly;
  const byJob = new Map(input.runs.map((r) => [r.job.id, r]));
  const v = { pass: 0, fail: 0, error: 0, pending: 0 };
  for (const j of n.jobs) v[j.verdict ?? 'pending']++;
  const tests = { pass: 0, fail: 0, skip: 0, error: 0 };
  for (const r of input.runs) for (const k of ['pass', 'fail', 'skip', 'error'] as const) tests[k] += r.record.summary[k];
  const title = `faultline nightly ${n.nightlyId}`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    // An inline empty icon: no request for /favicon.ico (a 404 there is a console error).
    '<link rel="icon" href="data:,">',
    `<style>${CSS}</style></head><body>`,
    `<h1>${esc(title)}</h1>`,
    `<p>plan <b>${esc(n.planName)}</b> (${esc(n.planHash)})${n.shard ? ` · shard ${n.shard.index}/${n.shard.count}` : ''}${n.mergedFrom ? ` · merged from ${n.mergedFrom.length} shard(s)` : ''} · started ${esc(n.startedAt)}${n.finishedAt ? ` · finished ${esc(n.finishedAt)}` : ''} · host ${esc(n.host.hostname)} (${n.host.cpus} CPUs, ${n.host.parallel} parallel guests)</p>`,
    `<p id="summary"><b>${n.jobs.length}</b> jobs: <span class="good">${v.pass} pass</span>, <span class="${v.fail ? 'bad' : ''}">${v.fail} fail</span>, ${v.error} infrastructure error${v.pending ? `, ${v.pending} pending` : ''} · ${tests.pass + tests.fail + tests.skip + tests.error} test results: ${tests.pass} pass, ${tests.fail} fail, ${tests.skip} skip, ${tests.error} error</p>`,
    '<p><a href="#matrix">matrix</a> · <a href="#regressions">changes</a> · <a href="#failures">failures</a> · <a href="#latency">latency</a> · <a href="#trends">trends</a> · <a href="#jobs">jobs</a> · <a href="../junit.xml">junit.xml</a></p>',
    '<h2>Matrix: kernel × backing × suite</h2>',
    renderMatrix(input, byJob),
    input.comparison ? renderComparison(input.comparison, input.baselineId) : '<h2 id="regressions">Changes</h2><p class="muted">No baseline night to compare with.</p>',
    renderFailures(input.runs),
    renderLatency(input),
    renderTrends(input),
    renderJobs(input, byJob),
    `<p class="muted">generated ${esc(input.generatedAt)} by faultline</p>`,
    '</body></html>',
    '',
  ].join('\n');
}
