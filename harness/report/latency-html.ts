/**
 * The latency views of the HTML reports: at a glance (one row per case with its percentiles in
 * human units, the baseline night, the change with CI and p, a trend over nights), side by side
 * (kernels of one nightly, or the two sides of `faultline compare --html`) and the per-fault
 * log2 distributions overlaid. Pure functions of the latency model (latency.ts).
 */
import { formatSampleChange, type SampleComparison } from '../analysis/compare.js';
import {
  caseTitle,
  compareCases,
  percentile,
  PERCENTILES,
  samplesPerRun,
  sortCases,
  type LatencyCase,
  type PercentileCell,
  type PercentileName,
} from './latency.js';
import { svgLog2Histogram, svgSpark } from './svg.js';
import { escapeMarkup } from '../util/markup.js';
import { formatChange, formatNs, formatP, quantileLabel, samplesNeeded } from '../results/units.js';

export interface TrendPoint {
  label: string;
  value: number | undefined;
}

/** One kernel/config/guest-RAM context of tonight's nightly (or one run set). */
export interface GlanceGroup {
  /** Anchor-safe key (the nightly context). */
  key: string;
  title: string;
  /** HTML after the title: kernel release, accel, links to the per-run latency pages. */
  noteHtml?: string;
  cases: readonly LatencyCase[];
  baseline?: { label: string; cases: ReadonlyMap<string, LatencyCase> };
  /** The change from the baseline per case id (the nightly comparison's own, so sections agree). */
  changes?: ReadonlyMap<string, SampleComparison>;
  trends?: ReadonlyMap<string, readonly TrendPoint[]>;
}

export interface StatsOptions {
  alpha: number;
  threshold: number;
}

export interface Side {
  label: string;
  cases: ReadonlyMap<string, LatencyCase>;
}

export function casesById(cases: readonly LatencyCase[]): Map<string, LatencyCase> {
  return new Map(cases.map((c) => [c.id, c]));
}

function pctCell(cell: PercentileCell): string {
  if (!cell.supported) return `<td class="num na" title="${escapeMarkup(cell.note ?? '')}">n/a<sup>†</sup></td>`;
  return `<td class="num">${escapeMarkup(formatNs(cell.value))}</td>`;
}

function nCell(c: LatencyCase): string {
  const n = samplesPerRun(c);
  const title = `${c.runs.length} run(s) x ${n ?? '?'} samples; percentiles are the median over the runs`;
  return `<td class="num" title="${escapeMarkup(title)}">${c.runs.length} × ${n ?? '?'}</td>`;
}

function caseCells(c: LatencyCase): string {
  return `<td>${escapeMarkup(c.backing)}</td><td class="op">${escapeMarkup(c.opLabel)}</td><td class="nowrap">${escapeMarkup(c.modeLabel)}</td>`;
}

/**
 * The percentile columns a table shows: p50 and p90 always (a case short of samples is marked),
 * p99 and p99.9 only when some case has the samples to support them.
 */
function visiblePercentiles(cases: readonly LatencyCase[]): { shown: PercentileName[]; omitted: string } {
  const shown: PercentileName[] = ['p50', 'p90'];
  const omitted: string[] = [];
  for (const [name, q] of PERCENTILES) {
    if (name === 'p50' || name === 'p90') continue;
    if (cases.some((c) => percentile(c, name).supported)) shown.push(name);
    else {
      const ns = [...new Set(cases.map(samplesPerRun).filter((n): n is number => n !== undefined))].sort(
        (a, b) => a - b,
      );
      omitted.push(
        `${quantileLabel(q)} (needs ${samplesNeeded(q).toLocaleString('en-US')} samples per run; these runs have ${ns.join(' or ') || '?'})`,
      );
    }
  }
  return { shown, omitted: omitted.length ? ` Left out: ${omitted.join(', ')}.` : '' };
}

function pctHead(p: PercentileName): string {
  return `<th>${p === 'p99_9' ? 'p99.9' : p}</th>`;
}

/**
 * Change, its 95% CI and p; coloured only when flagged (significant and beyond the threshold).
 * An invalid comparison (different guest clocksources) says so in place of all three.
 */
function changeCells(c: SampleComparison | undefined, missing: string): string {
  if (!c) return `<td class="muted" colspan="3">${escapeMarkup(missing)}</td>`;
  if (c.invalidReason !== undefined)
    return `<td class="invalid" colspan="3">${escapeMarkup(formatSampleChange(c))}</td>`;
  const cls = c.regression ? 'bad' : c.improvement ? 'good' : c.significant ? '' : 'muted';
  const word = c.regression ? ' slower' : c.improvement ? ' faster' : '';
  const ci = Number.isFinite(c.ci.low) ? `${formatChange(c.ci.low)} … ${formatChange(c.ci.high)}` : '–';
  return `<td class="num ${cls}">${escapeMarkup(formatChange(c.ratio))}${word}</td><td class="num muted">${escapeMarkup(ci)}</td><td class="num" title="${escapeMarkup(c.test.method)}, ${c.nBase} vs ${c.nHead} runs">${escapeMarkup(formatP(c.test.p))}</td>`;
}

/** The smallest two-sided p an exact Mann-Whitney test over n1 and n2 runs can give: 2 / C(n1+n2, n1). */
export function smallestP(n1: number, n2: number): number {
  let c = 1;
  for (let i = 1; i <= n1; i++) c = (c * (n2 + i)) / i;
  return Math.min(1, 2 / c);
}

/** Said when the runs are too few for any change to be flagged, however large. */
function powerNote(pairs: readonly [number, number][], alpha: number): string {
  const weak = pairs.filter(([a, b]) => a > 0 && b > 0 && smallestP(a, b) >= alpha);
  if (weak.length === 0) return '';
  const [a, b] = weak[0] ?? [0, 0];
  let need = 2;
  while (smallestP(need, need) >= alpha) need++;
  return ` <b>With ${a} and ${b} runs a side no change can reach p &lt; ${alpha} (the smallest possible p is ${formatP(smallestP(a, b))}): repeat ${need} or more times to have changes flagged.</b>`;
}

function footnote(omitted: string, power: string): string {
  return `<p class="muted small">n = runs × samples per run; each percentile is the median over the runs of the per-run percentile. A percentile needs at least one sample beyond it (p99: 100 samples per run, p99.9: 1,000); † marks a case short of them.${escapeMarkup(omitted)} Change: median p50 against the other side, 95% bootstrap CI of the ratio, Mann-Whitney p over the runs; coloured when p &lt; α and beyond the threshold.${power}</p>`;
}

function glanceRow(g: GlanceGroup, c: LatencyCase, shown: readonly PercentileName[], opts: StatsOptions): string {
  const base = g.baseline?.cases.get(c.id);
  const change = g.changes?.get(c.id) ?? (base ? compareCases(base, c, opts) : undefined);
  const points = g.trends?.get(c.id) ?? [];
  const spark =
    points.filter((p) => p.value !== undefined).length >= 2
      ? svgSpark(points, { format: formatNs, title: `${caseTitle(c)}: p50 over the last ${points.length} nights` })
      : '';
  return [
    `<tr data-case="${escapeMarkup(c.id)}">`,
    caseCells(c),
    nCell(c),
    ...shown.map((p) => pctCell(percentile(c, p))),
    ...(g.baseline
      ? [
          `<td class="num">${base ? escapeMarkup(formatNs(percentile(base, 'p50').value)) : ''}</td>`,
          changeCells(change, 'not in the baseline'),
        ]
      : []),
    `<td>${spark}</td></tr>`,
  ].join('');
}

/** One table per context: tonight's cases with baseline, change and trend. */
export function renderGlance(groups: readonly GlanceGroup[], opts: StatsOptions): string {
  const out: string[] = [];
  const { shown, omitted } = visiblePercentiles(groups.flatMap((g) => g.cases));
  for (const g of groups) {
    if (g.cases.length === 0) continue;
    out.push(
      `<h3 id="latency-${escapeMarkup(g.key.replace(/[^A-Za-z0-9_-]/g, '_'))}">${escapeMarkup(g.title)}</h3>${g.noteHtml ? `<p class="muted">${g.noteHtml}</p>` : ''}`,
    );
    const baseHead = g.baseline
      ? `<th>p50 ${escapeMarkup(g.baseline.label)}</th><th>change</th><th>95% CI</th><th>p</th>`
      : '';
    if (!g.baseline)
      out.push(
        '<p class="muted">No baseline night: the change against it appears from the second night of this plan.</p>',
      );
    out.push(
      `<table class="latency glance"><thead><tr><th>backing</th><th>operation</th><th>handler</th><th>n</th>${shown.map(pctHead).join('')}${baseHead}<th>p50, last nights</th></tr></thead><tbody>`,
    );
    for (const c of g.cases) out.push(glanceRow(g, c, shown, opts));
    out.push('</tbody></table>');
  }
  if (out.length === 0) return '<p class="muted">No per-fault latency cases (the uffd-lat suite) in these runs.</p>';
  const pairs = groups.flatMap((g) =>
    g.cases.map((c): [number, number] => [g.baseline?.cases.get(c.id)?.runs.length ?? 0, c.runs.length]),
  );
  out.push(footnote(omitted, powerNote(pairs, opts.alpha)));
  return out.join('');
}

/** Every side's cases, in report order (backings in the order the sides list them). */
function unionCases(sides: readonly Side[]): LatencyCase[] {
  const byId = new Map<string, LatencyCase>();
  for (const s of sides) for (const c of s.cases.values()) if (!byId.has(c.id)) byId.set(c.id, c);
  const cases = [...byId.values()];
  return sortCases(cases, [...new Set(cases.map((c) => c.backing))]);
}

function sideRow(c: LatencyCase, sides: readonly Side[], shown: readonly PercentileName[], opts: StatsOptions): string {
  const [first, ...rest] = sides;
  const out = [`<tr data-case="${escapeMarkup(c.id)}">${caseCells(c)}`];
  for (const s of sides) {
    const x = s.cases.get(c.id);
    out.push(
      x
        ? nCell(x) + shown.map((p) => pctCell(percentile(x, p))).join('')
        : `<td class="muted" colspan="${shown.length + 1}">not run</td>`,
    );
  }
  const a = first?.cases.get(c.id);
  for (const s of rest) {
    const b = s.cases.get(c.id);
    out.push(changeCells(a && b ? compareCases(a, b, opts) : undefined, 'not on both'));
  }
  out.push('</tr>');
  return out.join('');
}

/** Kernels (or A and B) side by side per case: percentiles of each, change of each against the first. */
export function renderSideBySide(
  groups: readonly { key: string; title: string; noteHtml?: string; sides: readonly Side[] }[],
  opts: StatsOptions,
): string {
  const out: string[] = [];
  const { shown, omitted } = visiblePercentiles(groups.flatMap((g) => g.sides.flatMap((s) => [...s.cases.values()])));
  for (const g of groups) {
    const [first, ...rest] = g.sides;
    if (!first || rest.length === 0) continue;
    out.push(
      `<h3>${escapeMarkup(g.title)}</h3>${g.noteHtml ? `<p class="muted">${g.noteHtml}</p>` : ''}<table class="latency sidebyside" data-group="${escapeMarkup(g.key)}"><thead><tr><th rowspan="2">backing</th><th rowspan="2">operation</th><th rowspan="2">handler</th>`,
    );
    for (const s of g.sides) out.push(`<th colspan="${shown.length + 1}" class="side">${escapeMarkup(s.label)}</th>`);
    for (const s of rest)
      out.push(`<th colspan="3" class="side">${escapeMarkup(s.label)} against ${escapeMarkup(first.label)}</th>`);
    out.push('</tr><tr>');
    for (let i = 0; i < g.sides.length; i++) out.push(`<th>n</th>${shown.map(pctHead).join('')}`);
    for (let i = 0; i < rest.length; i++) out.push('<th>change</th><th>95% CI</th><th>p</th>');
    out.push('</tr></thead><tbody>');
    for (const c of unionCases(g.sides)) out.push(sideRow(c, g.sides, shown, opts));
    out.push('</tbody></table>');
  }
  if (out.length === 0) return '<p class="muted">No latency case ran on both sides.</p>';
  const pairs = groups.flatMap((g) =>
    unionCases(g.sides).flatMap((c) =>
      g.sides
        .slice(1)
        .map((s): [number, number] => [
          g.sides[0]?.cases.get(c.id)?.runs.length ?? 0,
          s.cases.get(c.id)?.runs.length ?? 0,
        ]),
    ),
  );
  out.push(footnote(omitted, powerNote(pairs, opts.alpha)));
  return out.join('');
}

/**
 * Per case, the log2 histograms merged over the repetitions of each series, overlaid: series[0]
 * (tonight, the newer kernel, side B) filled, the others outlined.
 */
export function renderDistributions(
  groups: readonly { key: string; title: string; series: readonly Side[] }[],
): string {
  const out: string[] = [];
  for (const g of groups) {
    const cases = unionCases(g.series).filter((c) => g.series.some((s) => (s.cases.get(c.id)?.hist.size ?? 0) > 0));
    if (cases.length === 0) continue;
    out.push(`<h3>${escapeMarkup(g.title)}</h3><div class="hists">`);
    for (const c of cases) {
      const series = g.series.map((s) => ({
        label: s.label,
        buckets: s.cases.get(c.id)?.hist ?? new Map<number, number>(),
      }));
      const p50s = g.series.map((s) => {
        const x = s.cases.get(c.id);
        return x ? `${s.label} ${formatNs(percentile(x, 'p50').value)}` : '';
      });
      out.push(
        `<figure data-case="${escapeMarkup(c.id)}">${svgLog2Histogram(series, { title: `${caseTitle(c)}: per-fault latency` })}<figcaption><b>${escapeMarkup(caseTitle(c))}</b><br>p50: ${escapeMarkup(p50s.filter(Boolean).join(' · '))}</figcaption></figure>`,
      );
    }
    out.push('</div>');
  }
  return out.join('');
}
