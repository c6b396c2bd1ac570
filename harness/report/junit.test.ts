/**
 * junit.xml of real captured nights (harness/report/fixtures/): one <testsuite> per job, its
 * counts matching its testcases, skips where 6.1 lacks a feature, metrics as system-out, a real
 * infrastructure error as an <error> testcase, a real kernel panic as a failed kernel testcase in
 * a run's own junit.xml and in a multi-run one, and a subtest that failed and passed on its retry
 * as a pass with a <flakyFailure> (Maven Surefire's rerun convention).
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRunRecord } from '../results/record.js';
import { FIXTURE_RESULTS, FIXTURE_RUNS, loadNight, NIGHTS } from './fixtures/nights.js';
import { toJunit, toMultiRunJunit, toNightlyJunit } from './junit.js';
import { escapeMarkup } from '../util/markup.js';

interface Suite {
  attrs: Record<string, string>;
  cases: string[];
}

/** The <testsuite> elements of a junit document, with their attributes and <testcase> elements. */
function suites(xml: string): Suite[] {
  const out: Suite[] = [];
  for (const m of xml.matchAll(/<testsuite ([^>]*)>([\s\S]*?)<\/testsuite>/g)) {
    const attrs = Object.fromEntries(
      [...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((a) => [a[1] ?? '', a[2] ?? '']),
    );
    out.push({ attrs, cases: [...(m[2] ?? '').matchAll(/<testcase [\s\S]*?(?:\/>|<\/testcase>)/g)].map((c) => c[0]) });
  }
  return out;
}

t.test('a nightly of two kernels: one suite per job, counts that add up', async (t) => {
  const n = await loadNight(FIXTURE_RESULTS, NIGHTS.kernels);
  const xml = toNightlyJunit(n.record, n.runs);
  const ss = suites(xml);
  t.equal(ss.length, n.runs.length, 'one <testsuite> per job');
  for (const s of ss) {
    const run = n.runs.find((r) => r.job.id === s.attrs['name']);
    t.ok(run, `suite ${s.attrs['name']} is a job`);
    if (!run) continue;
    t.equal(Number(s.attrs['tests']), s.cases.length);
    t.equal(Number(s.attrs['tests']), run.record.subtests.length);
    t.equal(Number(s.attrs['skipped']), s.cases.filter((c) => c.includes('<skipped')).length);
    t.equal(Number(s.attrs['failures']), 0);
  }
  const skipped = ss
    .filter((s) => s.attrs['name']?.startsWith('debian-6.1+'))
    .reduce((a, s) => a + Number(s.attrs['skipped']), 0);
  t.ok(skipped > 0, `6.1 skips what it lacks (${skipped})`);
  t.match(
    xml,
    /classname="debian-6_12\.debian\.ram-anon\.uffd-lat\.hugetlb" name="uffd-lat\/minor-continue\/hugetlb\/blocking"/,
    'classnames carry kernel, config and guest RAM',
  );
  t.match(xml, /<system-out>[^<]*total_p50=\d+ ns/, 'latency metrics as system-out');
  const top = /<testsuites name="([^"]*)" tests="(\d+)"/.exec(xml);
  t.equal(top?.[1], `faultline ${NIGHTS.kernels}`);
  t.equal(
    Number(top?.[2]),
    n.runs.reduce((a, r) => a + r.record.subtests.length, 0),
  );
});

t.test('an infrastructure error is an <error>, not a failure', async (t) => {
  const rec = await readRunRecord(join(FIXTURE_RUNS.infra, 'results.json'));
  const error = escapeMarkup(rec.infraError ?? '');
  t.match(error, /^SSH to the guest never came up/);
  const xml = toMultiRunJunit([{ name: rec.runId, classPrefix: 'faultline', record: rec }]);
  const [s] = suites(xml);
  t.equal(s?.attrs['errors'], '1');
  t.equal(s?.attrs['failures'], '0');
  t.equal(
    s?.cases[0],
    `<testcase classname="faultline.faultline" name="infrastructure"><error message="${error}">${error}</error></testcase>`,
    'multi-run: the first line as the message, the whole error as the body',
  );
  const ownXml = toJunit(rec);
  const own = suites(ownXml)[0];
  t.equal(own?.attrs['errors'], '1');
  t.equal(own?.attrs['failures'], '0');
  t.equal(
    ownXml.split('\n').find((l) => l.includes('name="infrastructure"')),
    `    <testcase classname="faultline" name="infrastructure"><error message="${error}"/></testcase>`,
    "the run's own junit.xml: the whole error as the message",
  );
});

t.test('a kernel panic mid-test: a failed kernel testcase beside the failed test', async (t) => {
  const rec = await readRunRecord(join(FIXTURE_RUNS.panic, 'results.json'));
  t.equal(
    toJunit(rec),
    await readFile(join(FIXTURE_RUNS.panic, 'junit.xml'), 'utf8'),
    "the run's own junit.xml, byte for byte as the run wrote it",
  );
  const [splat] = rec.splats;
  t.match(splat, { kind: 'panic', title: 'Kernel panic - not syncing: sysrq triggered crash', test: 'panic.anon' });
  const xml = toMultiRunJunit([{ name: rec.runId, classPrefix: 'faultline', record: rec }]);
  const [s] = suites(xml);
  t.equal(s?.attrs['tests'], '4', 'three subtests and the splat');
  t.equal(s?.attrs['failures'], '2', 'the test the panic killed and the panic');
  t.equal(s?.attrs['errors'], '0', 'a panic is the kernel failing, not the harness');
  t.equal(
    s?.cases[3],
    `<testcase classname="faultline.kernel" name="kernel/panic during panic.anon"><failure message="Kernel panic - not syncing: sysrq triggered crash">${escapeMarkup(splat?.excerpt ?? '')}</failure></testcase>`,
    'multi-run: the splat names the test it came during',
  );
  t.match(s?.cases[0], /name="panic\/anon"[^>]*><failure message="kernel panic: Kernel panic - not syncing/);
});

t.test('a flaky subtest passes with a flakyFailure per failed attempt', async (t) => {
  const rec = await readRunRecord(join(FIXTURE_RUNS.flaky, 'results.json'));
  const xml = toMultiRunJunit([{ name: rec.runId, classPrefix: 'faultline', record: rec }]);
  const [s] = suites(xml);
  t.equal(s?.attrs['failures'], '0', 'not a failure: it passed in the end');
  t.equal(s?.attrs['errors'], '0');
  const flaky = s?.cases.find((c) => c.includes('name="fails-once/anon"')) ?? '';
  t.match(
    flaky,
    /<flakyFailure message="exit 1: first run: failing on purpose" type="fail"><system-out>output\/fails-once\.anon\.txt<\/system-out><\/flakyFailure>/,
  );
  t.notMatch(flaky, /<failure/);
});
