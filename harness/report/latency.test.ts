/**
 * The latency model and its units on real captured nights (harness/report/fixtures/): uffd-lat's
 * cases with their repetitions and merged histograms, which percentiles a sample count supports
 * (postcopy's fault_* over its own histogram), human units, and how small a p the runs allow.
 */
import t from 'tap';
import { FIXTURE_RESULTS, loadNight, NIGHTS } from './fixtures/nights.js';
import { caseTitle, compareCases, latencyCases, percentile } from './latency.js';
import { smallestP } from './latency-html.js';
import {
  formatChange,
  formatMetric,
  formatNs,
  isHistogramBucket,
  metricQuantile,
  percentileSupported,
  sampleCount,
} from '../results/units.js';

const second = await loadNight(FIXTURE_RESULTS, NIGHTS.second);
const first = await loadNight(FIXTURE_RESULTS, NIGHTS.first);
const suites = await loadNight(FIXTURE_RESULTS, NIGHTS.suites);

t.test('cases of a real night: operation, backing, handler, repetitions merged', async (t) => {
  const cases = latencyCases(
    second.runs.map((r) => r.record),
    ['hugetlb', 'shmem'],
  );
  t.equal(cases.length, 18, 'clock-overhead is not a fault case');
  t.same(cases.slice(0, 3).map(caseTitle), [
    'first touch (no uffd) · hugetlb',
    'MISSING+COPY · hugetlb · blocking',
    'MISSING+COPY · hugetlb · busy-poll',
  ]);
  const minor = cases.find((c) => c.id === 'uffd-lat/minor-continue/hugetlb/blocking');
  t.equal(minor?.opLabel, 'MINOR+CONTINUE');
  t.equal(minor?.runs.length, 2, 'both repetitions');
  t.same(
    minor?.runs.map((r) => r.n),
    [50, 50],
    'quick runs take 50 samples',
  );
  t.equal(
    [...(minor?.hist.values() ?? [])].reduce((a, b) => a + b, 0),
    100,
    'the histogram merges both runs',
  );
  const raw = second.runs.flatMap((r) =>
    r.record.subtests
      .filter((s) => s.id === minor?.id)
      .map((s) => s.metrics?.find((m) => m.name === 'total_p50')?.value ?? NaN),
  );
  t.equal(percentile(minor ?? cases[0]!, 'p50').value, (raw[0]! + raw[1]!) / 2, 'p50 is the median of the runs');
  t.equal(percentile(minor ?? cases[0]!, 'p99').supported, false, 'p99 of 50 samples is not supported');
  t.equal(percentile(minor ?? cases[0]!, 'p90').supported, true);
  t.same(latencyCases(suites.runs.map((r) => r.record)), [], 'uffd-contract and postcopy have no uffd-lat cases');
});

t.test('baseline against tonight: the comparison is over the runs', async (t) => {
  const base = latencyCases(first.runs.map((r) => r.record));
  const head = latencyCases(second.runs.map((r) => r.record));
  const b = base.find((c) => c.id === 'uffd-lat/wp-async/hugetlb');
  const h = head.find((c) => c.id === 'uffd-lat/wp-async/hugetlb');
  if (!b || !h) return t.fail('wp-async on hugetlb in both nights');
  const c = compareCases(b, h);
  // By hand from the fixtures' total_p50 of uffd-lat/wp-async/hugetlb: the first night's runs
  // 10350 and 10128 ns, the second's 10182 and 10742 ns. Medians 10239 and 10462 ns. Ranked
  // 10128 (A) 10182 (B) 10350 (A) 10742 (B): U of A = 1 + 3 - 3 = 1; of the 6 equally likely
  // rankings of 2 vs 2, U <= 1 in 2, so the exact two-sided p = 2 * 2/6 = 2/3. A bootstrap
  // resample of 2 runs is both of the smaller in 1 case of 4 (likewise the larger): each extreme
  // ratio has probability 1/16 > 2.5%, so the 95% interval runs from 10182/10350 to 10742/10128.
  t.match(c, {
    nBase: 2,
    nHead: 2,
    medianBase: 10239,
    medianHead: 10462,
    test: { statistic: 1, method: 'mann-whitney-exact' },
    significant: false,
    regression: false,
    improvement: false,
  });
  t.equal(c.ratio, 10462 / 10239);
  t.ok(Math.abs(c.test.p - 2 / 3) < 1e-12, `p ${c.test.p} is 2/3`);
  t.same([c.ci.low, c.ci.high], [10182 / 10350, 10742 / 10128]);
  t.ok(c.test.p >= smallestP(2, 2), 'no p below what 2 runs a side allow');
  t.equal(smallestP(2, 2), 1 / 3);
  t.ok(smallestP(3, 3) > 0.05 && smallestP(4, 4) < 0.05, 'four runs a side can reach p < 0.05');
});

t.test('kernel against kernel on different clocksources: invalid, never flagged', async (t) => {
  const kernels = await loadNight(FIXTURE_RESULTS, NIGHTS.kernels);
  const casesOf = (k: string): ReturnType<typeof latencyCases> =>
    latencyCases(kernels.runs.filter((r) => r.job.kernel === k).map((r) => r.record));
  const id = 'uffd-lat/missing-copy/shmem/blocking';
  const on61 = casesOf('debian-6.1').find((c) => c.id === id);
  const on612 = casesOf('debian-6.12').find((c) => c.id === id);
  if (!on61 || !on612) return t.fail(`${id} on both kernels`);
  t.same(
    [...on61.runs, ...on612.runs].map((r) => r.clocksource),
    ['hpet', 'hpet', 'tsc', 'tsc'],
  );
  // An alpha the two runs a side can reach: the figures would be flagged if they were comparable.
  const c = compareCases(on61, on612, { alpha: 0.5 });
  t.match(c, { regression: false, improvement: false, invalidReason: 'guests on different clocksources (hpet → tsc)' });
  t.ok(c.significant, `significant at alpha 0.5 (p ${c.test.p}): only the clocksources keep it from being flagged`);
  const same = compareCases(on61, { ...on61 });
  t.equal(same.invalidReason, undefined, 'hpet against hpet');
});

t.test('sample counts and supported percentiles', async (t) => {
  t.equal(metricQuantile('total_p50'), 0.5);
  t.equal(metricQuantile('total_p99_9'), 0.999);
  t.equal(metricQuantile('clock_p99'), 0.99);
  t.equal(metricQuantile('total_max'), undefined);
  t.equal(metricQuantile('iterations'), undefined);
  t.ok(percentileSupported(0.99, 100) && !percentileSupported(0.99, 99));
  t.ok(percentileSupported(0.999, 1000) && !percentileSupported(0.999, 50));
  const copy = suites.runs.flatMap((r) => r.record.subtests).find((s) => s.id === 'postcopy/copy/hugetlb');
  const demand = copy?.metrics?.find((m) => m.name === 'demand_accesses')?.value;
  t.ok(demand !== undefined && demand > 0);
  t.equal(
    copy && sampleCount(copy, 'fault_p99'),
    demand,
    "postcopy's fault percentiles are over its fault_ns histogram: the demand accesses",
  );
  const lat = second.runs
    .flatMap((r) => r.record.subtests)
    .find((s) => s.id === 'uffd-lat/missing-copy/shmem/blocking');
  t.equal(lat && sampleCount(lat, 'notify_p99'), 50, 'no notify histogram: the iterations');
  t.equal(lat && sampleCount(lat, 'total_p99'), 50);
  const buckets = (lat?.metrics ?? []).filter((m) => isHistogramBucket(m.name, m.unit));
  t.ok(buckets.length > 0 && buckets.every((m) => /^total_ns_log2_\d+$/.test(m.name)));
  t.notOk(isHistogramBucket('total_p50', 'ns'));
});

t.test('human units', async (t) => {
  t.equal(formatNs(850), '850 ns');
  t.equal(formatNs(10_466), '10.5 µs');
  t.equal(formatNs(999_700), '1.00 ms', 'rounds into the next unit, never 1000 µs');
  t.equal(formatNs(1_060_000), '1.06 ms');
  t.equal(formatNs(2.5e9), '2.50 s');
  t.equal(formatMetric(2_097_152, 'bytes'), '2.00 MiB');
  t.equal(formatMetric(20_000, 'count'), '20,000');
  t.equal(formatMetric(6.916, 'ms'), '6.92 ms');
  t.equal(formatMetric(5854.941, 'pages/s'), '5855 pages/s');
  t.equal(formatChange(1.031), '+3.1%');
  t.equal(formatChange(0.9), '−10.0%');
  t.equal(formatChange(5.14), '×5.1');
  t.equal(formatChange(0.02), '÷50');
});
