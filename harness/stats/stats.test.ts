import t from 'tap';
import { bootstrapMedianRatioCI } from './bootstrap.js';
import { median, quantile } from './descriptive.js';
import { incompleteBeta, normalCdf, studentTTwoSided } from './distributions.js';
import { mannWhitneyU, welchT } from './hypothesis.js';
import { normalSample } from './fixtures/normal.js';

const close = (a: number, b: number, tol: number): boolean => Math.abs(a - b) <= tol;

t.test('descriptive statistics', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 2, 3]), 2.5);
  t.equal(quantile([1, 2, 3, 4, 5], 0.1), 1.4);
  t.ok(Number.isNaN(median([])));
});

t.test('distribution functions against tabulated values', async (t) => {
  t.ok(close(normalCdf(1.959964), 0.975, 1e-6));
  t.ok(close(normalCdf(0), 0.5, 1e-7));
  // Student t critical values: two-sided p = 0.05
  t.ok(close(studentTTwoSided(2.228139, 10), 0.05, 1e-5), `t(10) ${studentTTwoSided(2.228139, 10)}`);
  t.ok(close(studentTTwoSided(2.570582, 5), 0.05, 1e-5));
  t.ok(close(studentTTwoSided(1.959964, 1e7), 0.05, 1e-4), 'large df tends to the normal');
  t.ok(close(incompleteBeta(0.5, 2, 2), 0.5, 1e-12), 'symmetric beta at 0.5');
});

t.test('Mann-Whitney U: exact small-sample p-values', async (t) => {
  // Complete separation, 3 vs 3: P(U=0) = 1/C(6,3) = 1/20, two-sided 0.1.
  const a = mannWhitneyU([1, 2, 3], [4, 5, 6]);
  t.equal(a.statistic, 0);
  t.equal(a.method, 'mann-whitney-exact');
  t.ok(close(a.p, 0.1, 1e-12));
  // 5 vs 5 separated: 2/252.
  t.ok(close(mannWhitneyU([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p, 2 / 252, 1e-12));
  // Symmetric in the order of the samples.
  t.ok(close(mannWhitneyU([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]).p, 2 / 252, 1e-12));
  // Interleaved: no evidence.
  t.ok(mannWhitneyU([1, 3, 5, 7], [2, 4, 6, 8]).p > 0.5);
  // Two repetitions a side can never be significant (min p = 1/3).
  t.ok(close(mannWhitneyU([1, 2], [3, 4]).p, 1 / 3, 1e-12));
});

t.test('Mann-Whitney U: ties use the normal approximation with tie correction', async (t) => {
  const r = mannWhitneyU([1, 1, 2, 2, 3, 3, 3], [3, 4, 4, 5, 5, 6, 6]);
  t.equal(r.method, 'mann-whitney-normal');
  t.ok(r.p < 0.01, `p=${r.p}`);
  t.equal(mannWhitneyU([5, 5, 5], [5, 5, 5]).p, 1, 'all tied: no evidence');
});

t.test('Welch t on known samples', async (t) => {
  // mean 3 (var 2.5) vs mean 6 (var 10), n=5: t=1.8974, df=5.882 -> p ~= 0.1075 (scipy ttest_ind equal_var=False).
  const w = welchT([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]);
  t.ok(close(w.statistic, 1.897367, 1e-5), `t=${w.statistic}`);
  t.ok(close(w.p, 0.1075, 2e-3), `p=${w.p}`);
});

t.test('bootstrap CI of the median ratio is reproducible and covers the truth', async (t) => {
  const base = normalSample(30, 100, 5, 1);
  const head = normalSample(30, 120, 6, 2);
  const ci1 = bootstrapMedianRatioCI(base, head, { seed: 7 });
  const ci2 = bootstrapMedianRatioCI(base, head, { seed: 7 });
  t.same(ci1, ci2, 'same seed, same interval');
  t.ok(ci1.low < 1.2 && ci1.high > 1.2, `CI ${ci1.low}..${ci1.high} covers 1.2`);
  t.ok(ci1.low > 1.1, 'and excludes "no change"');
});
