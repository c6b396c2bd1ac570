import t from 'tap';
import { toJunit } from './junit.js';
import { summaryTable } from './run-outputs.js';
import { toTap } from './tap.js';
import { escapeMarkup } from '../util/markup.js';
import { toKcidb, validateKcidb } from './kcidb.js';
import { exitCodeOf, summarize, validateRunRecord, verdictOf } from '../results/record.js';
import type { RunRecord, SubtestResult } from '../results/types.js';

const subtests: SubtestResult[] = [
  {
    id: 'uffd-unit-tests/minor/hugetlb',
    suite: 'uffd',
    program: 'uffd-unit-tests',
    name: 'minor',
    backing: 'hugetlb',
    status: 'pass',
  },
  {
    id: 'uffd-unit-tests/minor/shmem',
    suite: 'uffd',
    program: 'uffd-unit-tests',
    name: 'minor',
    backing: 'shmem',
    status: 'fail',
    reason: 'wrong <content> & "bytes"',
  },
  {
    id: 'pagemap_ioctl/x',
    suite: 'uffd',
    program: 'pagemap_ioctl',
    name: 'x',
    status: 'skip',
    reason: 'no PAGEMAP_SCAN',
  },
  {
    id: 'uffd-lat/missing-copy/shmem/blocking',
    suite: 'uffd-lat',
    program: 'uffd-lat',
    name: 'missing-copy/shmem/blocking',
    backing: 'shmem',
    status: 'pass',
    metrics: [{ name: 'total_p50', value: 4800, unit: 'ns' }],
  },
];

function record(over: Partial<RunRecord> = {}): RunRecord {
  const r: RunRecord = {
    schema: 'faultline.run/1',
    runId: 'r1',
    startedAt: '2026-11-25T00:00:00.000Z',
    finishedAt: '2026-11-25T00:01:00.000Z',
    durationMs: 60000,
    kernel: { source: 'debian-package', path: '/k', release: '6.12.117+deb12-amd64' },
    selftests: { source: 'debian-linux-source' },
    qemu: { command: ['qemu-system-x86_64'], accel: 'tcg', memMiB: 1024, smp: 2, guestRam: 'anon' },
    guest: {},
    suites: ['uffd'],
    backings: ['hugetlb', 'shmem'],
    programs: [],
    subtests,
    splats: [],
    summary: summarize(subtests),
    verdict: 'fail',
    timing: { totalMs: 60000, testsMs: 30000, bootMs: 20000, pushMs: 1000, prepareMs: 9000 },
    ...over,
  };
  return r;
}

t.test('verdict: a failure or a splat fails the run, an infra error makes it an error', async (t) => {
  const passing = subtests.filter((s) => s.status !== 'fail');
  t.equal(verdictOf(record()), 'fail');
  t.equal(verdictOf(record({ subtests: passing })), 'pass');
  t.equal(
    verdictOf(record({ subtests: [], splats: [{ kind: 'warning', title: 'WARNING: x', excerpt: '', line: 3 }] })),
    'fail',
  );
  t.equal(verdictOf(record({ subtests: passing, infraError: 'guest stopped answering' })), 'error');
  // The harness losing one guest does not hide a failure elsewhere in the run.
  t.equal(verdictOf(record({ infraError: 'guest stopped answering' })), 'fail');
  // A guest that died with a panic on its console: the kernel failed, whatever the harness lost.
  t.equal(
    verdictOf(
      record({
        subtests: passing,
        infraError: 'x',
        splats: [{ kind: 'panic', title: 'Kernel panic - not syncing: sysrq triggered crash', excerpt: '', line: 9 }],
      }),
    ),
    'fail',
  );
  t.same(summarize(subtests), { pass: 2, fail: 1, skip: 1, error: 0, flaky: 0, total: 4 });
});

t.test('verdict and exit code with flaky subtests: flaky alone passes unless --flaky-is-failure', async (t) => {
  const flaky: SubtestResult = {
    ...(subtests[1] as SubtestResult),
    status: 'flaky',
    reason: 'passed on retry 1 after fail: x',
    attempts: [
      { status: 'fail', reason: 'x', outputFile: 'output/a.txt' },
      { status: 'pass', outputFile: 'output/a.retry1.txt' },
    ],
  };
  const rec = record({
    subtests: [subtests[0] as SubtestResult, flaky],
    programs: [
      {
        program: 'uffd-unit-tests',
        command: './uffd-unit-tests',
        exitCode: 1,
        timedOut: false,
        durationMs: 1,
        status: 'fail',
        outputFile: 'output/a.txt',
      },
      {
        program: 'uffd-unit-tests',
        command: './uffd-unit-tests -f minor',
        exitCode: 0,
        timedOut: false,
        durationMs: 1,
        status: 'pass',
        outputFile: 'output/a.retry1.txt',
        purpose: 'retry',
      },
    ],
  });
  rec.summary = summarize(rec.subtests);
  rec.verdict = verdictOf(rec);
  t.equal(rec.verdict, 'pass', "the program's failed first run is shown by its flaky subtest");
  t.equal(exitCodeOf(rec, false), 0);
  t.equal(exitCodeOf(rec, true), 1);
  t.match(summaryTable(rec), /FLAKY uffd-unit-tests\/minor\/shmem: passed on retry 1 after fail: x/);
  t.match(
    toJunit(rec),
    /<testcase classname="uffd-unit-tests\.shmem" name="uffd-unit-tests\/minor\/shmem" time="0\.000"><flakyFailure message="x" type="fail"><stackTrace>x<\/stackTrace><system-out>output\/a\.txt<\/system-out><\/flakyFailure><\/testcase>/,
  );
  t.match(toTap(rec), /^ok 2 - uffd-unit-tests\/minor\/shmem # flaky$/m);
  t.ok(validateRunRecord(JSON.parse(JSON.stringify(rec)), 'flaky record'));
  // A program that failed with no failed or flaky subtest to show for it still fails the run.
  t.equal(verdictOf({ ...rec, subtests: [subtests[0] as SubtestResult] }), 'fail');
});

t.test('TAP 14: one line per subtest, skips as directives, metrics in YAML', async (t) => {
  const tap = toTap(record());
  t.match(tap, /^TAP version 14\n/);
  t.match(tap, /\n1\.\.4\n/);
  t.match(tap, /\nnot ok 2 - uffd-unit-tests\/minor\/shmem\n {2}---\n {2}status: "fail"/);
  t.match(tap, /\nok 3 - pagemap_ioctl\/x # SKIP no PAGEMAP_SCAN\n/);
  t.match(tap, /total_p50: "4800 ns"/);
});

t.test('JUnit: counts, escaping, splats as failures', async (t) => {
  const x = toJunit(
    record({
      splats: [
        {
          kind: 'oops',
          title: 'BUG: kernel NULL pointer dereference, address: 0000000000000008',
          excerpt: 'RIP: <x>',
          line: 9,
        },
      ],
    }),
  );
  t.match(x, /<testsuites name="faultline" tests="5" failures="2" errors="0" skipped="1"/);
  t.match(x, /message="wrong &lt;content&gt; &amp; &quot;bytes&quot;"/);
  t.match(
    x,
    /<testcase classname="kernel" name="kernel\/oops" time="0\.000"><failure message="BUG: kernel NULL pointer dereference, address: 0000000000000008" type="oops">/,
  );
  t.equal(escapeMarkup('a\u0001b'), 'ab', 'control characters dropped');
});

t.test('results.json boundary: a valid record passes, a damaged one is refused with the path', async (t) => {
  const r = JSON.parse(JSON.stringify(record())) as unknown;
  t.equal(validateRunRecord(r, 'x').runId, 'r1');
  const bad = JSON.parse(JSON.stringify(record())) as { subtests: { status: string }[] };
  const first = bad.subtests[0];
  if (first) first.status = 'passed';
  t.throws(
    () => validateRunRecord(bad, 'results/x/results.json'),
    /results\/x\/results\.json is not a faultline results\.json: \/subtests\/0\/status/,
  );
});

t.test('summary table names failures and the verdict', async (t) => {
  const s = summaryTable(record());
  t.match(s, /uffd-unit-tests\/minor\/shmem\s+FAIL\s+wrong <content>/);
  t.match(s, /4 subtests: 2 pass, 1 fail, 1 skip, 0 error, 0 flaky; 0 kernel splat\(s\); verdict FAIL/);
});

t.test('a run without a guest (a host command) renders without inventing one', async (t) => {
  const { qemu: _q, guest: _g, ...rest } = record();
  const host: RunRecord = { ...rest, runId: 'c1' };
  t.ok(validateRunRecord(JSON.parse(JSON.stringify(host)), 'host'));
  t.match(toTap(host), /accel no guest/);
  t.match(summaryTable(host), /on the host, no guest/);
  t.match(toJunit(host), /hostname="guest"/);
  const kcidb = toKcidb([{ record: host }]);
  validateKcidb(kcidb);
  t.equal(kcidb.tests?.[0]?.environment?.comment, 'on the host, no guest');
});
