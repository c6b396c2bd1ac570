/** Two-sample hypothesis tests: Mann-Whitney U and Welch's t. */
import { mean, variance } from './descriptive.js';
import { normalCdf, studentTTwoSided } from './distributions.js';

export interface TestResult {
  statistic: number;
  /** Two-sided p-value. */
  p: number;
  method: string;
}

/**
 * Mann-Whitney U (Wilcoxon rank-sum), two-sided. Exact distribution when there are no ties and
 * the samples are small (the usual case: a handful of repetitions), normal approximation with
 * tie and continuity correction otherwise. statistic = U of sample a.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): TestResult {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return { statistic: NaN, p: 1, method: 'mann-whitney' };
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  let tieTerm = 0;
  let ties = false;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1]?.v === all[i]?.v) j++;
    const r = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) ranks[k] = r;
    const t = j - i + 1;
    if (t > 1) {
      ties = true;
      tieTerm += t * t * t - t;
    }
    i = j + 1;
  }
  let r1 = 0;
  all.forEach((x, i) => {
    if (x.g === 0) r1 += ranks[i] ?? 0;
  });
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  if (!ties && n1 * n2 <= 2500) {
    const dist = exactUDistribution(n1, n2);
    let lower = 0;
    let upper = 0;
    const uInt = Math.round(u1);
    for (let u = 0; u < dist.length; u++) {
      if (u <= uInt) lower += dist[u] ?? 0;
      if (u >= uInt) upper += dist[u] ?? 0;
    }
    return { statistic: u1, p: Math.min(1, 2 * Math.min(lower, upper)), method: 'mann-whitney-exact' };
  }
  const n = n1 + n2;
  const mu = (n1 * n2) / 2;
  const sigma2 = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (sigma2 <= 0) return { statistic: u1, p: 1, method: 'mann-whitney-normal' };
  const z = (Math.abs(u1 - mu) - 0.5) / Math.sqrt(sigma2);
  return { statistic: u1, p: Math.min(1, 2 * (1 - normalCdf(Math.max(0, z)))), method: 'mann-whitney-normal' };
}

const uCache = new Map<string, Float64Array>();

/** P(U = u) for u = 0..n1*n2 under H0, by the recurrence on (n1, n2) counts. */
function exactUDistribution(n1: number, n2: number): Float64Array {
  const key = `${n1},${n2}`;
  const hit = uCache.get(key);
  if (hit) return hit;
  // cnt[i][j] = counts for sizes (i, j); only keep rows as we go (j dimension varies).
  const max = n1 * n2;
  let prev: Float64Array[] = [];
  for (let i = 0; i <= n1; i++) {
    const row: Float64Array[] = [];
    for (let j = 0; j <= n2; j++) {
      const arr = new Float64Array(i * j + 1);
      if (i === 0 || j === 0) arr[0] = 1;
      else {
        const left = prev[j];
        const down = row[j - 1];
        for (let u = 0; u <= i * j; u++) {
          // The largest of the i+j values is either from sample 1 (adds j to U) or sample 2.
          const fromA = u - j >= 0 && left ? (left[u - j] ?? 0) : 0;
          const fromB = down && u < down.length ? (down[u] ?? 0) : 0;
          arr[u] = fromA + fromB;
        }
      }
      row.push(arr);
    }
    prev = row;
  }
  const counts = prev[n2] ?? new Float64Array(max + 1);
  let total = 0;
  for (const c of counts) total += c;
  const dist = counts.map((c) => c / total);
  uCache.set(key, dist);
  return dist;
}

/** Welch's unequal-variance t test, two-sided. statistic = t of mean(b) - mean(a). */
export function welchT(a: readonly number[], b: readonly number[]): TestResult {
  if (a.length < 2 || b.length < 2) return { statistic: NaN, p: 1, method: 'welch-t' };
  const va = variance(a) / a.length;
  const vb = variance(b) / b.length;
  const se2 = va + vb;
  const diff = mean(b) - mean(a);
  if (se2 === 0)
    return { statistic: diff === 0 ? 0 : Infinity * Math.sign(diff), p: diff === 0 ? 1 : 0, method: 'welch-t' };
  const t = diff / Math.sqrt(se2);
  const df = (se2 * se2) / ((va * va) / (a.length - 1) + (vb * vb) / (b.length - 1));
  return { statistic: t, p: studentTTwoSided(t, df), method: 'welch-t' };
}
