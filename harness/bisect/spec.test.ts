import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  METRIC_EXAMPLE,
  evaluateRecord,
  formatValue,
  parseMetricSpec,
  parseProgramSpec,
  parseQuantity,
  parseSplatSpec,
  parseSubtestSpec,
  specKindOf,
} from './spec.js';
import { judgeRun } from './judge.js';
import { DEFAULT_POLICY, confidenceOf, decide, estimateRates, missProbability, passThreshold } from './policy.js';
import type { RunObservation } from './types.js';
import type { RunRecord, Splat, SubtestResult } from '../results/types.js';
import { parseUffdLat } from '../suites/parsers/uffd-lat.js';
import { programSuite } from '../suites/program.js';
import { PROJECT_ROOT } from '../util/project.js';
import { detectSplats } from '../console/splats.js';
import { SHIPPED_KNOWN_ISSUES, applyKnownIssues, readKnownIssues } from '../results/known-issues.js';
import { newRunRecord } from '../results/record.js';
import { unitTestsFrom } from '../testkit/real-runs.js';

t.test('test specs name RunRecord subtest ids', async (t) => {
  t.same(parseSubtestSpec('uffd-unit-tests:minor/hugetlb'), {
    kind: 'subtest',
    text: 'uffd-unit-tests:minor/hugetlb',
    program: 'uffd-unit-tests',
    subtestId: 'uffd-unit-tests/minor/hugetlb',
    testName: 'minor',
    backing: 'hugetlb',
  });
  t.equal(parseSubtestSpec('pagemap_ioctl:basic').backing, undefined);
  t.throws(
    () => parseSubtestSpec('uffd-unit-tests'),
    /--test 'uffd-unit-tests' is not program:test\[\/backing\]: e\.g\. uffd-unit-tests:minor\/hugetlb/,
  );
  t.throws(() => parseSubtestSpec('a:b//c'), /empty path element/);
});

t.test('the backing comes from wherever it stands in the id; the longest name wins', async (t) => {
  t.equal(parseSubtestSpec('uffd-unit-tests:zeropage/hugetlb-private').backing, 'hugetlb-private');
  t.equal(parseSubtestSpec('uffd-lat:minor-continue/shmem-thp/poll').backing, 'shmem-thp');
  t.equal(parseSubtestSpec('x:hugetlb/hugetlb-private/y').backing, 'hugetlb-private', 'longest of two');
  t.equal(parseSubtestSpec('x:hugetlb-private/hugetlb/y').backing, 'hugetlb-private', 'in either order');
  t.equal(parseSubtestSpec('uffd-lat:clock-overhead').backing, undefined);
  // The latency bisect that stopped with "not testable here" because it ran on anon.
  const m = parseMetricSpec('uffd-lat:minor-continue/shmem/blocking/total_p50', { above: '1000us' });
  t.match(m, {
    subtestId: 'uffd-lat/minor-continue/shmem/blocking',
    testName: 'minor-continue',
    metric: 'total_p50',
    backing: 'shmem',
  });
  t.equal(
    parseMetricSpec('uffd-lat:wp-async/hugetlb/total_p99', { above: '1ms' }).backing,
    'hugetlb',
    'backing last in the test path',
  );
});

t.test('the help example names a real uffd-lat subtest and metric', async (t) => {
  const m = parseMetricSpec(METRIC_EXAMPLE, { above: '20us' });
  const output = await readFile(
    join(PROJECT_ROOT, 'harness', 'suites', 'fixtures', 'uffd-lat.host-6.18.full.txt'),
    'utf8',
  );
  const parsed = parseUffdLat({ output, exitCode: 0, timedOut: false, durationMs: 1 }, { suite: 'uffd-lat' });
  const sub = parsed.subtests.find((s) => s.id === m.subtestId);
  t.ok(sub, `${m.subtestId} is a subtest of a real uffd-lat run`);
  t.equal(sub?.backing, m.backing);
  const ev = evaluateRecord(m, { subtests: parsed.subtests, splats: [] });
  t.match(ev, { kind: 'fail', unit: 'ns' }, 'the captured host run (p50 > 20 us) judged on its real metric');
  t.ok(ev.kind === 'fail' && (ev.value ?? 0) > 20_000);
});

t.test('metric specs and units', async (t) => {
  const m = parseMetricSpec('uffd-lat:continue/hugetlb/p50', { above: '20us' });
  t.match(m, {
    kind: 'metric',
    subtestId: 'uffd-lat/continue/hugetlb',
    metric: 'p50',
    direction: 'above',
    backing: 'hugetlb',
    threshold: { value: 20000, unit: 'ns' },
  });
  t.equal(parseQuantity('1.5ms', '--above').value, 1.5e6);
  t.equal(parseQuantity('800 ns', '--above').value, 800);
  t.same(parseQuantity('42', '--below'), { value: 42, unit: '', text: '42' });
  t.throws(
    () => parseQuantity('20 parsecs', '--above'),
    /--above '20 parsecs': unknown unit 'parsecs': use ns, us, ms or s/,
  );
  t.throws(() => parseQuantity('fast', '--above'), /is not a number with a unit/);
  t.throws(() => parseMetricSpec('uffd-lat:continue/hugetlb/p50', {}), /exactly one of --above or --below/);
  t.throws(() => parseMetricSpec('uffd-lat:p50', { above: '1us' }), /needs test and metric name/);
  t.equal(formatValue(21500, 'ns'), '21.5us');
});

const sub = (o: Partial<SubtestResult>): SubtestResult => ({
  id: 'uffd-unit-tests/minor/hugetlb',
  suite: 'uffd',
  program: 'uffd-unit-tests',
  name: 'minor',
  status: 'pass',
  ...o,
});

t.test('judging a run record', async (t) => {
  const s = parseSubtestSpec('uffd-unit-tests:minor/hugetlb');
  const rec = (subtests: SubtestResult[], o: Partial<Pick<RunRecord, 'infraError' | 'splats'>> = {}) => ({
    subtests,
    splats: [],
    ...o,
  });
  t.equal(evaluateRecord(s, rec([sub({})])).kind, 'pass');
  t.equal(evaluateRecord(s, rec([sub({ status: 'fail' })])).kind, 'fail');
  t.equal(evaluateRecord(s, rec([sub({ status: 'error', reason: 'crashed' })])).kind, 'fail');
  t.match(
    evaluateRecord(s, rec([sub({ status: 'flaky', reason: 'passed on retry 1 of 2' })])),
    { kind: 'fail', detail: /^flaky/ },
    'flaky: its first attempt failed',
  );
  t.match(evaluateRecord(s, rec([sub({ status: 'skip', reason: 'no hugepages' })])), {
    kind: 'untestable',
    detail: 'skipped: no hugepages',
  });
  t.equal(evaluateRecord(s, rec([])).kind, 'untestable', 'absent at an old revision');
  t.match(evaluateRecord(s, rec([], { infraError: 'guest stopped answering' })), { kind: 'infra' });
  const m = parseMetricSpec('uffd-unit-tests:minor/hugetlb/p50', { above: '20us' });
  const withLat = (value: number, unit: string) => rec([sub({ metrics: [{ name: 'p50', value, unit }] })]);
  t.match(evaluateRecord(m, withLat(19.9, 'us')), { kind: 'pass', value: 19900, unit: 'ns' });
  t.match(evaluateRecord(m, withLat(25000, 'ns')), { kind: 'fail', value: 25000 });
  t.match(evaluateRecord(m, withLat(3, 'ops/s')), { kind: 'untestable' });
});

async function consoleSplats(name: string): Promise<Splat[]> {
  return detectSplats(
    await readFile(join(PROJECT_ROOT, 'harness', 'console', 'fixtures', `${name}.console.txt`), 'utf8'),
  );
}

t.test('a guest that died with a splat fails the test instead of being infra', async (t) => {
  const s = parseSubtestSpec('uffd-unit-tests:minor/hugetlb');
  const oops = await consoleSplats('oops-panic');
  // Today's record: the subtest never reported, infraError set, the splat on the console.
  t.match(
    evaluateRecord(s, { subtests: [], infraError: 'guest stopped answering during uffd-unit-tests', splats: oops }),
    {
      kind: 'fail',
      detail: /^kernel oops before uffd-unit-tests\/minor\/hugetlb finished: BUG: kernel NULL pointer dereference/,
    },
  );
  // The newer record: no infraError, the running subtest failed with the splat's title.
  t.match(evaluateRecord(s, { subtests: [sub({ status: 'fail', reason: oops[0]?.title ?? '' })], splats: oops }), {
    kind: 'fail',
    detail: /NULL pointer/,
  });
  // ... or another subtest was running: a fatal splat is still the revision's failure, not infra.
  t.equal(
    evaluateRecord(s, { subtests: [sub({ id: 'uffd-unit-tests/minor/shmem', status: 'fail' })], splats: oops }).kind,
    'fail',
  );
  // A warning in a finished run that lacks the subtest: the test does not exist here.
  t.equal(evaluateRecord(s, { subtests: [], splats: await consoleSplats('lkdtm-warning') }).kind, 'untestable');
  const m = parseMetricSpec('uffd-lat:minor-continue/hugetlb/blocking/total_p50', { above: '20us' });
  t.equal(
    evaluateRecord(m, {
      subtests: [],
      infraError: 'guest stopped answering',
      splats: await consoleSplats('lkdtm-panic'),
    }).kind,
    'fail',
    'metric specs too',
  );
});

t.test('--splat: bad when a splat title matches, whatever else happened', async (t) => {
  t.equal(parseSplatSpec('any').pattern, undefined);
  t.equal(parseSplatSpec('lkdtm_WARNING').text, '--splat lkdtm_WARNING');
  t.throws(() => parseSplatSpec('lkdtm_(WARNING'), /--splat 'lkdtm_\(WARNING' is not a valid regular expression/);
  t.throws(() => parseSplatSpec(' '), /--splat needs a title pattern or 'any'/);
  const warn = await consoleSplats('lkdtm-warning');
  const ran = [sub({})];
  const spec = parseSplatSpec('WARNING: .* at drivers/misc/lkdtm/bugs\\.c:\\d+ lkdtm_WARNING');
  t.match(evaluateRecord(spec, { subtests: ran, splats: warn }), {
    kind: 'fail',
    detail:
      /^warning: WARNING: CPU: 1 PID: 95 at drivers\/misc\/lkdtm\/bugs\.c:112 lkdtm_WARNING\+0xc\/0xf \(during fake-test\)$/,
  });
  t.match(evaluateRecord(spec, { subtests: ran, splats: await consoleSplats('kasan') }), {
    kind: 'pass',
    detail: /^no matching splat \(1 other: BUG: KASAN/,
  });
  t.match(evaluateRecord(spec, { subtests: ran, splats: [] }), { kind: 'pass', detail: 'no splat' });
  t.equal(
    evaluateRecord(spec, { subtests: [sub({ status: 'fail' })], splats: [] }).kind,
    'pass',
    'a failing test is not a splat',
  );
  t.equal(evaluateRecord(spec, { subtests: [], splats: [] }).kind, 'untestable', 'nothing ran');
  const panic = await consoleSplats('lkdtm-panic');
  t.match(
    evaluateRecord(parseSplatSpec('any'), { subtests: [], infraError: 'guest stopped answering', splats: panic }),
    { kind: 'fail', detail: /^panic: Kernel panic - not syncing: dumptest/ },
    'a splat that killed the guest is the answer',
  );
  t.match(
    evaluateRecord(parseSplatSpec('^WARNING: .* splat_init'), {
      subtests: [],
      splats: await consoleSplats('panic-on-warn'),
    }),
    { kind: 'fail', detail: /^panic: WARNING/ },
    'titles, not kinds: panic_on_warn keeps the WARNING title',
  );
  t.match(evaluateRecord(spec, { subtests: ran, infraError: 'guest stopped answering', splats: panic }), {
    kind: 'infra',
    detail: /\(Kernel panic - not syncing: dumptest\)$/,
  });
  t.match(
    evaluateRecord(spec, { subtests: ran, splats: panic }),
    { kind: 'untestable', detail: /another splat first: Kernel panic/ },
    'another crash hides the one asked for',
  );
});

t.test('a kernel that dies at boot: skipped, unless its splat is the one asked for', async (t) => {
  const panic = await consoleSplats('lkdtm-panic');
  const boot = { subtests: [], infraError: 'guest did not answer SSH within 180 s', guest: {}, splats: panic };
  t.match(judgeRun(parseSubtestSpec('uffd-unit-tests:zeropage/anon'), boot), {
    kind: 'boot-failed',
    detail: /^guest did not answer SSH within 180 s \(Kernel panic/,
  });
  t.match(
    judgeRun(parseSubtestSpec('uffd-unit-tests:zeropage/anon'), { ...boot, infraError: undefined }),
    { kind: 'boot-failed', detail: /^kernel died during boot: Kernel panic/ },
    'without infraError too',
  );
  t.match(judgeRun(parseSplatSpec('dumptest'), boot), { kind: 'fail' });
  t.match(judgeRun(parseSplatSpec('KASAN'), boot), { kind: 'boot-failed' });
  t.match(
    judgeRun(parseSubtestSpec('uffd-unit-tests:zeropage/anon'), { ...boot, guest: { bootMs: 9000 } }),
    { kind: 'fail' },
    'after boot: the test failed',
  );
});

t.test('--program: the programs are the test; a failure or a crash is bad, a skip cannot say', async (t) => {
  const spec = parseProgramSpec(['/src/zeropage-wake.c', 'zeropage-ktap.c']);
  t.same(spec, {
    kind: 'program',
    text: '--program zeropage-wake.c --program zeropage-ktap.c',
    programs: ['zeropage-wake', 'zeropage-ktap'],
  });
  t.throws(() => parseProgramSpec([]), /--program needs a C file/);
  // The program suite's own parser on the programs' outputs (harness/e2e/repro/*.c).
  const suite = programSuite(spec.programs, 60);
  const ctx = { backings: ['anon' as const], smp: 2, memMiB: 1024, hugepages2m: 0, quick: true, programs: [] };
  const [wake, ktap] = suite.plan(ctx);
  const parse = (cmd: typeof wake, output: string, exitCode: number | null): SubtestResult[] =>
    cmd ? suite.parse(cmd, { output, exitCode, timedOut: false, durationMs: 5 }, ctx).subtests : [];
  const passing = [
    ...parse(wake, 'UFFDIO_ZEROPAGE mode 0: ok\n', 0),
    ...parse(ktap, 'TAP version 13\n1..2\nok 1 zeropage-wake\nok 2 zeropage-dontwake\n', 0),
  ];
  t.same(
    passing.map((x) => x.id),
    ['zeropage-wake/anon', 'zeropage-ktap/zeropage-wake/anon', 'zeropage-ktap/zeropage-dontwake/anon'],
  );
  t.match(evaluateRecord(spec, { subtests: passing, splats: [] }), { kind: 'pass', detail: '3 passed' });
  const failing = parse(wake, 'UFFDIO_ZEROPAGE mode 0: Invalid argument\n', 1);
  t.match(evaluateRecord(spec, { subtests: [...passing.slice(1), ...failing], splats: [] }), {
    kind: 'fail',
    detail: 'zeropage-wake/anon: fail: exit 1: UFFDIO_ZEROPAGE mode 0: Invalid argument',
  });
  const ktapFail = parse(
    ktap,
    'TAP version 13\n1..2\n# zeropage-wake: Invalid argument\nnot ok 1 zeropage-wake\nok 2 zeropage-dontwake\n',
    1,
  );
  t.match(evaluateRecord(spec, { subtests: ktapFail, splats: [] }), {
    kind: 'fail',
    detail: /^zeropage-ktap\/zeropage-wake\/anon: fail/,
  });
  const killed = parse(wake, '', null);
  t.match(evaluateRecord(spec, { subtests: killed, splats: [] }), { kind: 'fail', detail: /killed by a signal/ });
  t.match(evaluateRecord(spec, { subtests: parse(wake, 'no userfaultfd\n', 4), splats: [] }), {
    kind: 'untestable',
    detail: 'skipped: no userfaultfd',
  });
  const panic = await consoleSplats('lkdtm-panic');
  t.match(
    evaluateRecord(spec, { subtests: [], infraError: 'guest died', splats: panic }),
    { kind: 'fail', detail: /^kernel panic before the program finished/ },
    'the kernel died under it',
  );
  t.match(evaluateRecord(spec, { subtests: [], infraError: 'ssh lost', splats: [] }), { kind: 'infra' });
  t.match(evaluateRecord(spec, { subtests: [], splats: [] }), { kind: 'untestable', detail: /no result of/ });
});

const runs = (pattern: string): RunObservation[] =>
  [...pattern].map((c) => ({ result: c === 'F' ? 'fail' : 'pass', durationMs: 1 }));

t.test('the flaky rule', async (t) => {
  t.equal(passThreshold(DEFAULT_POLICY, { pass: 0, fail: 3 }), 1, 'deterministic failure: one run decides');
  // q = 1/3: (2/3)^P <= 0.05 -> P = 8 (capped at max-runs 8 with K = 1).
  t.equal(passThreshold(DEFAULT_POLICY, { pass: 2, fail: 1 }), 8);
  t.equal(passThreshold(DEFAULT_POLICY, { pass: 1, fail: 2 }), 3, 'q = 2/3: (1/3)^3 < 0.05');
  t.equal(passThreshold({ ...DEFAULT_POLICY, mode: 'fixed', runs: 5, failThreshold: 2 }, { pass: 2, fail: 1 }), 4);
  t.ok(
    Math.abs(missProbability(0.5, 3, 2) - 5 / 16) < 1e-12,
    'P(3 passes before 2 fails | q=.5) = P(<= 1 fail in 4 runs) = 5/16',
  );
  t.same(decide(DEFAULT_POLICY, 3, { pass: 2, fail: 0 }), { more: 1 });
  t.same(decide(DEFAULT_POLICY, 3, { pass: 2, fail: 1 }), { verdict: 'bad' });
  t.same(decide(DEFAULT_POLICY, 3, { pass: 3, fail: 0 }), { verdict: 'good' });
  t.same(
    decide({ ...DEFAULT_POLICY, failThreshold: 2 }, 3, { pass: 1, fail: 1 }),
    { more: 1 },
    'disagreeing runs keep running',
  );
  t.same(decide(DEFAULT_POLICY, 1, { pass: 1, fail: 0 }, 3), { more: 2 }, 'endpoints run E times');
  t.same(decide({ ...DEFAULT_POLICY, mode: 'fixed', runs: 4, failThreshold: 2 }, 3, { pass: 3, fail: 1 }), {
    verdict: 'good',
  });
});

t.test('confidence', async (t) => {
  const rates = estimateRates([
    { verdict: 'good', runs: runs('PPPPPPP') },
    { verdict: 'bad', runs: runs('FFFFFFF') },
  ]);
  t.equal(rates.goodFailRate, 0.5 / 8);
  t.ok(confidenceOf('bad', { pass: 0, fail: 1 }, rates) > 0.9);
  t.ok(confidenceOf('bad', { pass: 0, fail: 2 }, rates) > confidenceOf('bad', { pass: 0, fail: 1 }, rates));
  t.equal(confidenceOf('skip', { pass: 0, fail: 0 }, rates), 0);
  const flaky = estimateRates([
    { verdict: 'good', runs: runs('PPPP') },
    { verdict: 'bad', runs: runs('FPPFPP') },
  ]);
  t.ok(confidenceOf('good', { pass: 1, fail: 0 }, flaky) < 0.7, 'one pass says little when bad revisions pass often');
});

t.test("a record's spec text tells its kind back (the culprit mail's subject and flags)", async (t) => {
  const specs = [
    parseSubtestSpec('uffd-unit-tests:zeropage/anon'),
    parseMetricSpec(METRIC_EXAMPLE, { above: '20us' }),
    parseMetricSpec(METRIC_EXAMPLE, { below: '5us' }),
    parseSplatSpec('^WARNING: .* userfaultfd_(ioctl|zeropage)\\+'),
    parseSplatSpec('any'),
    parseProgramSpec(['/tmp/repro.c', '/tmp/other.c']),
  ];
  for (const s of specs) t.equal(specKindOf(s.text), s.kind, s.text);
  t.equal(specKindOf('test-cmd: ./check.sh'), 'command');
});

t.test('--known-issues: a failure a known issue explains did not test the bisected one', async (t) => {
  // uffd-unit-tests' real death in events on anon (Debian 6.12, TCG): UFFDIO_COPY error -2, the
  // upstream flake the shipped list names.
  const parsed = { subtests: unitTestsFrom('uffd-unit-tests.died-at-events.6.12-tcg.txt', { backings: ['anon'] }) };
  const spec = parseSubtestSpec('uffd-unit-tests:events/anon');
  const plain = { subtests: structuredClone(parsed.subtests), splats: [] };
  t.match(evaluateRecord(spec, plain), { kind: 'fail', detail: /UFFDIO_COPY error: -2/ }, 'without the list: bad');
  const record = newRunRecord({
    runId: 'events',
    startedAt: '2026-12-07T00:00:00Z',
    kernel: { source: 'debian-package', path: '/vmlinuz', release: '6.12.118+deb12-amd64' },
    selftests: { tree: '/src', source: 'tree' },
    suites: ['uffd'],
    backings: ['anon'],
    subtests: structuredClone(parsed.subtests),
  });
  applyKnownIssues(record, await readKnownIssues([SHIPPED_KNOWN_ISSUES]));
  t.match(
    evaluateRecord(spec, record),
    { kind: 'known', detail: /^known issue uffd-unit-tests-events-anon-copy-enoent: error: .*UFFDIO_COPY error: -2/ },
    'with it: the run did not answer',
  );
  // A failure the list does not describe is still the bisected failure.
  const other = structuredClone(record);
  const events = other.subtests.find((s) => s.id === 'uffd-unit-tests/events/anon');
  if (events) {
    events.reason = 'crashed: ERROR: unexpected msg event 0 (errno=0, @uffd-unit-tests.c:1)';
    delete events.known;
  }
  applyKnownIssues(other, await readKnownIssues([SHIPPED_KNOWN_ISSUES]));
  t.equal(evaluateRecord(spec, other).kind, 'fail', 'another error: bad');
});
