/**
 * What a metric is and how people read it: time in human units, histogram buckets told apart
 * from metrics, and which percentiles a sample count can support. A leaf module (no imports) so
 * the result writers, the comparison and the reports share one definition.
 */

/** A log2 histogram bucket ("<name>_log2_<k>", unit samples): part of a distribution, not a metric. */
export function isHistogramBucket(name: string, unit: string): boolean {
  return unit === 'samples' && /_log2_\d+$/.test(name);
}

/** The quantile a metric name stands for: total_p50 -> 0.5, total_p99_9 -> 0.999; else undefined. */
export function metricQuantile(name: string): number | undefined {
  const m = /(?:^|_)p(\d{1,2})(?:_(\d+))?$/.exec(name);
  if (!m) return undefined;
  // From the decimal digits, not x / 100: 99.9 / 100 is 0.9990000000000001.
  const q = Number(`0.${(m[1] ?? '').padStart(2, '0')}${m[2] ?? ''}`);
  return q > 0 && q < 1 ? q : undefined;
}

/**
 * A quantile q of n samples is supported when at least one sample lies beyond it: n(1-q) >= 1.
 * p99 needs 100 samples and p99.9 1000; below that the figure is the maximum under another name.
 */
export function percentileSupported(q: number, n: number | undefined): boolean {
  if (n === undefined || !Number.isFinite(n)) return true;
  return n * (1 - q) >= 1 - 1e-9;
}

/** The smallest sample count that supports quantile q. */
export function samplesNeeded(q: number): number {
  return Math.ceil(1 / (1 - q) - 1e-9);
}

/** "p99.9" for 0.999. */
export function quantileLabel(q: number): string {
  return `p${Number((q * 100).toFixed(3))}`;
}

/** Three significant digits without an exponent (999.6 is not "1.00e+3"). */
function sig3(v: number): string {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

const TIME_UNITS: readonly [number, string][] = [
  [1e9, 's'],
  [1e6, 'ms'],
  [1e3, 'µs'],
];

/** Nanoseconds in the unit people read: 850 ns, 12.3 µs, 1.06 ms, 2.50 s. */
export function formatNs(ns: number | undefined): string {
  if (ns === undefined || !Number.isFinite(ns)) return '–';
  for (const [scale, unit] of TIME_UNITS) {
    // Round first: 999.7 µs reads 1.00 ms, not 1000 µs.
    if (Math.abs(ns) >= scale * 0.9995) return `${sig3(ns / scale)} ${unit}`;
  }
  return `${Math.round(ns)} ns`;
}

/** A metric value with its unit: times in human units, counts as plain numbers, no exponents. */
export function formatMetric(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === 'ns') return formatNs(value);
  if (unit === 'us') return formatNs(value * 1e3);
  if (unit === 'ms') return formatNs(value * 1e6);
  if (unit === 's') return formatNs(value * 1e9);
  if (unit === 'bytes') {
    const units: [number, string][] = [
      [2 ** 30, 'GiB'],
      [2 ** 20, 'MiB'],
      [2 ** 10, 'KiB'],
    ];
    for (const [scale, u] of units) if (value >= scale) return `${sig3(value / scale)} ${u}`;
    return `${value} B`;
  }
  const a = Math.abs(value);
  const num = Number.isInteger(value)
    ? value.toLocaleString('en-US')
    : a >= 1e6
      ? Math.round(value).toLocaleString('en-US')
      : sig3(value);
  return unit === 'count' || unit === '' ? num : `${num} ${unit}`;
}

/**
 * A relative change: ratio 1.031 -> "+3.1%", 0.9 -> "−10.0%"; beyond a factor of two as the
 * factor (5.14 -> "×5.1", 0.02 -> "÷50"), which reads better than "+414%" or "−98%".
 */
export function formatChange(ratio: number): string {
  if (!Number.isFinite(ratio) || ratio <= 0) return ratio === 0 ? '÷∞' : '–';
  if (ratio >= 2) return `×${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}`;
  if (ratio <= 0.5) return `÷${1 / ratio >= 10 ? (1 / ratio).toFixed(0) : (1 / ratio).toFixed(1)}`;
  const p = (ratio - 1) * 100;
  return `${p >= 0 ? '+' : '−'}${Math.abs(p).toFixed(1)}%`;
}

/** p-values as people quote them: 0.33, 0.012, < 0.001. */
export function formatP(p: number): string {
  if (!Number.isFinite(p)) return '–';
  return p < 0.001 ? '< 0.001' : p < 0.01 ? p.toFixed(3) : p.toFixed(2);
}

/**
 * How many samples a percentile metric of a subtest was taken over: the sum of the same
 * quantity's log2 histogram when there is one (uffd-lat total_ns, postcopy fault_ns), else the
 * subtest's iterations.
 */
export function sampleCount(
  t: { metrics?: readonly { name: string; value: number; unit: string }[] },
  metric: string,
): number | undefined {
  const prefix = metric.replace(/_p\d+(?:_\d+)?$/, '');
  const bucket = new RegExp(`^${prefix.replace(/[^a-z0-9_]/gi, '')}(?:_ns)?_log2_\\d+$`);
  let sum = 0;
  let found = false;
  for (const m of t.metrics ?? []) {
    if (m.unit === 'samples' && bucket.test(m.name)) {
      sum += m.value;
      found = true;
    }
  }
  if (found) return sum;
  return t.metrics?.find((m) => m.name === 'iterations')?.value;
}
