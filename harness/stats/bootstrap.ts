/** Reproducible resampling: a seeded PRNG and the bootstrap CI of a median ratio. */
/** Small deterministic PRNG (mulberry32): bootstrap results must be reproducible. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Percentile bootstrap CI of median(head) / median(base). */
export function bootstrapMedianRatioCI(
  base: readonly number[],
  head: readonly number[],
  opts: { iterations?: number; confidence?: number; seed?: number } = {},
): { low: number; high: number } {
  const iterations = opts.iterations ?? 2000;
  const conf = opts.confidence ?? 0.95;
  if (base.length === 0 || head.length === 0) return { low: NaN, high: NaN };
  const rnd = mulberry32(opts.seed ?? 0x5eed);
  // Typed arrays sort numerically in place: this loop runs for every metric of a nightly.
  const sa = new Float64Array(base.length);
  const sb = new Float64Array(head.length);
  const ratios = new Float64Array(iterations);
  let n = 0;
  const med = (xs: Float64Array): number => {
    xs.sort();
    const h = xs.length >> 1;
    return xs.length % 2 ? (xs[h] ?? NaN) : ((xs[h - 1] ?? NaN) + (xs[h] ?? NaN)) / 2;
  };
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < base.length; i++) sa[i] = base[Math.floor(rnd() * base.length)] ?? 0;
    for (let i = 0; i < head.length; i++) sb[i] = head[Math.floor(rnd() * head.length)] ?? 0;
    const mb = med(sa);
    if (mb !== 0) ratios[n++] = med(sb) / mb;
  }
  if (n === 0) return { low: NaN, high: NaN };
  const sorted = ratios.subarray(0, n).sort();
  const at = (q: number): number => {
    const pos = (n - 1) * q;
    const lo = Math.floor(pos);
    const a = sorted[lo] ?? NaN;
    const b = sorted[Math.ceil(pos)] ?? NaN;
    return a + (b - a) * (pos - lo);
  };
  return { low: at((1 - conf) / 2), high: at(1 - (1 - conf) / 2) };
}
