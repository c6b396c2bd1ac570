import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHIPPED_KNOWN_ISSUES, applyKnownIssues, readKnownIssues } from '../results/known-issues.js';
import { validateRunRecord } from '../results/record.js';
import {
  clocksourceMismatch,
  compareRuns,
  compareSamples,
  comparisonSchema,
  formatComparison,
  formatSampleChange,
  metricDirection,
  reviveComparison,
} from './compare.js';
import { splatSignature } from '../console/signature.js';
import type { RunRecord } from '../results/types.js';
import { lazyValidator } from '../util/schema.js';
import { FIXTURE_RESULTS, loadNight, NIGHTS } from '../report/fixtures/nights.js';
import { makeRecord, SAMPLE_SPLAT } from '../testkit/records.js';
import { normalSample } from '../stats/fixtures/normal.js';

const validateComparison = lazyValidator(comparisonSchema);

t.test('compareSamples: significant AND beyond the threshold, in the bad direction', async (t) => {
  const base = normalSample(10, 100, 3, 11);
  // +20% latency: flagged
  const worse = compareSamples(base, normalSample(10, 120, 3, 12), 'lower-is-better');
  t.ok(worse.significant && worse.regression && !worse.improvement, `p=${worse.test.p} ratio=${worse.ratio}`);
  // +2% with tiny noise: significant but below the 5% threshold -> not flagged
  const small = compareSamples(normalSample(10, 100, 0.2, 13), normalSample(10, 102, 0.2, 14), 'lower-is-better');
  t.ok(small.significant, 'a 2% shift with tiny noise is significant');
  t.notOk(small.regression, 'but within the 5% threshold');
  // +10% buried in 30% noise with 4 samples: beyond threshold maybe, but not significant
  const noisy = compareSamples(normalSample(4, 100, 30, 15), normalSample(4, 110, 30, 16), 'lower-is-better');
  t.notOk(noisy.regression, `noise is not a regression (p=${noisy.test.p})`);
  // Same distribution: nothing
  const same = compareSamples(normalSample(12, 100, 5, 17), normalSample(12, 100, 5, 18), 'lower-is-better');
  t.notOk(same.regression || same.improvement);
  // Faster latency is an improvement, and throughput up is an improvement
  t.ok(compareSamples(base, normalSample(10, 80, 3, 19), 'lower-is-better').improvement);
  t.ok(compareSamples(base, normalSample(10, 120, 3, 20), 'higher-is-better').improvement);
  // Welch gives the same verdicts on clean normal data
  t.ok(compareSamples(base, normalSample(10, 120, 3, 12), 'lower-is-better', { test: 'welch' }).regression);
});

t.test('false-positive rate under H0 stays near alpha', async (t) => {
  let flagged = 0;
  let significant = 0;
  const trials = 400;
  for (let i = 0; i < trials; i++) {
    const c = compareSamples(
      normalSample(8, 100, 10, 1000 + i),
      normalSample(8, 100, 10, 5000 + i),
      'lower-is-better',
      { bootstrapIterations: 50 },
    );
    if (c.significant) significant++;
    if (c.regression) flagged++;
  }
  t.ok(significant / trials < 0.09, `significant ${significant}/${trials}`);
  t.ok(flagged / trials < 0.05, `flagged ${flagged}/${trials}`);
});

t.test('metric direction from name and unit', async (t) => {
  t.equal(metricDirection('total_p50', 'ns'), 'lower-is-better');
  t.equal(metricDirection('faults', 'ops/s'), 'higher-is-better');
  t.equal(metricDirection('throughput', 'MiB'), 'higher-is-better');
});

t.test('splat signatures ignore addresses, pids and cpus', async (t) => {
  const other = { ...SAMPLE_SPLAT, title: 'WARNING: CPU: 0 PID: 1999 at mm/userfaultfd.c:1766 move_pages+0x9a4/0xc10' };
  t.equal(splatSignature(SAMPLE_SPLAT), splatSignature(other));
  t.not(
    splatSignature(SAMPLE_SPLAT),
    splatSignature({ ...SAMPLE_SPLAT, title: 'WARNING: CPU: 0 PID: 1 at mm/hugetlb.c:10 foo+0x1/0x2' }),
  );
});

t.test('compareRuns: regressions, flaky, fixed, appeared/vanished, splats, metrics', async (t) => {
  const reps = 6;
  const base = Array.from({ length: reps }, (_, i) =>
    makeRecord({
      runId: `b${i}`,
      seed: 100 + i,
      packageVersion: '6.12.40-1',
      latencyMedianNs: 10_000,
      latencySpread: 0.02,
      statusOf: (n) => (n === 'events' ? 'fail' : n === 'sigbus' && i % 2 ? 'fail' : 'pass'),
      unitTests: 12,
    }),
  );
  const head = Array.from({ length: reps }, (_, i) =>
    makeRecord({
      runId: `h${i}`,
      seed: 200 + i,
      packageVersion: '6.12.41-1',
      latencyMedianNs: 11_500,
      latencySpread: 0.02,
      unitTests: 13,
      statusOf: (n) => (n === 'minor' ? 'fail' : n === 'wp-fork' && i === 0 ? 'fail' : 'pass'),
      splats: i === 0 ? [SAMPLE_SPLAT] : [],
    }),
  );
  const c = compareRuns(base, head);
  t.same(
    c.regressions.map((r) => r.id),
    ['uffd-unit-tests/minor/anon'],
  );
  t.same(c.flaky.map((r) => [r.id, r.flakyBecause]).sort(), [
    ['uffd-unit-tests/sigbus/anon', 'mixed-results'],
    ['uffd-unit-tests/wp-fork/anon', 'mixed-results'],
  ]);
  t.same(
    c.fixed.map((r) => r.id),
    ['uffd-unit-tests/events/anon'],
  );
  t.same(
    c.appeared.map((r) => r.id),
    ['uffd-unit-tests/events-wp/anon'],
    'the 13th unit test exists only in head',
  );
  t.equal(c.vanished.length, 0);
  t.equal(c.newSplats.length, 1);
  t.same(
    c.metricRegressions.map((m) => `${m.id} ${m.metric}`),
    ['uffd-lat/first-touch/anon total_p50', 'uffd-lat/missing-copy/anon/blocking total_p50'],
  );
  // p99 of a quick run's 50 faults is its largest sample or so: never compared, never flagged.
  t.notOk(
    c.metrics.some((m) => m.metric === 'total_p99'),
    'p99 from 50 samples is left out of the comparison',
  );
  t.ok(c.metricRegressions.every((m) => m.ratio > 1.1 && m.test.p < 0.05));
  t.ok(c.regressed);

  // Same kernel on both sides: a consistent pass->fail is flaky, not a regression.
  const sameKernelHead = head.map((r) => ({
    ...r,
    kernel: { ...r.kernel, packageVersion: '6.12.40-1', release: base[0]?.kernel.release ?? '' },
  }));
  const c2 = compareRuns(base, sameKernelHead);
  t.same(c2.regressions, []);
  t.ok(c2.flaky.some((f) => f.id === 'uffd-unit-tests/minor/anon' && f.flakyBecause === 'same-kernel'));
  // History says it flips: kept apart too.
  const c3 = compareRuns(base, head, { knownFlaky: new Set(['guest_ram=anon|uffd-unit-tests/minor/anon']) });
  t.ok(c3.flaky.some((f) => f.id === 'uffd-unit-tests/minor/anon' && f.flakyBecause === 'known-flaky'));
  t.notOk(c3.regressions.some((r) => r.id === 'uffd-unit-tests/minor/anon'));
});

t.test('times across guest clocksources are invalid, never flagged (real 6.1-hpet and 6.12-tsc runs)', async (t) => {
  // The two-kernel night: Debian 6.1 booted on hpet (it found the TSCs unsynchronized under
  // TCG), 6.12 on tsc. Two uffd-lat runs a side on shmem.
  const night = await loadNight(FIXTURE_RESULTS, NIGHTS.kernels);
  const runs = (kernel: string): RunRecord[] =>
    night.runs
      .filter((r) => r.job.kernel === kernel && r.job.suite === 'uffd-lat' && r.job.backing === 'shmem')
      .map((r) => r.record);
  const on61 = runs('debian-6.1');
  const on612 = runs('debian-6.12');
  t.same(
    [...on61, ...on612].map((r) => r.guest?.clocksource),
    ['hpet', 'hpet', 'tsc', 'tsc'],
    'the captured clocksources',
  );
  // Welch's t on two runs a side calls clock_gettime's 11x (700 ns on hpet, 67 ns on tsc) a
  // regression; it is the clock, not the kernel.
  const c = compareRuns(on612, on61, { test: 'welch' });
  const clock = c.metrics.find((m) => m.id === 'uffd-lat/clock-overhead' && m.metric === 'clock_p50');
  t.ok(clock && clock.ratio > 5 && clock.test.p < 0.05, `clock_p50 ${clock?.ratio}x, p=${clock?.test.p}`);
  t.equal(clock?.invalidReason, 'guests on different clocksources (tsc → hpet)');
  t.notOk(clock?.regression, 'not a regression');
  t.same(c.metricRegressions, [], 'no metric regression');
  t.same(c.metricImprovements, [], 'no metric improvement');
  t.equal(c.regressed, false);
  const copy = c.metrics.find((m) => m.id === 'uffd-lat/missing-copy/shmem/blocking' && m.metric === 'total_p50');
  t.equal(formatSampleChange(copy!), 'invalid: guests on different clocksources (tsc → hpet)', 'printed as invalid');
  const timed = c.metrics.filter((m) => /^(ns|ms)$/.test(m.unit));
  t.ok(timed.length > 50 && timed.every((m) => m.invalidReason !== undefined), `all ${timed.length} times invalid`);
  const counts = c.metrics.filter((m) => m.unit === 'count' || m.unit === 'bytes');
  t.ok(counts.length > 0 && counts.every((m) => m.invalidReason === undefined), 'counts and sizes still compared');
  const text = formatComparison(c);
  t.match(
    text,
    /INVALID: timings not compared \(1\):\n {2}guest_ram=anon: \d+ metric\(s\), guests on different clocksources \(tsc → hpet\)/,
  );
  t.match(text, /compare: 0 regressions, 0 new splats, 0\/\d+ metrics worse \(p<0\.05, >5%\), \d+ invalid/);
  // Embedded in a series record: the reason survives the schema.
  const embedded = JSON.parse(JSON.stringify(c)) as unknown;
  t.ok(validateComparison(reviveComparison(embedded)), JSON.stringify(validateComparison.errors));
  const back = validateComparison.checked(embedded, 'test', 'comparison');
  t.equal(back.metrics.find((m) => m.key === copy?.key)?.invalidReason, copy?.invalidReason);
  t.notOk(validateComparison({ ...c, metrics: [{ ...copy, invalidReason: 1 }] }), 'the reason is a string');
});

t.test('one clocksource on both sides: timings compared as before', async (t) => {
  const night = await loadNight(FIXTURE_RESULTS, NIGHTS.kernels);
  const [r1, r2] = night.runs
    .filter((r) => r.job.kernel === 'debian-6.1' && r.job.suite === 'uffd-lat' && r.job.backing === 'shmem')
    .map((r) => r.record);
  const c = compareRuns([r1!], [r2!]);
  t.ok(c.metrics.length > 50);
  t.ok(
    c.metrics.every((m) => m.invalidReason === undefined),
    'hpet against hpet is a comparison',
  );
  t.equal(clocksourceMismatch(['tsc', undefined], ['tsc']), undefined, 'a run without a recorded clocksource');
  t.equal(clocksourceMismatch([], ['hpet']), undefined, 'nothing recorded on one side: nothing to tell');
  t.equal(
    clocksourceMismatch(['hpet', 'tsc'], ['tsc']),
    'guests on different clocksources (hpet, tsc → tsc)',
    'a side mixing clocksources',
  );
});

t.test('a pass -> fail that a known issue explains is not a regression', async (t) => {
  // The real results.json of suite mm on hugetlb,shmem (Debian 6.12.118), as tonight; last night
  // is the same run with memfd_test on hugetlbfs passing.
  const file = join(
    import.meta.dirname,
    '..',
    'results',
    'fixtures',
    'known-issues',
    'mm-hugetlb-shmem.6.12.118-tcg.json',
  );
  const tonight = (): RunRecord => validateRunRecord(JSON.parse(readFileSync(file, 'utf8')), file);
  const lastNight = {
    ...tonight(),
    runId: 'last-night',
    kernel: { ...tonight().kernel, release: '6.12.117+deb12-amd64' },
  };
  const memfd = lastNight.subtests.find((s) => s.id === 'memfd_test hugetlbfs');
  if (memfd) {
    memfd.status = 'pass';
    delete memfd.reason;
    delete memfd.attempts;
  }
  const unmarked = compareRuns([lastNight], [tonight()]);
  t.same(
    unmarked.regressions.map((c) => c.id),
    ['memfd_test hugetlbfs'],
    'without known issues it is a regression',
  );
  const marked = tonight();
  applyKnownIssues(marked, await readKnownIssues([SHIPPED_KNOWN_ISSUES]));
  const c = compareRuns([lastNight], [marked]);
  t.same(c.regressions, [], 'with the shipped list it is not');
  t.same(
    c.known?.map((x) => [x.id, x.known]),
    [['memfd_test hugetlbfs', 'debian-6.12-memfd-hugetlbfs-seal-exec']],
  );
  t.notOk(c.regressed);
  t.ok(validateComparison(JSON.parse(JSON.stringify(c))), 'the comparison validates');
  t.match(
    formatComparison(c),
    /known issues \(not regressions\) \(1\):\n {2}guest_ram=anon\|memfd_test hugetlbfs: pass -> fail \[debian-6\.12-memfd-hugetlbfs-seal-exec\]/,
  );
});
