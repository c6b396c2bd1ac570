import t from 'tap';
import { readFile } from 'node:fs/promises';
import { kcidbErrors, kcidbPath, KCIDB_SCHEMA_PATH, toKcidb, validateKcidb, type KcidbData } from './kcidb.js';
import { makeRecord, SAMPLE_SPLAT } from '../nightly/fixtures/records.js';

const runs = [
  { record: makeRecord({ runId: '20250101T020000Z-a1b2c3', backing: 'hugetlb', statusOf: (n) => (n === 'minor' ? 'fail' : n === 'sigbus' ? 'skip' : 'pass'), splats: [SAMPLE_SPLAT] }), kernelName: 'debian-6.12', config: 'debian', job: 'debian-6.12+debian+anon+hugetlb+uffd+r1' },
  { record: makeRecord({ runId: '20250101T020000Z-d4e5f6', backing: 'shmem', guestRam: 'hugetlb', infraError: 'guest stopped answering during uffd-unit-tests (QEMU exited 137)' }), kernelName: 'debian-6.12', config: 'debian' },
  { record: makeRecord({ runId: 'r3', backing: 'anon', packageVersion: '6.13.1-1' }), kernelName: 'mm', config: 'kasan', tree: 'https://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm.git', ref: 'mm-unstable' },
];

t.test('the vendored schema is a KCIDB v4 schema', async (t) => {
  const schema = JSON.parse(await readFile(KCIDB_SCHEMA_PATH, 'utf8')) as { properties: { version: { properties: { major: { const: number } } } }; $defs: Record<string, unknown> };
  t.equal(schema.properties.version.properties.major.const, 4);
  t.ok(schema.$defs['checkout'] && schema.$defs['build'] && schema.$defs['test']);
});

t.test('test paths', async (t) => {
  t.equal(kcidbPath({ suite: 'uffd', program: 'uffd-unit-tests', name: 'minor', backing: 'hugetlb' }), 'uffd.unit.minor.hugetlb');
  t.equal(kcidbPath({ suite: 'uffd', program: 'uffd-stress', name: 'stress', backing: 'shmem-private' }), 'uffd.stress.stress.shmem-private');
  t.equal(kcidbPath({ suite: 'uffd', program: 'pagemap_ioctl', name: 'Test 1 ok' }), 'uffd.pagemap_ioctl.Test_1_ok');
  t.equal(kcidbPath({ suite: 'uffd', program: 'uffd-lat', name: 'missing', backing: 'anon' }), 'uffd.lat.missing.anon');
});

t.test('an export validates against the schema and carries what it should', async (t) => {
  const data = toKcidb(runs);
  t.same(kcidbErrors(data), []);
  validateKcidb(data);
  t.same(data.version, { major: 4, minor: 5 });
  t.equal(data.checkouts.length, 2, 'one checkout per kernel source');
  t.equal(data.builds.length, 2);
  t.ok(data.builds.every((b) => data.checkouts.some((c) => c.id === b.checkout_id)), 'builds point at checkouts');
  t.ok(data.tests.every((x) => data.builds.some((b) => b.id === x.build_id)), 'tests point at builds');
  t.equal(new Set(data.tests.map((x) => x.id)).size, data.tests.length, 'test ids unique');
  const minor = data.tests.find((x) => x.path === 'uffd.unit.minor.hugetlb');
  t.equal(minor?.status, 'FAIL');
  t.equal(data.tests.find((x) => x.path === 'uffd.unit.sigbus.hugetlb')?.status, 'SKIP');
  const metric = data.tests.find((x) => x.path === 'uffd.lat.missing.hugetlb.fault_p50');
  t.equal(metric?.status, 'DONE');
  t.equal(metric?.number?.unit, 'ns');
  t.type(metric?.number?.value, 'number');
  const splat = data.tests.find((x) => x.path === 'uffd.console.warning');
  t.equal(splat?.status, 'FAIL');
  t.match(splat?.log_excerpt ?? '', /move_pages/);
  t.equal(data.tests.find((x) => x.id.endsWith('-infra'))?.status, 'MISS', 'an infrastructure error is MISS, not FAIL');
  const tree = data.checkouts.find((c) => c.git_repository_url !== undefined);
  t.equal(tree?.git_repository_branch, 'mm-unstable');
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
