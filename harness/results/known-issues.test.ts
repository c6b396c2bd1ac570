import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { join } from 'node:path';
import { uffdSuite } from '../suites/uffd.js';
import { unitTestsFrom } from '../testkit/real-runs.js';
import { notPassed } from '../e2e/upstream-flakes.js';
import { toJunit } from '../report/junit.js';
import { summaryTable } from '../report/run-outputs.js';
import { toTap } from '../report/tap.js';
import { ExitCode, UsageError } from '../util/errors.js';
import { PROJECT_ROOT } from '../util/project.js';
import {
  SHIPPED_KNOWN_ISSUES,
  applyKnownIssues,
  parseKnownIssues,
  programOutputs,
  readKnownIssues,
  type KnownIssue,
} from './known-issues.js';
import { exitCodeOf, newRunRecord, validateRunRecord, verdictOf } from './record.js';
import type { RunRecord } from './types.js';

// Real inputs: the results.json of `faultline run --suite mm --backing hugetlb,shmem` on Debian's
// 6.12.118 kernel and tree (TCG, before known issues existed: exit 1 on four failures), and
// uffd-unit-tests' real output of a run that died in events on anon.
const FIXTURE = join(import.meta.dirname, 'fixtures', 'known-issues', 'mm-hugetlb-shmem.6.12.118-tcg.json');
const mmRun = (): RunRecord => validateRunRecord(JSON.parse(readFileSync(FIXTURE, 'utf8')), FIXTURE);
const FAILED = [
  'khugepaged/mm.khugepaged',
  'khugepaged/mm.khugepaged_-s_2',
  'memfd_test hugetlbfs',
  'hugetlb-read-hwpoison',
];

t.test('the real mm run fails without known issues, on exactly four failures', async (t) => {
  const r = mmRun();
  t.equal(r.verdict, 'fail');
  t.same(
    r.subtests.filter((s) => s.status === 'fail' || s.status === 'error').map((s) => s.id),
    FAILED,
  );
});

t.test('with the shipped list the same run passes, each failure named by its known issue', async (t) => {
  const shipped = await readKnownIssues([SHIPPED_KNOWN_ISSUES]);
  const r = mmRun();
  applyKnownIssues(r, shipped);
  r.verdict = verdictOf(r);
  t.equal(r.verdict, 'pass');
  t.equal(exitCodeOf(r, false), ExitCode.ok, 'known failures alone exit 0');
  t.equal(exitCodeOf(r, false, true), ExitCode.testFailure, '--known-is-failure exits 1');
  t.same(
    Object.fromEntries(r.subtests.filter((s) => s.known !== undefined).map((s) => [s.id, [s.known, s.status]])),
    {
      'khugepaged/mm.khugepaged': ['debian-6.12-khugepaged-ksft-skip', 'error'],
      'khugepaged/mm.khugepaged_-s_2': ['debian-6.12-khugepaged-ksft-skip', 'error'],
      'memfd_test hugetlbfs': ['debian-6.12-memfd-hugetlbfs-seal-exec', 'fail'],
      'hugetlb-read-hwpoison': ['debian-6.12-hugetlb-read-hwpoison-sigbus', 'fail'],
    },
    'the real status is kept beside the issue',
  );
  t.same(
    r.knownIssues?.map((k) => [k.id, k.state]),
    [
      ['debian-6.12-khugepaged-ksft-skip', 'present'],
      ['debian-6.12-memfd-hugetlbfs-seal-exec', 'present'],
      ['debian-6.12-hugetlb-read-hwpoison-sigbus', 'present'],
    ],
    'the uffd flakes do not apply: suite uffd did not run',
  );
  validateRunRecord(JSON.parse(JSON.stringify(r)), 'the marked record');

  const summary = summaryTable(r);
  t.match(summary, /^hugetlb-read-hwpoison +KNOWN +debian-6\.12-hugetlb-read-hwpoison-sigbus: fail: /m);
  t.match(
    summary,
    /^KNOWN debian-6\.12-memfd-hugetlbfs-seal-exec \(code\): .* <faultline issue 22: .*>: memfd_test hugetlbfs$/m,
  );
  t.match(summary, /2 fail, 510 skip, 2 error, 0 flaky \(4 of them known issues\); .* verdict PASS/);
  const tap = toTap(r);
  t.match(tap, /^not ok \d+ - memfd_test hugetlbfs # TODO known issue debian-6\.12-memfd-hugetlbfs-seal-exec$/m);
  t.match(tap, /^ {2}known_issue: "debian-6\.12-khugepaged-ksft-skip"$/m);
  const junit = toJunit(r);
  t.match(
    junit,
    /name="hugetlb-read-hwpoison" [^>]*><skipped message="known issue debian-6\.12-hugetlb-read-hwpoison-sigbus: fail: /,
  );
  t.match(junit, /<testsuites name="faultline" tests="793" failures="0" errors="0" skipped="514"/);
});

t.test('an issue whose test ran and passed is absent (fixed?)', async (t) => {
  const [issue] = parseKnownIssues(
    [
      'issues:',
      '  - id: memfd-shmem',
      '    title: memfd_test on shmem',
      '    report: a subject',
      '    culprit: code',
      '    match: { tests: [memfd_test] }',
    ].join('\n'),
    'inline.yaml',
  );
  const r = mmRun();
  applyKnownIssues(r, issue ? [issue] : []);
  t.same(r.knownIssues, [
    {
      id: 'memfd-shmem',
      title: 'memfd_test on shmem',
      report: 'a subject',
      culprit: 'code',
      state: 'absent',
      where: ['memfd_test'],
    },
  ]);
  t.match(summaryTable(r), /^FIXED\? memfd-shmem: memfd_test on shmem <a subject>: passed: memfd_test$/m);
});

t.test('scope: an issue scoped to 6.1 does not match a 6.12 record', async (t) => {
  const shipped = await readKnownIssues([SHIPPED_KNOWN_ISSUES]);
  const on61 = shipped.map((k): KnownIssue => ({
    ...k,
    scope: { ...k.scope, kernel: { from: '6.1', before: '6.2' } },
  }));
  const r = mmRun();
  applyKnownIssues(r, on61);
  t.equal(r.knownIssues, undefined, 'nothing applied');
  t.ok(r.subtests.every((s) => s.known === undefined));
  t.equal(verdictOf(r), 'fail');
  // Debian's 6.1 kernels say 6.1.0-N in uname -r: the range still holds them.
  const r61 = mmRun();
  r61.kernel = { ...r61.kernel, release: '6.1.0-57-amd64' };
  applyKnownIssues(r61, on61);
  t.equal(verdictOf(r61), 'pass', 'the same issues on a 6.1 release do match');
  const wrongBacking = shipped.map((k): KnownIssue => ({ ...k, scope: { ...k.scope, backings: ['shmem'] } }));
  const rb = mmRun();
  applyKnownIssues(rb, wrongBacking);
  t.same(
    rb.subtests.filter((s) => s.known !== undefined).map((s) => s.id),
    [],
    'khugepaged runs on anon, the rest on hugetlb',
  );
});

t.test('a reason the issue does not describe stays red', async (t) => {
  const shipped = await readKnownIssues([SHIPPED_KNOWN_ISSUES]);
  const r = mmRun();
  const hw = r.subtests.find((s) => s.id === 'hugetlb-read-hwpoison');
  if (hw) hw.reason = 'exit 1: a new way to fail';
  applyKnownIssues(r, shipped);
  t.equal(hw?.known, undefined);
  t.equal(verdictOf(r), 'fail');
  t.match(summaryTable(r), /^hugetlb-read-hwpoison +FAIL +exit 1: a new way to fail$/m);
});

t.test(
  'uffd-stress on shmem-private dying at its fixed-address memfd mmap is the shipped upstream flake',
  async (t) => {
    // The line uffd-stress printed in run.e2e (npm test, 2026-12-07) before its retry passed.
    const died = 'ERROR: mmap of memfd failed at 0x40000000 (errno=9, @uffd-common.c:149)\n';
    const cmd = { program: 'uffd-stress', args: ['shmem-private', '32', '4'], backing: 'shmem-private' as const };
    const parsed = uffdSuite.parse(
      { ...cmd, timeoutSec: 600, label: 'uffd-stress shmem-private' },
      { output: died, exitCode: 1, timedOut: false, durationMs: 1 },
      { backings: ['shmem'], smp: 2, memMiB: 1024, hugepages2m: 64, quick: true, programs: [] },
    );
    const { kernel, selftests } = mmRun();
    const r = newRunRecord({
      runId: 'stress',
      startedAt: '2026-12-07T00:00:00Z',
      kernel,
      selftests,
      suites: ['uffd'],
      backings: ['shmem'],
      subtests: parsed.subtests,
    });
    t.equal(r.verdict, 'fail', 'the death fails the run without known issues');
    applyKnownIssues(r, await readKnownIssues([SHIPPED_KNOWN_ISSUES]));
    t.same(
      r.subtests.map((s) => [s.id, s.status, s.known]),
      [['uffd-stress/stress/shmem-private', 'fail', 'uffd-stress-shmem-memfd-mmap']],
    );
    t.equal(verdictOf(r), 'pass');
    t.equal(notPassed(r.subtests[0]), undefined, 'and the e2e tests accept it as the upstream flake');
  },
);

t.test('a real uffd-unit-tests death in events on anon is the shipped upstream flake', async (t) => {
  const subtests = unitTestsFrom('uffd-unit-tests.died-at-events.6.12-tcg.txt', {
    backings: ['anon', 'shmem', 'hugetlb'],
  });
  const { kernel, selftests } = mmRun();
  const rec = (): RunRecord =>
    newRunRecord({
      runId: 'events',
      startedAt: '2026-12-07T00:00:00Z',
      kernel,
      selftests,
      suites: ['uffd'],
      backings: ['anon'],
      subtests: structuredClone(subtests),
    });
  const shipped = await readKnownIssues([SHIPPED_KNOWN_ISSUES]);
  const r = rec();
  t.equal(r.verdict, 'fail', 'the death fails the run without known issues');
  applyKnownIssues(r, shipped);
  t.equal(
    r.subtests.find((s) => s.id === 'uffd-unit-tests/events/anon')?.known,
    'uffd-unit-tests-events-anon-copy-enoent',
  );
  t.equal(verdictOf(r), 'pass');
  // As flaky: its one failed attempt died of the flake, then it passed.
  const f = rec();
  const events = f.subtests.find((s) => s.id === 'uffd-unit-tests/events/anon');
  if (events) {
    events.attempts = [
      { status: 'error', reason: events.reason ?? '', outputFile: 'output/a.txt' },
      { status: 'pass', outputFile: 'output/b.txt' },
    ];
    events.status = 'flaky';
    delete events.reason;
  }
  applyKnownIssues(f, shipped);
  t.equal(events?.known, 'uffd-unit-tests-events-anon-copy-enoent', 'a flaky attempt that died of it');
  t.equal(notPassed(events), undefined, "the e2e tests' upstream flakes are the shipped list's");
  if (events?.attempts?.[0]) events.attempts[0].reason = 'ERROR: something else';
  delete events?.known;
  applyKnownIssues(f, shipped);
  t.equal(events?.known, undefined, 'a flaky attempt that died of something else is not the known flake');
  t.match(notPassed(events), /^flaky \(attempts: error ERROR: something else; pass\)$/, 'nor passes an e2e test');
});

/**
 * `uffd-unit-tests -f zeropage` as a bisect step ran it on Debian's 6.12.118 tree (TCG), in an anon
 * job: the program tests every memory, and its shmem alias mmap found 0x40000000 taken (EEXIST).
 */
const ZEROPAGE_DEATH = 'uffd-unit-tests.zeropage-shmem-mmap.6.12-tcg.txt';
function zeropageDeathRecord(): RunRecord {
  const { kernel, selftests } = mmRun();
  return newRunRecord({
    runId: 'zeropage',
    startedAt: '2026-12-07T00:00:00Z',
    kernel,
    selftests,
    suites: ['uffd'],
    backings: ['anon'],
    subtests: unitTestsFrom(ZEROPAGE_DEATH, { backings: ['anon'], args: ['-f', 'zeropage'] }),
  });
}

t.test('a real zeropage death on shmem in an anon job is the shipped memfd mmap flake', async (t) => {
  const r = zeropageDeathRecord();
  const died = r.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/shmem');
  t.equal(died?.status, 'error', 'the death on a memory the job did not ask for is still named');
  t.equal(r.verdict, 'fail', 'and fails the run without known issues');
  applyKnownIssues(r, await readKnownIssues([SHIPPED_KNOWN_ISSUES]));
  t.equal(died?.known, 'uffd-unit-tests-shmem-memfd-mmap');
  t.equal(verdictOf(r), 'pass', 'the flake alone does not fail the run');
  t.equal(notPassed(died), undefined, "and is one of the e2e tests' upstream flakes");
  t.equal(r.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/anon')?.status, 'pass');
});

t.test('an issue may match the raw output of the program that produced the failure', async (t) => {
  // The real zeropage death on shmem (Debian 6.12.118, TCG): its reason is the ERROR line, and
  // the output says more around it. An issue on the output, with no reason regex.
  const dir = mkdtempSync(join(tmpdir(), 'faultline-known-output-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const text = readFileSync(join(PROJECT_ROOT, 'harness', 'suites', 'fixtures', 'uffd', ZEROPAGE_DEATH), 'utf8');
  mkdirSync(join(dir, 'output'));
  writeFileSync(join(dir, 'output', 'uffd-unit-tests.zeropage.txt'), text);
  const record = (): RunRecord => {
    const r = zeropageDeathRecord();
    // One run of the program for every memory, as the job ran it (no backing of its own).
    r.programs = [
      {
        program: 'uffd-unit-tests',
        command: './uffd-unit-tests -f zeropage',
        exitCode: 1,
        timedOut: false,
        durationMs: 200,
        status: 'error',
        outputFile: 'output/uffd-unit-tests.zeropage.txt',
      },
    ];
    return r;
  };
  const issue = (output: string) =>
    parseKnownIssues(
      `issues:\n  - id: shmem-alias-taken\n    title: t\n    report: r\n    culprit: test\n    match:\n      tests: ['uffd-unit-tests/*/shmem']\n      output: '${output}'\n`,
      'mine.yaml',
    );
  const on = record();
  const matching = issue(
    String.raw`^Testing zeropage on shmem\.\.\. ERROR: mmap of memfd failed at 0x[0-9a-f]+ \(errno=17`,
  );
  applyKnownIssues(on, matching, await programOutputs(on, dir, matching));
  t.equal(on.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/shmem')?.known, 'shmem-alias-taken');
  t.equal(verdictOf(on), 'pass');

  const other = record();
  const elsewhere = issue('^Testing zeropage on shmem\\.\\.\\. done$');
  applyKnownIssues(other, elsewhere, await programOutputs(other, dir, elsewhere));
  t.equal(verdictOf(other), 'fail', 'an output the issue does not describe stays red');
  const unread = record();
  applyKnownIssues(unread, matching);
  t.equal(verdictOf(unread), 'fail', 'without the outputs, an output issue matches nothing');
  t.throws(
    () =>
      parseKnownIssues(
        "issues:\n  - id: x\n    title: t\n    report: r\n    culprit: code\n    match:\n      splat: 'WARNING'\n      output: 'y'\n",
        'mine.yaml',
      ),
    /mine\.yaml:\d+:\d+: invalid known-issues file: \/issues\/0\/match\/output is a match on subtests: it does not go with splat/,
  );
});

t.test('a bad known-issues file is one line naming FILE:LINE:COL, exit 2', async (t) => {
  const bad = (text: string): UsageError => {
    try {
      parseKnownIssues(text, 'mine.yaml');
    } catch (e) {
      if (e instanceof UsageError) return e;
      throw e;
    }
    throw new Error('accepted');
  };
  const entry = ['issues:', '  - id: a', '    title: t', '    report: r', '    culprit: test'];
  const cases: [string[], RegExp][] = [
    [
      [...entry, '    match: { tests: [x] }', '    scope: { kernal: { from: "6.1" } }'],
      /^mine\.yaml:7:14: invalid known-issues file: \/issues\/0\/scope\/kernal unknown key 'kernal'$/,
    ],
    [
      [...entry.slice(0, 4), '    culprit: kernel', '    match: { tests: [x] }'],
      /^mine\.yaml:5:14: .*\/issues\/0\/culprit must be equal to one of the allowed values: code, test, harness$/,
    ],
    [
      [...entry, '    match: { statuses: [fail] }'],
      /^mine\.yaml:6:12: .*\/issues\/0\/match must name tests .* or a splat/,
    ],
    [
      [...entry, '    match: { tests: [x], reason: "(" }'],
      /^mine\.yaml:6:34: .*\/issues\/0\/match\/reason is not a valid regex/,
    ],
    [
      [...entry, '    match: { tests: [x] }', ...entry.slice(1), '    match: { tests: [y] }'],
      /^mine\.yaml:7:9: .*\/issues\/1\/id 'a' is used twice/,
    ],
    [
      [...entry, '    match: { tests: [x] }', '    review_by: "2027-3-1"'],
      /^mine\.yaml:7:16: .*\/issues\/0\/review_by must match pattern/,
    ],
    [['issues: [', '  - id: a'], /^mine\.yaml:\d+:\d+: not valid YAML: /],
  ];
  for (const [lines, re] of cases) {
    const e = bad(lines.join('\n'));
    t.match(e.message, re);
    t.notMatch(e.message, /\n/, 'one line');
    t.equal(e.exitCode, ExitCode.infra, 'exit 2');
  }
  await t.rejects(
    readKnownIssues(['/nonexistent/known.yaml']),
    /^cannot read known-issues file \/nonexistent\/known\.yaml: ENOENT/,
  );
});

t.test('faultline run and nightly: a bad --known-issues file is one line, exit 2, before anything runs', async (t) => {
  const bad = join(import.meta.dirname, '..', 'nightly', 'fixtures', 'plans', 'known-issues-bad.yaml');
  const plan = join(import.meta.dirname, '..', 'nightly', 'fixtures', 'plans', 'e2e.yaml');
  const results = mkdtempSync(join(tmpdir(), 'faultline-known-cli-'));
  t.teardown(() => rmSync(results, { recursive: true, force: true }));
  const commands: [string[], string[]][] = [
    [['run'], []],
    [['run'], ['--no-known-issues']],
    [['nightly', '--plan', plan], []],
  ];
  for (const [command, extra] of commands) {
    const r = await execa(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'faultline.js'), ...command, ...extra, '--known-issues', bad, '--results', results],
      {
        reject: false,
        timeout: 60_000,
        stdin: 'ignore',
      },
    );
    t.equal(r.exitCode, 2, `${command[0] ?? ''}: exit 2 ${extra.join(' ')}`);
    t.equal(
      r.stderr.trim(),
      `faultline: ${bad}:5:14: invalid known-issues file: /issues/0/culprit must be equal to one of the allowed values: code, test, harness`,
    );
    t.same(readdirSync(results), [], 'no run or nightly directory');
  }
});
