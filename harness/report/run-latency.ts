import { join } from 'node:path';
import { writeFileAtomic } from '../util/fsutil.js';
import { accelOf } from '../results/record.js';
import type { RunRecord, SubtestResult } from '../results/types.js';
import { escapeMarkup } from '../util/markup.js';
import { formatNs, percentileSupported, samplesNeeded } from '../results/units.js';
import { svgLog2Histogram } from './svg.js';

/**
 * The latency view of a run: a table of per-fault round-trip percentiles and a log2
 * histogram picture per case (SVG files, and one HTML page holding both), from the
 * metrics uffd-lat reports (total_*, notify_*, resolve_* in ns; total_ns_log2_<k>).
 */
interface LatencyRow {
  id: string;
  backing?: string;
  iterations?: number;
  total: { p50: number; p90: number; p99: number; p99_9: number; max: number };
  notifyP50?: number;
  resolveP50?: number;
  histogram: { bucket: number; count: number }[];
}

function metric(s: SubtestResult, name: string): number | undefined {
  return s.metrics?.find((m) => m.name === name)?.value;
}

function latencyRows(r: RunRecord): LatencyRow[] {
  const rows: LatencyRow[] = [];
  for (const s of r.subtests) {
    const p50 = metric(s, 'total_p50');
    if (p50 === undefined || s.status !== 'pass') continue;
    const histogram = (s.metrics ?? [])
      .map((m) => ({ m, k: /^total_ns_log2_(\d+)$/.exec(m.name)?.[1] }))
      .filter((x): x is { m: typeof x.m; k: string } => x.k !== undefined)
      .map((x) => ({ bucket: Number(x.k), count: x.m.value }))
      .sort((a, b) => a.bucket - b.bucket);
    const notify = metric(s, 'notify_p50');
    const resolve = metric(s, 'resolve_p50');
    const iterations = metric(s, 'iterations');
    rows.push({
      id: s.id,
      ...(s.backing ? { backing: s.backing } : {}),
      ...(iterations !== undefined ? { iterations } : {}),
      total: {
        p50,
        p90: metric(s, 'total_p90') ?? NaN,
        p99: metric(s, 'total_p99') ?? NaN,
        p99_9: metric(s, 'total_p99_9') ?? NaN,
        max: metric(s, 'total_max') ?? NaN,
      },
      ...(notify !== undefined ? { notifyP50: notify } : {}),
      ...(resolve !== undefined ? { resolveP50: resolve } : {}),
      histogram,
    });
  }
  return rows;
}

/** A percentile of a row in human units, or n/a when its sample count cannot support it. */
function pct(x: LatencyRow, q: number, v: number): string {
  return percentileSupported(q, x.iterations) ? formatNs(v) : 'n/a';
}

function cells(x: LatencyRow): string[] {
  return [
    formatNs(x.total.p50),
    pct(x, 0.9, x.total.p90),
    pct(x, 0.99, x.total.p99),
    pct(x, 0.999, x.total.p99_9),
    formatNs(x.total.max),
    formatNs(x.notifyP50),
    formatNs(x.resolveP50),
  ];
}

/** Says why some percentiles read n/a (p99 from 50 samples is the maximum under another name). */
function naNote(rows: readonly LatencyRow[]): string {
  const short = rows.filter((x) => cells(x).includes('n/a')).map((x) => x.iterations);
  if (short.length === 0) return '';
  return `n/a: a percentile needs at least one sample beyond it (p99: ${samplesNeeded(0.99)} samples, p99.9: ${samplesNeeded(0.999)}); these cases took ${[...new Set(short)].join(' or ')}`;
}

export function latencyTable(r: RunRecord): string {
  const rows = latencyRows(r);
  if (rows.length === 0) return '';
  const head = ['case', 'n', 'p50', 'p90', 'p99', 'p99.9', 'max', 'notify p50', 'resolve p50'];
  const body = rows.map((x) => [x.id.replace(/^uffd-lat\//, ''), String(x.iterations ?? ''), ...cells(x)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const fmt = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const note = `per-fault round trip (total = fault to resolved), accel ${accelOf(r)}, guest clocksource ${r.guest?.clocksource ?? 'unknown'}${r.qemu?.accel === 'tcg' ? ' (TCG figures are not KVM figures)' : ''}`;
  return [note, fmt(head), ...body.map(fmt), naNote(rows), ''].join('\n');
}

/** A case's log2 histogram (one bar per power-of-two bucket), drawn as the nightly report draws it. */
function histogramSvg(row: LatencyRow): string {
  const buckets = new Map(row.histogram.map((b) => [b.bucket, b.count]));
  return svgLog2Histogram(
    [{ label: `${row.id.replace(/^uffd-lat\//, '')}, p50 ${formatNs(row.total.p50)}`, buckets }],
    { title: row.id, width: 420, height: 170 },
  );
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** Writes histograms/<case>.svg and latency.html into the run directory; returns false when the run has no latency data. */
export async function writeLatencyReport(dir: string, r: RunRecord): Promise<boolean> {
  const rows = latencyRows(r);
  if (rows.length === 0) return false;
  for (const row of rows) await writeFileAtomic(join(dir, 'histograms', `${safeName(row.id)}.svg`), histogramSvg(row));
  const tr = rows
    .map(
      (x) =>
        `<tr><td>${escapeMarkup(x.id)}</td><td>${x.iterations ?? ''}</td>${cells(x)
          .map((v) => `<td>${escapeMarkup(v)}</td>`)
          .join('')}</tr>`,
    )
    .join('\n');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>faultline latency ${escapeMarkup(r.runId)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}.h{display:inline-block;margin:6px}</style></head><body>
<h1>userfaultfd fault latency</h1>
<p>run ${escapeMarkup(r.runId)}, kernel ${escapeMarkup(r.kernel.release ?? r.kernel.path)}, accel <b>${accelOf(r)}</b>${r.qemu?.accel === 'tcg' ? ' (software emulation: not comparable with KVM figures)' : ''}, guest clocksource <b>${escapeMarkup(r.guest?.clocksource ?? 'unknown')}</b>, ${r.qemu?.smp ?? 0} vCPU</p>
<table><thead><tr><th>case</th><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>notify p50</th><th>resolve p50</th></tr></thead><tbody>
${tr}
</tbody></table>
<p>${escapeMarkup(naNote(rows))}</p>
<h2>histograms</h2>
${rows.map((x) => `<div class="h">${histogramSvg(x)}</div>`).join('\n')}
</body></html>
`;
  await writeFileAtomic(join(dir, 'latency.html'), html);
  return true;
}
