/**
 * KCIDB export of real captured nights (harness/report/fixtures/): every suite's subtests and
 * metrics, histogram buckets kept as numbers, a real infrastructure error as MISS, a subtest that
 * passed on its retry as PASS with its attempts, and a splat the real detector found in a real
 * console capture as FAIL. Validated against the vendored schema.
 */
import t from 'tap';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRunRecord } from '../results/record.js';
import { applyKnownIssues, parseKnownIssues, readKnownIssues, SHIPPED_KNOWN_ISSUES } from '../results/known-issues.js';
import { detectSplats } from '../console/splats.js';
import { PROJECT_ROOT } from '../util/project.js';
import {
  kcidbErrors,
  kcidbPath,
  KCIDB_SCHEMA_PATH,
  toKcidb,
  validateKcidb,
  type KcidbData,
  type KcidbRunInput,
} from './kcidb.js';
import { kcidbInputs } from './export.js';
import { FIXTURE_RESULTS, FIXTURE_RUNS, loadNight, NIGHTS } from './fixtures/nights.js';
import { isHistogramBucket } from '../results/units.js';
import { loadNightlyRuns, readNightlyRecord } from '../results/nightly.js';
import { withOwnCulpritIssues, writeCulpritKnownIssues } from '../nightly/culprit-known-issues.js';

const nights = await Promise.all(
  [NIGHTS.second, NIGHTS.kernels, NIGHTS.suites].map((id) => loadNight(FIXTURE_RESULTS, id)),
);
const fromNights: KcidbRunInput[] = nights.flatMap((n) => kcidbInputs({ kind: 'nightly', ...n }));
const infra = await readRunRecord(join(FIXTURE_RUNS.infra, 'results.json'));
// A real WARNING from a real guest console (harness/console/fixtures), on a real run record.
const warning = detectSplats(
  await readFile(join(PROJECT_ROOT, 'harness', 'console', 'fixtures', 'lkdtm-warning.console.txt'), 'utf8'),
)[0];
const first = fromNights[0];
const withSplat: KcidbRunInput[] =
  first && warning
    ? [
        {
          ...first,
          record: { ...first.record, runId: `${first.record.runId}-splat`, splats: [warning], verdict: 'fail' },
        },
      ]
    : [];
const flaky = await readRunRecord(join(FIXTURE_RUNS.flaky, 'results.json'));
const runs: KcidbRunInput[] = [...fromNights, { record: infra }, { record: flaky }, ...withSplat];
const subtests = runs.flatMap((r) => r.record.subtests);

t.test('the vendored schema is a KCIDB v4 schema', async (t) => {
  const schema = JSON.parse(await readFile(KCIDB_SCHEMA_PATH, 'utf8')) as {
    properties: { version: { properties: { major: { const: number } } } };
    $defs: Record<string, unknown>;
  };
  t.equal(schema.properties.version.properties.major.const, 4);
  t.ok(schema.$defs['checkout'] && schema.$defs['build'] && schema.$defs['test']);
  t.ok(schema.$defs['issue'] && schema.$defs['incident'], 'v4.5 has issues and incidents');
});

t.test('test paths of real subtests of every suite', async (t) => {
  const path = (id: string): string | undefined => {
    const s = subtests.find((x) => x.id === id);
    return s ? kcidbPath(s) : undefined;
  };
  t.equal(path('uffd-unit-tests/register-ioctls/hugetlb'), 'uffd.unit.register-ioctls.hugetlb');
  t.equal(
    path('uffd-lat/minor-continue/hugetlb/blocking'),
    'uffd-lat.minor-continue.hugetlb.blocking',
    'the backing is not repeated',
  );
  t.equal(path('uffd-lat/clock-overhead'), 'uffd-lat.clock-overhead.hugetlb', 'measured in the hugetlb job');
  t.equal(path('postcopy/minor/shmem'), 'postcopy.minor.shmem');
  const stress = subtests.find((s) => s.program === 'uffd-stress' && s.backing === 'hugetlb');
  t.match(stress && kcidbPath(stress), /^uffd\.stress\.[a-z0-9_.-]+hugetlb/);
  const contract = subtests.find((s) => s.suite === 'uffd-contract');
  t.match(contract && kcidbPath(contract), /^uffd-contract\./);
  const pagemap = subtests.find((s) => s.program === 'pagemap_ioctl' && / /.test(s.name));
  t.match(
    pagemap && kcidbPath(pagemap),
    /^uffd\.pagemap_ioctl\.[A-Za-z0-9_.-]+$/,
    'spaces in real pagemap_ioctl names become underscores',
  );
});

t.test('an export of real nights validates and carries what it should', async (t) => {
  const data = toKcidb(runs);
  t.same(kcidbErrors(data), []);
  validateKcidb(data);
  t.same(data.version, { major: 4, minor: 5 });
  t.equal(data.checkouts.length, 2, 'one checkout per Debian kernel package (6.1 and 6.12)');
  t.ok(
    data.builds.every((b) => data.checkouts.some((c) => c.id === b.checkout_id)),
    'builds point at checkouts',
  );
  t.ok(
    data.tests.every((x) => data.builds.some((b) => b.id === x.build_id)),
    'tests point at builds',
  );
  t.equal(new Set(data.tests.map((x) => x.id)).size, data.tests.length, 'test ids unique');
  const statuses = data.tests.filter((x) => x.number === undefined && x.misc?.['faultline_id'] !== undefined);
  t.equal(statuses.length, subtests.length, 'every subtest of every run');
  t.ok(
    data.tests.some((x) => x.path?.startsWith('uffd.unit.') && x.status === 'SKIP'),
    '6.1 skips what it lacks',
  );
  const p50 = data.tests.find((x) => x.path === 'uffd-lat.minor-continue.hugetlb.blocking.total_p50');
  t.equal(p50?.status, 'DONE');
  t.equal(p50?.number?.unit, 'ns');
  t.ok((p50?.number?.value ?? 0) > 1000, 'a real latency in ns');
  const buckets = subtests.flatMap((s) => (s.metrics ?? []).filter((m) => isHistogramBucket(m.name, m.unit)));
  const exported = data.tests.filter((x) => /_log2_\d+$/.test(x.path ?? ''));
  t.ok(
    buckets.length > 0 && exported.length === buckets.length,
    `histogram buckets stay in the export (${buckets.length})`,
  );
  t.ok(exported.every((x) => x.number?.unit === 'samples'));
  const fault = data.tests.find((x) => x.path === 'postcopy.copy.hugetlb.fault_p50');
  t.equal(fault?.number?.unit, 'ns', 'postcopy metrics too');
});

t.test('splats and infrastructure errors', async (t) => {
  const data = toKcidb(runs);
  t.ok(warning, 'the detector finds the real WARNING');
  const splat = data.tests.find((x) => x.path === 'uffd.console.warning');
  t.equal(splat?.status, 'FAIL');
  t.match(splat?.log_excerpt ?? '', /WARNING: CPU: \d+ PID: \d+/);
  const miss = data.tests.find((x) => x.id.endsWith('-infra'));
  t.equal(miss?.status, 'MISS', 'an infrastructure error is MISS, not FAIL');
  t.match(miss?.comment ?? '', /SSH to the guest never came up/);
});

t.test('a flaky subtest: PASS with misc.flaky and every attempt', async (t) => {
  const x = toKcidb(runs).tests.find((y) => y.path === 'program.fails-once.anon');
  t.equal(x?.status, 'PASS', 'KCIDB has no flaky status: it passed in the end');
  t.equal(x?.misc?.['flaky'], true);
  t.same(x?.misc?.['attempts'], [
    { status: 'FAIL', comment: 'exit 1: first run: failing on purpose', output: 'output/fails-once.anon.txt' },
    { status: 'PASS', output: 'output/fails-once.anon.retry1.txt' },
  ]);
});

t.test('the validator catches what KCIDB would reject', async (t) => {
  const good = toKcidb(runs);
  const clone = (): KcidbData => JSON.parse(JSON.stringify(good)) as KcidbData;
  const badStatus = clone();
  (badStatus.tests[0] as { status: string }).status = 'BROKEN';
  t.match(kcidbErrors(badStatus)[0]?.instancePath ?? '', /^\/tests\/0\/status/);
  const badId = clone();
  if (badId.builds[0]) badId.builds[0].id = 'no-origin-prefix';
  t.ok(kcidbErrors(badId).some((e) => e.instancePath === '/builds/0/id'));
  const badPath = clone();
  if (badPath.tests[0]) badPath.tests[0].path = 'uffd/unit/minor';
  t.ok(kcidbErrors(badPath).length > 0);
  const extra = clone() as unknown as Record<string, unknown>;
  extra['bogus'] = [];
  t.ok(kcidbErrors(extra).length > 0, 'unknown top-level properties are rejected');
  const badTime = clone();
  if (badTime.tests[0]) badTime.tests[0].start_time = 'yesterday';
  t.ok(kcidbErrors(badTime).some((e) => e.keyword === 'format'));
  t.throws(() => validateKcidb(badStatus), /does not match the schema/);
  t.throws(() => toKcidb(runs, { origin: 'Bad-Origin' }), /origin/);
});

// The real `run --suite mm --backing hugetlb,shmem` on Debian 6.12.118 (four failures), with the
// shipped known issues, and one more issue naming memfd_test: it ran and passed on shmem.
const MM_RUN = join(
  PROJECT_ROOT,
  'harness',
  'results',
  'fixtures',
  'known-issues',
  'mm-hugetlb-shmem.6.12.118-tcg.json',
);
const MEMFD_URL =
  'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/tools/testing/selftests/memfd/memfd_test.c';
const memfdOnShmem = parseKnownIssues(
  [
    'issues:',
    '  - id: memfd-shmem',
    '    title: memfd_test on shmem',
    `    report: ${MEMFD_URL}`,
    '    culprit: harness',
    '    match: { tests: [memfd_test] }',
  ].join('\n'),
  'inline.yaml',
);

t.test('known issues: an issue each, an incident per test they matched or that passed', async (t) => {
  const record = await readRunRecord(MM_RUN);
  applyKnownIssues(record, [...(await readKnownIssues([SHIPPED_KNOWN_ISSUES])), ...memfdOnShmem]);
  const data = toKcidb([{ record }]);
  t.same(kcidbErrors(data), [], 'valid under the vendored kcidb-io v4.5 schema');
  t.same(
    data.issues?.map((i) => [i.id, i.version, i.culprit, i.report_url ?? null]),
    [
      ['faultline:debian-6.12-khugepaged-ksft-skip', 1, { code: false, tool: true, harness: false }, null],
      ['faultline:debian-6.12-memfd-hugetlbfs-seal-exec', 1, { code: true, tool: false, harness: false }, null],
      ['faultline:debian-6.12-hugetlb-read-hwpoison-sigbus', 1, { code: false, tool: true, harness: false }, null],
      ['faultline:memfd-shmem', 1, { code: false, tool: false, harness: true }, MEMFD_URL],
    ],
  );
  const memfd = data.issues?.find((i) => i.id === 'faultline:debian-6.12-memfd-hugetlbfs-seal-exec');
  t.match(memfd?.report_subject, /^faultline issue 22: memfd_test hugetlbfs: fchmod/, 'a subject, not a URL');
  t.match(memfd?.comment, /^memfd_test aborts in SEAL-EXEC on hugetlbfs/, 'comment is the title');
  const testOf = (id: string): (typeof data.tests)[number] | undefined => data.tests.find((x) => x.id === id);
  const where = (present: boolean): [string, string | undefined, string | undefined][] =>
    (data.incidents ?? [])
      .filter((i) => i.present === present)
      .map((i) => [
        i.issue_id,
        testOf(i.test_id)?.misc?.['faultline_id'] as string | undefined,
        testOf(i.test_id)?.status,
      ]);
  t.same(
    where(true),
    [
      ['faultline:debian-6.12-khugepaged-ksft-skip', 'khugepaged/mm.khugepaged', 'ERROR'],
      ['faultline:debian-6.12-khugepaged-ksft-skip', 'khugepaged/mm.khugepaged_-s_2', 'ERROR'],
      ['faultline:debian-6.12-memfd-hugetlbfs-seal-exec', 'memfd_test hugetlbfs', 'FAIL'],
      ['faultline:debian-6.12-hugetlb-read-hwpoison-sigbus', 'hugetlb-read-hwpoison', 'FAIL'],
    ],
    'present on the tests it matched, whose status stays what it was',
  );
  t.same(where(false), [['faultline:memfd-shmem', 'memfd_test', 'PASS']], 'absent where its test passed');
  t.equal(new Set(data.incidents?.map((i) => i.id)).size, data.incidents?.length, 'incident ids unique');
  t.ok(data.incidents?.every((i) => i.issue_version === 1 && i.origin === 'faultline'));
  t.equal(toKcidb(runs).issues, undefined, 'a run without known issues exports none');
});

t.test("a night's own bisected culprit: an issue (culprit.code) with an incident on the test it broke", async (t) => {
  // Night 2 of a real run of nightly-culprit.e2e: zeropage/anon bisected to its culprit.
  const fixture = join(PROJECT_ROOT, 'harness', 'nightly', 'fixtures', 'culprit', 'night-2');
  const dir = await mkdtemp(join(tmpdir(), 'faultline-kcidb-culprit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await copyFile(join(fixture, 'nightly.json'), join(dir, 'nightly.json'));
  const record = await readNightlyRecord(dir);
  await writeCulpritKnownIssues(dir, record);
  const runs = await withOwnCulpritIssues(dir, await loadNightlyRuns(fixture, record));
  const data = toKcidb(kcidbInputs({ kind: 'nightly', dir, record, runs }));
  validateKcidb(data);
  const hash = record.bisects?.[0]?.culprit?.hash.slice(0, 12) ?? 'none';
  t.match(data.issues, [
    {
      id: `faultline:culprit-${hash}-default-tests`,
      culprit: { code: true, tool: false, harness: false },
      report_subject: '[faultline] userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly',
    },
  ]);
  const zeropage = data.tests.find((x) => x.misc?.['faultline_id'] === 'uffd-unit-tests/zeropage/anon');
  t.equal(zeropage?.status, 'ERROR', 'the test keeps its status');
  t.match(data.incidents, [
    { test_id: zeropage?.id, present: true, issue_id: `faultline:culprit-${hash}-default-tests` },
  ]);
  t.notOk(
    (await loadNightlyRuns(fixture, record)).some((r) => r.record.subtests.some((s) => s.known !== undefined)),
    'the records on disk are left as the jobs wrote them',
  );
});

t.test("a night's metric culprit: an issue, present on each run's metric beyond its threshold", async (t) => {
  // Night 2 of a real metric nightly (harness/nightly/fixtures/metric): UFFDIO_COPY on shmem
  // slowed by a commit that sleeps, bisected by that night; night 1 ran before it.
  const fixtures = join(PROJECT_ROOT, 'harness', 'nightly', 'fixtures', 'metric');
  const load = async (id: string) => {
    const dir = join(fixtures, id);
    const record = await readNightlyRecord(dir);
    return { dir, record, runs: await loadNightlyRuns(dir, record) };
  };
  const [n1, n2] = await Promise.all([load('night-1'), load('night-2')]);
  const night = { nightlyId: n2.record.nightlyId, bisects: n2.record.bisects ?? [] };
  const data = toKcidb(kcidbInputs({ kind: 'nightly', ...n2 }), { night });
  validateKcidb(data);
  const b = n2.record.bisects?.[0];
  const hash = b?.culprit?.hash.slice(0, 12) ?? 'none';
  const id = `faultline:culprit-${hash}-default-metrics`;
  t.match(data.issues, [
    {
      id,
      culprit: { code: true, tool: false, harness: false },
      report_subject: '[faultline] userfaultfd: let reclaim catch up before UFFDIO_COPY fills a page',
      comment:
        /^slowed by 2eb40dc4fad6 \("userfaultfd: let reclaim.*\), bisected by nightly night-2: uffd-lat\/missing-copy\/shmem\/poll\/resolve_p50 above 567000ns, /,
    },
  ]);
  const tested = new Map(data.tests.map((x) => [x.id, x]));
  const onTests = (data.incidents ?? []).map((i) => tested.get(i.test_id));
  t.ok(onTests.length >= n2.runs.length, `incidents on every run (${onTests.length})`);
  t.ok(
    onTests.every((x) => x?.status === 'DONE' && x.misc?.['metric'] !== undefined),
    'each on a metric test, which keeps its number',
  );
  t.ok(
    onTests.some(
      (x) => x?.misc?.['faultline_id'] === 'uffd-lat/missing-copy/shmem/poll' && x.misc['metric'] === 'resolve_p50',
    ),
    'the bisected metric among them',
  );
  t.ok(
    (data.incidents ?? []).every((i) => i.issue_id === id && i.present),
    'all present, all of that issue',
  );
  // Night 1's runs, before the culprit: under every threshold, so no incident.
  const before = toKcidb(kcidbInputs({ kind: 'nightly', ...n1 }), { night });
  validateKcidb(before);
  t.same(before.incidents, [], "night 1's metrics are not beyond the thresholds");
  t.equal(toKcidb(kcidbInputs({ kind: 'nightly', ...n2 })).issues, undefined, 'without the night: no issue');
});
