/**
 * Inline SVG charts for the static report: no scripts, no external files, so the page works
 * from file:// and from any static host.
 */
import { formatNs } from '../results/units.js';
import { escapeMarkup } from '../util/markup.js';

/** One distribution of a log2 histogram chart: bucket k counts samples 2^k <= ns < 2^(k+1). */
export interface Log2Series {
  label: string;
  buckets: ReadonlyMap<number, number>;
}

const SERIES_COLOURS = ['#3b6ea8', '#d08020', '#3c9a4c', '#8e44ad'];

/**
 * Log2 latency histograms overlaid on shared buckets, as the share of each series' samples (so
 * runs of different lengths compare): the first series filled, the others outlined.
 */
export function svgLog2Histogram(
  series: readonly Log2Series[],
  opts: { title: string; width?: number; height?: number },
): string {
  const shown = series.filter((s) => s.buckets.size > 0);
  if (shown.length === 0) return '';
  const w = opts.width ?? 320;
  const h = opts.height ?? 150;
  const padL = 30;
  const padR = 6;
  const padT = 6 + 13 * shown.length;
  const padB = 28;
  const ks = shown.flatMap((s) => [...s.buckets.keys()]);
  const lo = Math.min(...ks);
  const hi = Math.max(...ks);
  const shares = shown.map((s) => {
    const total = [...s.buckets.values()].reduce((a, b) => a + b, 0) || 1;
    return { s, total, share: (k: number): number => (s.buckets.get(k) ?? 0) / total };
  });
  const maxShare = Math.max(0.01, ...shares.flatMap(({ share }) => ks.map(share)));
  const nb = hi - lo + 1;
  const bw = (w - padL - padR) / nb;
  const y = (v: number): number => h - padB - (v / maxShare) * (h - padB - padT);
  const parts = [
    `<svg class="dist" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" role="img" aria-label="${escapeMarkup(opts.title)}"><title>${escapeMarkup(opts.title)}</title>`,
  ];
  shares.forEach(({ s, total, share }, i) => {
    const colour = SERIES_COLOURS[i % SERIES_COLOURS.length] ?? '#333';
    const mark =
      i === 0
        ? `fill="${colour}" fill-opacity="0.75"`
        : `fill="none" stroke="${colour}" stroke-width="1.5"${i > 1 ? ' stroke-dasharray="3,2"' : ''}`;
    parts.push(
      `<rect x="${padL}" y="${3 + 13 * i}" width="10" height="9" ${mark}/><text x="${padL + 14}" y="${11 + 13 * i}" font-size="10">${escapeMarkup(s.label)} (${total} samples)</text>`,
    );
    for (let k = lo; k <= hi; k++) {
      const v = share(k);
      if (v <= 0) continue;
      const x = padL + (k - lo) * bw + (i === 0 ? 1 : 2);
      const bwi = Math.max(1, bw - (i === 0 ? 2 : 4));
      const range = `${formatNs(2 ** k)} – ${formatNs(2 ** (k + 1))}`;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${bwi.toFixed(1)}" height="${(h - padB - y(v)).toFixed(1)}" ${mark}><title>${escapeMarkup(`${s.label}: ${range}: ${s.buckets.get(k) ?? 0} of ${total} (${(v * 100).toFixed(0)}%)`)}</title></rect>`,
      );
    }
  });
  parts.push(`<line x1="${padL}" y1="${h - padB}" x2="${w - padR}" y2="${h - padB}" stroke="#888"/>`);
  parts.push(
    `<text x="${padL - 3}" y="${(padT + 4).toFixed(0)}" font-size="9" text-anchor="end">${(maxShare * 100).toFixed(0)}%</text><text x="${padL - 3}" y="${h - padB}" font-size="9" text-anchor="end">0</text>`,
  );
  // A label every few buckets, at least 46 px apart, at the bucket's lower bound.
  const step = Math.max(1, Math.ceil(46 / bw));
  for (let k = lo; k <= hi; k += step) {
    if (padL + (k - lo) * bw + 34 > w) break;
    parts.push(
      `<text x="${(padL + (k - lo) * bw).toFixed(1)}" y="${h - padB + 11}" font-size="9">${escapeMarkup(formatNs(2 ** k))}</text>`,
    );
  }
  parts.push(
    `<text x="${((w + padL) / 2).toFixed(0)}" y="${h - 4}" font-size="9" text-anchor="middle" fill="#555">per-fault round trip (log2 buckets)</text></svg>`,
  );
  return parts.join('');
}

export interface TrendBar {
  label: string;
  pass: number;
  fail: number;
  error: number;
  skip: number;
}

/** Stacked bars of test statuses per night. */
export function svgStatusTrend(nights: readonly TrendBar[], opts: { width?: number; height?: number } = {}): string {
  if (nights.length === 0) return '';
  const w = opts.width ?? 760;
  const h = opts.height ?? 160;
  const padB = 18;
  const max = Math.max(1, ...nights.map((n) => n.pass + n.fail + n.error + n.skip));
  const bw = (w - 10) / nights.length;
  const colours: [keyof Omit<TrendBar, 'label'>, string][] = [
    ['pass', '#3c9a4c'],
    ['skip', '#b8b8b8'],
    ['error', '#c77c1e'],
    ['fail', '#c8322d'],
  ];
  const parts = [
    `<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="test status per night">`,
  ];
  nights.forEach((n, i) => {
    let yTop = h - padB;
    for (const [k, colour] of colours) {
      const v = n[k];
      if (v <= 0) continue;
      const bh = (v / max) * (h - padB - 6);
      yTop -= bh;
      parts.push(
        `<rect x="${(5 + i * bw + 1).toFixed(1)}" y="${yTop.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${colour}"><title>${escapeMarkup(n.label)}: ${v} ${k}</title></rect>`,
      );
    }
  });
  const first = nights[0];
  const last = nights[nights.length - 1];
  if (first) parts.push(`<text x="5" y="${h - 4}" font-size="10">${escapeMarkup(first.label)}</text>`);
  if (last && nights.length > 1)
    parts.push(`<text x="${w - 5}" y="${h - 4}" font-size="10" text-anchor="end">${escapeMarkup(last.label)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** A sparkline for a table cell: one value per night, gaps where a night has none, the last point marked. */
export function svgSpark(
  points: readonly { label: string; value: number | undefined }[],
  opts: { format: (v: number) => string; title: string; width?: number; height?: number },
): string {
  const vals = points.map((p) => p.value).filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (vals.length === 0) return '';
  const w = opts.width ?? 110;
  const h = opts.height ?? 24;
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  if (lo === hi) {
    lo -= Math.abs(lo) * 0.05 || 1;
    hi += Math.abs(hi) * 0.05 || 1;
  }
  const x = (i: number): number => 3 + (points.length <= 1 ? (w - 6) / 2 : (i * (w - 6)) / (points.length - 1));
  const y = (v: number): number => h - 3 - ((v - lo) / (hi - lo)) * (h - 6);
  const segs: string[][] = [[]];
  points.forEach((p, i) => {
    if (p.value === undefined || !Number.isFinite(p.value)) segs.push([]);
    else segs[segs.length - 1]?.push(`${x(i).toFixed(1)},${y(p.value).toFixed(1)}`);
  });
  const parts = [
    `<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${escapeMarkup(opts.title)}"><title>${escapeMarkup(opts.title)}</title>`,
  ];
  for (const s of segs)
    if (s.length > 1) parts.push(`<polyline points="${s.join(' ')}" fill="none" stroke="#3b6ea8" stroke-width="1.5"/>`);
  points.forEach((p, i) => {
    if (p.value === undefined || !Number.isFinite(p.value)) return;
    const last = i === points.length - 1;
    parts.push(
      `<circle cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="${last ? 2.8 : 1.6}" fill="${last ? '#b3261e' : '#3b6ea8'}"><title>${escapeMarkup(`${p.label}: ${opts.format(p.value)}`)}</title></circle>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}
