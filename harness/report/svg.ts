/**
 * Inline SVG charts for the static report: no scripts, no external files, so the page works
 * from file:// and from any static host.
 */

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6 || (a > 0 && a < 1e-3)) return x.toExponential(2);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** Histogram of `values`; `baseline` (optional) is drawn as outlined bars on the same bins. */
export function svgHistogram(values: readonly number[], opts: { unit: string; bins?: number; width?: number; height?: number; baseline?: readonly number[]; title?: string }): string {
  const w = opts.width ?? 320;
  const h = opts.height ?? 120;
  const padL = 30;
  const padB = 22;
  const all = [...values, ...(opts.baseline ?? [])].filter(Number.isFinite);
  if (all.length === 0) return '';
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (lo === hi) {
    lo -= Math.abs(lo) * 0.05 || 1;
    hi += Math.abs(hi) * 0.05 || 1;
  }
  const bins = opts.bins ?? Math.min(20, Math.max(5, Math.ceil(Math.sqrt(all.length) * 2)));
  const count = (xs: readonly number[]): number[] => {
    const c = new Array<number>(bins).fill(0);
    for (const x of xs) {
      if (!Number.isFinite(x)) continue;
      const i = Math.min(bins - 1, Math.floor(((x - lo) / (hi - lo)) * bins));
      c[i] = (c[i] ?? 0) + 1;
    }
    return c;
  };
  const cur = count(values);
  const base = opts.baseline ? count(opts.baseline) : undefined;
  const maxC = Math.max(1, ...cur, ...(base ?? []));
  const bw = (w - padL - 4) / bins;
  const y = (c: number): number => (h - padB) - (c / maxC) * (h - padB - 6);
  const parts: string[] = [];
  parts.push(`<svg class="hist" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(opts.title ?? 'histogram')}">`);
  if (opts.title) parts.push(`<title>${esc(opts.title)}</title>`);
  parts.push(`<line x1="${padL}" y1="${h - padB}" x2="${w - 2}" y2="${h - padB}" stroke="#888"/>`);
  cur.forEach((c, i) => {
    if (c === 0) return;
    const x0 = lo + ((hi - lo) * i) / bins;
    const x1 = lo + ((hi - lo) * (i + 1)) / bins;
    parts.push(`<rect x="${(padL + i * bw + 1).toFixed(1)}" y="${y(c).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${(h - padB - y(c)).toFixed(1)}" fill="#4a7ebb"><title>${fmt(x0)}..${fmt(x1)} ${esc(opts.unit)}: ${c}</title></rect>`);
  });
  base?.forEach((c, i) => {
    if (c === 0) return;
    parts.push(`<rect x="${(padL + i * bw + 1).toFixed(1)}" y="${y(c).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${(h - padB - y(c)).toFixed(1)}" fill="none" stroke="#d08020" stroke-dasharray="3,2"><title>baseline: ${c}</title></rect>`);
  });
  parts.push(`<text x="${padL}" y="${h - 6}" font-size="10">${esc(fmt(lo))}</text>`);
  parts.push(`<text x="${w - 2}" y="${h - 6}" font-size="10" text-anchor="end">${esc(fmt(hi))} ${esc(opts.unit)}</text>`);
  parts.push(`<text x="${padL - 4}" y="12" font-size="10" text-anchor="end">${maxC}</text>`);
  parts.push('</svg>');
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
  const parts = [`<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="test status per night">`];
  nights.forEach((n, i) => {
    let yTop = h - padB;
    for (const [k, colour] of colours) {
      const v = n[k];
      if (v <= 0) continue;
      const bh = (v / max) * (h - padB - 6);
      yTop -= bh;
      parts.push(`<rect x="${(5 + i * bw + 1).toFixed(1)}" y="${yTop.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${colour}"><title>${esc(n.label)}: ${v} ${k}</title></rect>`);
    }
  });
  const first = nights[0];
  const last = nights[nights.length - 1];
  if (first) parts.push(`<text x="5" y="${h - 4}" font-size="10">${esc(first.label)}</text>`);
  if (last && nights.length > 1) parts.push(`<text x="${w - 5}" y="${h - 4}" font-size="10" text-anchor="end">${esc(last.label)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/** A small line chart of one metric's nightly median; gaps where a night has no value. */
export function svgLine(points: readonly { label: string; value: number | undefined }[], opts: { unit: string; width?: number; height?: number; title?: string }): string {
  const vals = points.map((p) => p.value).filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (vals.length === 0) return '';
  const w = opts.width ?? 240;
  const h = opts.height ?? 70;
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  if (lo === hi) {
    lo -= Math.abs(lo) * 0.05 || 1;
    hi += Math.abs(hi) * 0.05 || 1;
  }
  const x = (i: number): number => 4 + (points.length <= 1 ? 0 : (i * (w - 8)) / (points.length - 1));
  const y = (v: number): number => h - 14 - ((v - lo) / (hi - lo)) * (h - 22);
  const segs: string[] = [];
  let cur: string[] = [];
  points.forEach((p, i) => {
    if (p.value === undefined || !Number.isFinite(p.value)) {
      if (cur.length) segs.push(cur.join(' '));
      cur = [];
      return;
    }
    cur.push(`${x(i).toFixed(1)},${y(p.value).toFixed(1)}`);
  });
  if (cur.length) segs.push(cur.join(' '));
  const parts = [`<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(opts.title ?? 'trend')}">`];
  for (const s of segs) parts.push(`<polyline points="${s}" fill="none" stroke="#4a7ebb" stroke-width="1.5"/>`);
  points.forEach((p, i) => {
    if (p.value === undefined || !Number.isFinite(p.value)) return;
    parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="2" fill="#4a7ebb"><title>${esc(p.label)}: ${fmt(p.value)} ${esc(opts.unit)}</title></circle>`);
  });
  parts.push(`<text x="4" y="${h - 2}" font-size="9">${esc(fmt(lo))}</text><text x="${w - 4}" y="${h - 2}" font-size="9" text-anchor="end">${esc(fmt(hi))} ${esc(opts.unit)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}
