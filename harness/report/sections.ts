/**
 * Pieces both HTML pages (the nightly report and `faultline compare --html`) are made of: the
 * page shell and style, the status/metric comparison, and the table of every metric. Histogram
 * buckets never appear as metrics here (they are distributions, drawn as such), and percentiles
 * their sample count cannot support are left out of comparisons and marked in tables.
 */
import {
  formatSampleChange,
  invalidGroups,
  type Comparison,
  type MetricChange,
  type SampleComparison,
} from '../analysis/compare.js';
import { median } from '../stats/descriptive.js';
import type { RunRecord, Status } from '../results/types.js';
import { escapeMarkup } from '../util/markup.js';
import {
  formatChange,
  formatMetric,
  formatP,
  isHistogramBucket,
  metricQuantile,
  percentileSupported,
  quantileLabel,
  sampleCount,
  samplesNeeded,
} from '../results/units.js';

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff;max-width:1500px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:middle}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.latency td.op{font-weight:600}table.latency tbody tr:hover{background:#f5f8fc}th.side{text-align:center}
.c-pass{background:#c9ecd0}.c-fail{background:#f4c1bf}.c-error{background:#f7dcb4}.c-flaky{background:#fbf0a8}
.c-skip{background:#e6e6e6}.c-pending{background:#fff;color:#888}.c-none{background:#fafafa;color:#bbb}
#matrix td.cell{text-align:center;min-width:5em}#matrix td.cell a{color:inherit;text-decoration:none;display:block}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:6px;overflow:auto;max-height:24em;font-size:12px;white-space:pre-wrap}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}.muted{color:#777}.small{font-size:12px}.bad{color:#b3261e;font-weight:600}.good{color:#2a7a3b;font-weight:600}.invalid{color:#8a5300;font-weight:600}
td.na{color:#999}.nowrap{white-space:nowrap}.hists{display:flex;flex-wrap:wrap;gap:10px}.hists figure{margin:0;border:1px solid #eee;padding:4px}figcaption{font-size:12px;max-width:320px}
.legend span{display:inline-block;padding:1px 8px;margin-right:4px;border:1px solid #ccc}nav.nights{margin:.3em 0}nav.nights a{margin-right:1em}
`;

/** Doctype, head (inline style, an empty icon so no /favicon.ico request) and the opening body tag. */
export function pageHead(title: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeMarkup(title)}</title>`,
    '<link rel="icon" href="data:,">',
    `<style>${CSS}</style></head><body>`,
  ].join('\n');
}

/** A run and the comparison context its tests are keyed by (nightly: kernel+config+guest RAM). */
export interface ContextRecord {
  context: string;
  record: RunRecord;
}

/** Key of a percentile metric's sample count: `${context}|${id}|${metric}`. */
function samplesKey(context: string, id: string, metric: string): string {
  return `${context ? `${context}|` : ''}${id}|${metric}`;
}

/** Samples per run behind each percentile metric (the smallest over runs), by samplesKey. */
export function samplesBySubtest(runs: readonly ContextRecord[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const { context, record } of runs) {
    for (const t of record.subtests) {
      for (const m of t.metrics ?? []) {
        if (metricQuantile(m.name) === undefined) continue;
        const n = sampleCount(t, m.name);
        if (n === undefined) continue;
        const k = samplesKey(context, t.id, m.name);
        out.set(k, Math.min(n, out.get(k) ?? Infinity));
      }
    }
  }
  return out;
}

/** A metric that belongs in a metric table or comparison: not a bucket, not an unsupported percentile. */
function isReportableMetric(metric: string, unit: string, samples: number | undefined): boolean {
  if (isHistogramBucket(metric, unit)) return false;
  const q = metricQuantile(metric);
  return q === undefined || percentileSupported(q, samples);
}

function statusList(xs: readonly Status[]): string {
  return xs
    .map((s) => `<span class="${s === 'pass' ? 'good' : s === 'fail' || s === 'error' ? 'bad' : 'muted'}">${s}</span>`)
    .join(', ');
}

/** The class a change is coloured with: flagged worse or better, or invalid. */
function changeClass(m: SampleComparison): string {
  return m.invalidReason !== undefined ? 'invalid' : m.regression ? 'bad' : m.improvement ? 'good' : '';
}

function metricRow(m: MetricChange): string[] {
  return [
    escapeMarkup(m.context),
    escapeMarkup(m.id),
    escapeMarkup(m.metric),
    escapeMarkup(formatMetric(m.medianBase, m.unit)),
    escapeMarkup(formatMetric(m.medianHead, m.unit)),
    `<span class="${changeClass(m)}">${escapeMarkup(formatSampleChange(m))}</span>`,
    escapeMarkup(formatP(m.test.p)),
    Number.isFinite(m.ci.low) ? escapeMarkup(`${formatChange(m.ci.low)} … ${formatChange(m.ci.high)}`) : '–',
  ];
}

function table(out: string[], title: string, head: string[], rows: string[][]): void {
  if (rows.length === 0) return;
  out.push(
    `<h3>${escapeMarkup(title)}</h3><table><thead><tr>${head.map((h) => `<th>${escapeMarkup(h)}</th>`).join('')}</tr></thead><tbody>`,
  );
  for (const r of rows.slice(0, 500)) out.push(`<tr>${r.map((x) => `<td>${x}</td>`).join('')}</tr>`);
  out.push('</tbody></table>');
  if (rows.length > 500) out.push(`<p class="muted">... ${rows.length - 500} more in comparison.json</p>`);
}

/** Metrics whose sides ran on different guest clocksources: said once per context, never as a change. */
function invalidTable(out: string[], metrics: readonly MetricChange[]): void {
  table(
    out,
    'Invalid: timings not compared',
    ['context', 'metrics', 'why'],
    invalidGroups(metrics).map((g) => [
      escapeMarkup(g.context),
      String(g.count),
      `<span class="invalid">${escapeMarkup(g.reason)}</span>`,
    ]),
  );
}

/** Status and metric changes; `samples` (by context|id) drops percentiles their runs cannot support. */
export function renderComparison(c: Comparison, baselineLabel: string, samples: ReadonlyMap<string, number>): string {
  const keep = (m: MetricChange): boolean =>
    isReportableMetric(m.metric, m.unit, samples.get(samplesKey(m.context, m.id, m.metric)));
  const compared = c.metrics.filter((m) => keep(m) && m.invalidReason === undefined);
  const worse = c.metricRegressions.filter(keep);
  const better = c.metricImprovements.filter(keep);
  const dropped = c.metrics.filter((m) => !isHistogramBucket(m.metric, m.unit) && !keep(m)).length;
  const out: string[] = [`<h2 id="regressions">Changes since ${escapeMarkup(baselineLabel)}</h2>`];
  out.push(
    `<p>${c.regressions.length ? `<span class="bad">${c.regressions.length} regression(s)</span>` : '<span class="good">no status regressions</span>'}, ${c.newSplats.length} new splat(s), ${worse.length ? `<span class="bad">${worse.length} metric regression(s)</span>` : '0 metric regressions'} of ${compared.length} metrics compared (p &lt; ${c.options.alpha}, beyond ${(c.options.threshold * 100).toFixed(0)}%), ${c.flaky.length} flaky, ${c.fixed.length} fixed, ${c.appeared.length} appeared, ${c.vanished.length} vanished.${dropped ? ` <span class="muted">${dropped} percentile(s) left out: too few samples to support them.</span>` : ''}</p>`,
  );
  invalidTable(out, c.metrics.filter(keep));
  table(
    out,
    'Regressions (pass → fail)',
    ['context', 'test', 'before', 'now', 'reason'],
    c.regressions.map((x) => [
      escapeMarkup(x.context),
      escapeMarkup(x.id),
      statusList(x.base),
      statusList(x.head),
      escapeMarkup(x.reason ?? ''),
    ]),
  );
  table(
    out,
    'New kernel splats',
    ['context', 'kind', 'title', 'during'],
    c.newSplats.map((x) => [
      escapeMarkup(x.context),
      escapeMarkup(x.kind),
      escapeMarkup(x.title),
      escapeMarkup(x.test ?? ''),
    ]),
  );
  table(
    out,
    'Metric regressions',
    ['context', 'test', 'metric', 'before', 'now', 'change', 'p', '95% CI of the change'],
    worse.map(metricRow),
  );
  table(
    out,
    'Flaky (status changed without a kernel change; not counted as regressions)',
    ['context', 'test', 'before', 'now', 'why'],
    c.flaky.map((x) => [
      escapeMarkup(x.context),
      escapeMarkup(x.id),
      statusList(x.base),
      statusList(x.head),
      escapeMarkup(x.flakyBecause ?? ''),
    ]),
  );
  table(
    out,
    'Fixed',
    ['context', 'test', 'before', 'now'],
    c.fixed.map((x) => [escapeMarkup(x.context), escapeMarkup(x.id), statusList(x.base), statusList(x.head)]),
  );
  table(
    out,
    'Metric improvements',
    ['context', 'test', 'metric', 'before', 'now', 'change', 'p', '95% CI of the change'],
    better.map(metricRow),
  );
  table(
    out,
    'Appeared',
    ['context', 'test', 'now'],
    c.appeared.map((x) => [escapeMarkup(x.context), escapeMarkup(x.id), statusList(x.head)]),
  );
  table(
    out,
    'Vanished',
    ['context', 'test', 'before'],
    c.vanished.map((x) => [escapeMarkup(x.context), escapeMarkup(x.id), statusList(x.base)]),
  );
  return out.join('');
}

interface MetricRowData {
  context: string;
  id: string;
  metric: string;
  unit: string;
  values: number[];
}

/** Every metric but histogram buckets, in human units, collapsed: the reference behind the latency views. */
export function renderAllMetrics(runs: readonly ContextRecord[], comparison: Comparison | undefined): string {
  const byKey = new Map<string, MetricRowData>();
  for (const { context, record } of runs) {
    for (const t of record.subtests) {
      for (const m of t.metrics ?? []) {
        if (isHistogramBucket(m.name, m.unit)) continue;
        const k = `${context}|${t.id}|${m.name}|${m.unit}`;
        const e = byKey.get(k) ?? { context, id: t.id, metric: m.name, unit: m.unit, values: [] };
        e.values.push(m.value);
        byKey.set(k, e);
      }
    }
  }
  const out: string[] = [`<h2 id="metrics">All metrics (${byKey.size})</h2>`];
  if (byKey.size === 0) return out.concat('<p class="muted">No metrics in these runs.</p>').join('');
  const samples = samplesBySubtest(runs);
  const cmp = new Map((comparison?.metrics ?? []).map((m) => [m.key, m]));
  out.push(
    '<details><summary>every metric of every test (histogram buckets are not metrics: they are drawn as distributions, and kept in results.json and the KCIDB export)</summary>',
  );
  out.push(
    '<table id="metrics-table"><thead><tr><th>context</th><th>test</th><th>metric</th><th>runs</th><th>median</th><th>min</th><th>max</th><th>baseline median</th><th>change</th><th>p</th></tr></thead><tbody>',
  );
  for (const [k, e] of [...byKey.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const q = metricQuantile(e.metric);
    const n = samples.get(samplesKey(e.context, e.id, e.metric));
    if (q !== undefined && !percentileSupported(q, n)) {
      out.push(
        `<tr><td>${escapeMarkup(e.context)}</td><td>${escapeMarkup(e.id)}</td><td>${escapeMarkup(e.metric)}</td><td class="num">${e.values.length}</td><td class="na" colspan="6" title="${escapeMarkup(`${quantileLabel(q)} needs ${samplesNeeded(q)} samples per run`)}">n/a<sup>†</sup> (${n ?? '?'} samples per run)</td></tr>`,
      );
      continue;
    }
    const c = cmp.get(k);
    const fm = (v: number): string => escapeMarkup(formatMetric(v, e.unit));
    out.push(
      `<tr><td>${escapeMarkup(e.context)}</td><td>${escapeMarkup(e.id)}</td><td>${escapeMarkup(e.metric)}</td><td class="num">${e.values.length}</td><td class="num">${fm(median(e.values))}</td><td class="num">${fm(Math.min(...e.values))}</td><td class="num">${fm(Math.max(...e.values))}</td><td class="num">${c ? fm(c.medianBase) : ''}</td><td class="num ${c ? changeClass(c) : ''}">${c ? escapeMarkup(formatSampleChange(c)) : ''}</td><td class="num">${c && c.invalidReason === undefined ? escapeMarkup(formatP(c.test.p)) : ''}</td></tr>`,
    );
  }
  out.push('</tbody></table></details>');
  return out.join('');
}
