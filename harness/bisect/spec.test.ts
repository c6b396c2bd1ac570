import t from 'tap';
import { evaluateRecord, formatValue, parseMetricSpec, parseQuantity, parseSubtestSpec } from './spec.js';
import { DEFAULT_POLICY, confidenceOf, decide, estimateRates, missProbability, passThreshold } from './policy.js';
import type { RunObservation } from './types.js';
import type { SubtestResult } from '../results/types.js';

t.test('test specs name RunRecord subtest ids', async (t) => {
  t.same(parseSubtestSpec('uffd-unit-tests:minor/hugetlb'), {
    kind: 'subtest', text: 'uffd-unit-tests:minor/hugetlb', program: 'uffd-unit-tests', subtestId: 'uffd-unit-tests/minor/hugetlb', testName: 'minor', backing: 'hugetlb',
  });
  t.equal(parseSubtestSpec('pagemap_ioctl:basic').backing, undefined);
  t.throws(() => parseSubtestSpec('uffd-unit-tests'), /--test 'uffd-unit-tests' is not program:test\[\/backing\]: e\.g\. uffd-unit-tests:minor\/hugetlb/);
  t.throws(() => parseSubtestSpec('a:b//c'), /empty path element/);
});

t.test('metric specs and units', async (t) => {
  const m = parseMetricSpec('uffd-lat:continue/hugetlb/p50', { above: '20us' });
  t.match(m, { kind: 'metric', subtestId: 'uffd-lat/continue/hugetlb', metric: 'p50', direction: 'above', backing: 'hugetlb', threshold: { value: 20000, unit: 'ns' } });
  t.equal(parseQuantity('1.5ms', '--above').value, 1.5e6);
  t.equal(parseQuantity('800 ns', '--above').value, 800);
  t.same(parseQuantity('42', '--below'), { value: 42, unit: '', text: '42' });
  t.throws(() => parseQuantity('20 parsecs', '--above'), /--above '20 parsecs': unknown unit 'parsecs': use ns, us, ms or s/);
  t.throws(() => parseQuantity('fast', '--above'), /is not a number with a unit/);
  t.throws(() => parseMetricSpec('uffd-lat:continue/hugetlb/p50', {}), /exactly one of --above or --below/);
  t.throws(() => parseMetricSpec('uffd-lat:p50', { above: '1us' }), /needs test and metric name/);
  t.equal(formatValue(21500, 'ns'), '21.5us');
});

const sub = (o: Partial<SubtestResult>): SubtestResult => ({ id: 'uffd-unit-tests/minor/hugetlb', suite: 'uffd', program: 'uffd-unit-tests', name: 'minor', status: 'pass', ...o });

t.test('judging a run record', async (t) => {
  const s = parseSubtestSpec('uffd-unit-tests:minor/hugetlb');
  t.equal(evaluateRecord(s, { subtests: [sub({})] }).kind, 'pass');
  t.equal(evaluateRecord(s, { subtests: [sub({ status: 'fail' })] }).kind, 'fail');
  t.equal(evaluateRecord(s, { subtests: [sub({ status: 'error', reason: 'crashed' })] }).kind, 'fail');
  t.match(evaluateRecord(s, { subtests: [sub({ status: 'skip', reason: 'no hugepages' })] }), { kind: 'untestable', detail: 'skipped: no hugepages' });
  t.equal(evaluateRecord(s, { subtests: [] }).kind, 'untestable', 'absent at an old revision');
  t.match(evaluateRecord(s, { subtests: [], infraError: 'guest stopped answering' }), { kind: 'infra' });
  const m = parseMetricSpec('uffd-unit-tests:minor/hugetlb/p50', { above: '20us' });
  const withLat = (value: number, unit: string) => ({ subtests: [sub({ metrics: [{ name: 'p50', value, unit }] })] });
  t.match(evaluateRecord(m, withLat(19.9, 'us')), { kind: 'pass', value: 19900, unit: 'ns' });
  t.match(evaluateRecord(m, withLat(25000, 'ns')), { kind: 'fail', value: 25000 });
  t.match(evaluateRecord(m, withLat(3, 'ops/s')), { kind: 'untestable' });
});

const runs = (pattern: string): RunObservation[] => [...pattern].map((c) => ({ result: c === 'F' ? 'fail' : 'pass', durationMs: 1 }));

t.test('the flaky rule', async (t) => {
  t.equal(passThreshold(DEFAULT_POLICY, { pass: 0, fail: 3 }), 1, 'deterministic failure: one run decides');
  // q = 1/3: (2/3)^P <= 0.05 -> P = 8 (capped at max-runs 8 with K = 1).
  t.equal(passThreshold(DEFAULT_POLICY, { pass: 2, fail: 1 }), 8);
  t.equal(passThreshold(DEFAULT_POLICY, { pass: 1, fail: 2 }), 3, 'q = 2/3: (1/3)^3 < 0.05');
  t.equal(passThreshold({ ...DEFAULT_POLICY, mode: 'fixed', runs: 5, failThreshold: 2 }, { pass: 2, fail: 1 }), 4);
  t.ok(Math.abs(missProbability(0.5, 3, 2) - 5 / 16) < 1e-12, 'P(3 passes before 2 fails | q=.5) = P(<= 1 fail in 4 runs) = 5/16');
  t.same(decide(DEFAULT_POLICY, 3, { pass: 2, fail: 0 }), { more: 1 });
  t.same(decide(DEFAULT_POLICY, 3, { pass: 2, fail: 1 }), { verdict: 'bad' });
  t.same(decide(DEFAULT_POLICY, 3, { pass: 3, fail: 0 }), { verdict: 'good' });
  t.same(decide({ ...DEFAULT_POLICY, failThreshold: 2 }, 3, { pass: 1, fail: 1 }), { more: 1 }, 'disagreeing runs keep running');
  t.same(decide(DEFAULT_POLICY, 1, { pass: 1, fail: 0 }, 3), { more: 2 }, 'endpoints run E times');
  t.same(decide({ ...DEFAULT_POLICY, mode: 'fixed', runs: 4, failThreshold: 2 }, 3, { pass: 3, fail: 1 }), { verdict: 'good' });
});

t.test('confidence', async (t) => {
  const rates = estimateRates([{ verdict: 'good', runs: runs('PPPPPPP') }, { verdict: 'bad', runs: runs('FFFFFFF') }]);
  t.equal(rates.goodFailRate, 0.5 / 8);
  t.ok(confidenceOf('bad', { pass: 0, fail: 1 }, rates) > 0.9);
  t.ok(confidenceOf('bad', { pass: 0, fail: 2 }, rates) > confidenceOf('bad', { pass: 0, fail: 1 }, rates));
  t.equal(confidenceOf('skip', { pass: 0, fail: 0 }, rates), 0);
  const flaky = estimateRates([{ verdict: 'good', runs: runs('PPPP') }, { verdict: 'bad', runs: runs('FPPFPP') }]);
  t.ok(confidenceOf('good', { pass: 1, fail: 0 }, flaky) < 0.7, 'one pass says little when bad revisions pass often');
});
