/**
 * junit.xml of real captured nights and runs (harness/report/fixtures/), read back with a real XML
 * parser and checked against what Maven Surefire's report format and Jenkins' JUnit reader
 * require (fixtures/junit-check.ts): one <testsuite> per job, its counts matching its testcases,
 * skips where 6.1 lacks a feature, metrics as system-out, a real infrastructure error as an
 * <error> testcase, a real kernel panic as a failed kernel testcase in a run's own junit.xml and
 * in a multi-run one, and a subtest that failed and passed on its retry as a pass with a
 * <flakyFailure> (Surefire's rerun convention).
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Element } from '@xmldom/xmldom';
import { readRunRecord } from '../results/record.js';
import type { RunRecord } from '../results/types.js';
import { FIXTURE_RESULTS, FIXTURE_RUNS, loadNight, NIGHTS } from './fixtures/nights.js';
import { parseJunit, surefireProblems } from './fixtures/junit-check.js';
import { toJunit, toMultiRunJunit, toNightlyJunit } from './junit.js';
import { seriesJunit } from './series-junit.js';
import { readSeriesRecord } from '../series/record.js';
import { PROJECT_ROOT } from '../util/project.js';

const multi = (rec: RunRecord): string => toMultiRunJunit([{ name: rec.runId, classPrefix: 'faultline', record: rec }]);
const runs = {
  infra: await readRunRecord(join(FIXTURE_RUNS.infra, 'results.json')),
  panic: await readRunRecord(join(FIXTURE_RUNS.panic, 'results.json')),
  flaky: await readRunRecord(join(FIXTURE_RUNS.flaky, 'results.json')),
};

/** A parsed document's testsuite elements and, by name, its testcases with their child elements. */
function read(xml: string) {
  const doc = parseJunit(xml);
  const suites = Array.from(doc.getElementsByTagName('testsuite'));
  const kids = (e: Element): Element[] => Array.from(e.childNodes).filter((n): n is Element => n.nodeType === 1);
  const testcase = (name: string): { attr: (a: string) => string | null; children: Element[] } => {
    const found = Array.from(doc.getElementsByTagName('testcase')).filter((c) => c.getAttribute('name') === name);
    if (found.length !== 1) throw new Error(`${found.length} testcases named ${name}`);
    const c = found[0] as Element;
    return { attr: (a) => c.getAttribute(a), children: kids(c) };
  };
  const counts = (s: Element | undefined) =>
    Object.fromEntries(['tests', 'failures', 'errors', 'skipped'].map((a) => [a, s?.getAttribute(a)]));
  return { doc, suites, testcase, counts };
}

const shape = (e: Element | undefined) => ({
  tag: e?.tagName,
  message: e?.getAttribute('message'),
  type: e?.getAttribute('type'),
  text: e?.textContent,
});

t.test('the checker refuses what Surefire and Jenkins would', async (t) => {
  const doc = (cases: string, counts = 'tests="1" failures="0" errors="0" skipped="0"') =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="s" ${counts}>${cases}</testsuite></testsuites>`;
  const ok = '<testcase name="a" time="0.100"/>';
  t.same(surefireProblems(doc(ok)), [], 'a minimal valid document');
  const bad: [string, string, RegExp][] = [
    ['not XML', doc('<testcase name="a" time="1">'), /^not well-formed XML/],
    ['counts off', doc(ok, 'tests="2" failures="0" errors="0" skipped="0"'), /tests="2", its testcases say 1/],
    [
      'a failure not counted',
      doc('<testcase name="a" time="1"><failure type="x"/></testcase>'),
      /failures="0", its testcases say 1/,
    ],
    [
      'no type',
      doc('<testcase name="a" time="1"><error/></testcase>', 'tests="1" failures="0" errors="1" skipped="0"'),
      /<error> without a type/,
    ],
    ['no time', doc('<testcase name="a"/>'), /time "null" is not seconds/],
    ['a count missing', doc(ok, 'tests="1" failures="0" errors="0"'), /skipped="null" is not a whole number/],
    [
      'two outcomes',
      doc(
        '<testcase name="a" time="1"><skipped/><error type="x"/></testcase>',
        'tests="1" failures="0" errors="1" skipped="1"',
      ),
      /2 outcomes \(skipped, error\)/,
    ],
    [
      'out of order',
      doc(
        '<testcase name="a" time="1"><system-out>x</system-out><skipped/></testcase>',
        'tests="1" failures="0" errors="0" skipped="1"',
      ),
      /<skipped> out of order/,
    ],
    [
      'flaky without stackTrace',
      doc('<testcase name="a" time="1"><flakyFailure type="x"><system-out>o</system-out></flakyFailure></testcase>'),
      /<flakyFailure> holds system-out, not stackTrace first/,
    ],
    [
      'flaky yet failed',
      doc(
        '<testcase name="a" time="1"><failure type="x"/><flakyFailure type="x"><stackTrace>s</stackTrace></flakyFailure></testcase>',
        'tests="1" failures="1" errors="0" skipped="0"',
      ),
      /flaky, yet it failed/,
    ],
    [
      'root counts off',
      doc(ok).replace('<testsuites>', '<testsuites tests="3">'),
      /testsuites: tests="3", its suites add up to 1/,
    ],
    ['unknown element', doc('<testcase name="a" time="1"><output/></testcase>'), /<output> is not a testcase child/],
  ];
  for (const [what, xml, problem] of bad) t.match(surefireProblems(xml), [problem], what);
});

t.test('every junit document faultline writes is valid', async (t) => {
  for (const id of [NIGHTS.first, NIGHTS.second, NIGHTS.kernels, NIGHTS.suites]) {
    const n = await loadNight(FIXTURE_RESULTS, id);
    t.same(surefireProblems(toNightlyJunit(n.record, n.runs)), [], `night ${id}`);
  }
  for (const [name, rec] of Object.entries(runs)) {
    t.same(surefireProblems(toJunit(rec)), [], `${name}: the run's own junit.xml`);
    t.same(surefireProblems(multi(rec)), [], `${name}: a multi-run junit.xml`);
  }
});

t.test("a real series' junit.xml: per patch apply, build and warnings, then the tip's regressions", async (t) => {
  // The record of the kernel series e2e on Debian's 6.12 tree: a warning, a build break, a new failure and splat.
  const series = await readSeriesRecord(
    join(PROJECT_ROOT, 'harness', 'series', 'fixtures', 'kernel-series-results.json'),
  );
  const xml = seriesJunit(series);
  t.same(surefireProblems(xml), [], 'valid as Surefire and Jenkins read it');
  const { suites, testcase, counts } = read(xml);
  t.equal(suites.length, 1);
  const failures = Array.from(parseJunit(xml).getElementsByTagName('failure')).map((f) => f.getAttribute('type'));
  t.same(counts(suites[0]).failures, String(failures.length), 'the count is the failures');
  t.ok(
    failures.includes('build') && failures.includes('warning'),
    `a build and a warning failure (${failures.join(',')})`,
  );
  t.match(testcase('3/7 build').children[0]?.getAttribute('message'), /error: 'uffd_move_budget_pages' undeclared/);
  t.match(testcase('2/7 warnings').children[0]?.getAttribute('message'), /unused variable 'zeropage_retries'/);
  t.match(testcase('uffd-unit-tests/zeropage/anon').children[0]?.getAttribute('type'), 'regression');
});

t.test('a nightly of two kernels: one suite per job, counts that add up', async (t) => {
  const n = await loadNight(FIXTURE_RESULTS, NIGHTS.kernels);
  const x = read(toNightlyJunit(n.record, n.runs));
  t.same(
    x.suites.map((s) => s.getAttribute('name')),
    n.runs.map((r) => r.job.id),
    'one <testsuite> per job',
  );
  for (const s of x.suites) {
    const run = n.runs.find((r) => r.job.id === s.getAttribute('name'));
    t.same(
      x.counts(s),
      {
        tests: String(run?.record.subtests.length),
        failures: '0',
        errors: '0',
        skipped: String(run?.record.summary.skip),
      },
      `${s.getAttribute('name')}: a testcase per subtest, skips as the run counted them`,
    );
  }
  const skipped = x.suites
    .filter((s) => s.getAttribute('name')?.startsWith('debian-6.1+'))
    .reduce((a, s) => a + Number(s.getAttribute('skipped')), 0);
  t.ok(skipped > 0, `6.1 skips what it lacks (${skipped})`);
  const minor = Array.from(x.doc.getElementsByTagName('testcase')).filter(
    (c) => c.getAttribute('name') === 'uffd-lat/minor-continue/hugetlb/blocking',
  );
  t.ok(
    minor.some((c) => c.getAttribute('classname') === 'debian-6_12.debian.ram-anon.uffd-lat.hugetlb'),
    'classnames carry kernel, config and guest RAM',
  );
  t.match(
    minor.map((c) => c.getElementsByTagName('system-out')[0]?.textContent),
    Array(minor.length).fill(/^(.+\n)*total_p50=\d+ ns$/m),
    'latency metrics as system-out',
  );
  const root = x.doc.documentElement;
  t.equal(root?.getAttribute('name'), `faultline ${NIGHTS.kernels}`);
  t.equal(root?.getAttribute('tests'), String(n.runs.reduce((a, r) => a + r.record.subtests.length, 0)));
});

t.test('an infrastructure error is an <error>, not a failure', async (t) => {
  const error = runs.infra.infraError ?? '';
  t.match(error, /^SSH to the guest never came up/);
  const m = read(multi(runs.infra));
  t.same(m.counts(m.suites[0]), { tests: '1', failures: '0', errors: '1', skipped: '0' });
  t.same(
    m.testcase('infrastructure').children.map(shape),
    [{ tag: 'error', message: error.split('\n')[0], type: 'infrastructure', text: error }],
    'multi-run: the first line as the message, the whole error as the body',
  );
  t.equal(m.testcase('infrastructure').attr('classname'), 'faultline.faultline');
  const own = read(toJunit(runs.infra));
  t.same(own.counts(own.suites[0]), { tests: '1', failures: '0', errors: '1', skipped: '0' });
  t.same(
    own.testcase('infrastructure').children.map(shape),
    [{ tag: 'error', message: error, type: 'infrastructure', text: '' }],
    "the run's own junit.xml: the whole error as the message",
  );
});

t.test('a kernel panic mid-test: a failed kernel testcase beside the failed test', async (t) => {
  const [splat] = runs.panic.splats;
  t.match(splat, { kind: 'panic', title: 'Kernel panic - not syncing: sysrq triggered crash', test: 'panic.anon' });
  const own = read(toJunit(runs.panic));
  t.same(
    own.counts(own.suites[0]),
    { tests: '4', failures: '2', errors: '0', skipped: '0' },
    'three subtests and the splat',
  );
  t.same(own.testcase('kernel/panic').children.map(shape), [
    { tag: 'failure', message: splat?.title, type: 'panic', text: splat?.excerpt },
  ]);
  t.match(own.testcase('panic/anon').children.map(shape), [
    { tag: 'failure', message: /^kernel panic: Kernel panic - not syncing/, type: 'fail' },
  ]);
  t.same(own.testcase('passes/backing in argv/anon').children.map(shape), [], 'the other tests passed');
  const m = read(multi(runs.panic));
  t.same(m.counts(m.suites[0]), { tests: '4', failures: '2', errors: '0', skipped: '0' }, 'a panic is not an error');
  t.same(
    m.testcase('kernel/panic during panic.anon').children.map(shape),
    [{ tag: 'failure', message: splat?.title, type: 'panic', text: splat?.excerpt }],
    'multi-run: the splat names the test it came during',
  );
});

t.test('a flaky subtest passes with a flakyFailure per failed attempt', async (t) => {
  const m = read(multi(runs.flaky));
  t.same(m.counts(m.suites[0]), { tests: '3', failures: '0', errors: '0', skipped: '0' }, 'it passed in the end');
  const [flaky, ...rest] = m.testcase('fails-once/anon').children;
  t.same(rest.map(shape), [], 'one failed attempt, no <failure>');
  t.same(
    {
      ...shape(flaky),
      text: undefined,
      children: Array.from(flaky?.childNodes ?? []).map((n) => [n.nodeName, n.textContent]),
    },
    {
      tag: 'flakyFailure',
      message: 'exit 1: first run: failing on purpose',
      type: 'fail',
      text: undefined,
      children: [
        ['stackTrace', 'exit 1: first run: failing on purpose'],
        ['system-out', 'output/fails-once.anon.txt'],
      ],
    },
  );
});

t.test("the junit.xml a real run wrote before testcases had Surefire's type and time: each gap named", async (t) => {
  t.same(surefireProblems(await readFile(join(FIXTURE_RUNS.panic, 'junit.xml'), 'utf8')), [
    'testsuite "faultline.program" testcase "panic/anon": <failure> without a type',
    'testsuite "faultline.program" testcase "kernel/panic": time "null" is not seconds',
    'testsuite "faultline.program" testcase "kernel/panic": <failure> without a type',
  ]);
});
