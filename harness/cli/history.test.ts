/**
 * `faultline history` through the real CLI (bin/faultline.js on the compiled dist/, as a user runs
 * it) over real captured records: the four nightlies of harness/report/fixtures/results and the
 * three single runs of harness/report/fixtures/runs, copied into a results root that has no index
 * yet. What it prints is checked against the records themselves, read here, not against the
 * history module's own view of them.
 */
import t from 'tap';
import { execa } from 'execa';
import { existsSync, statSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { FIXTURE_RESULTS, FIXTURE_RUNS, loadNight, NIGHTS, type FixtureNight } from '../report/fixtures/nights.js';
import { readRunRecord } from '../results/record.js';
import { readNightlyRecord } from '../results/nightly.js';
import type { RunRecord } from '../results/types.js';
import { PROJECT_ROOT } from '../util/project.js';

const BIN = join(PROJECT_ROOT, 'bin', 'faultline.js');
const COMPILED = join(PROJECT_ROOT, 'dist', 'harness', 'cli', 'history.js');
// A Node start-up and a read of 41 records: seconds, even at load average 25.
const CLI_TIMEOUT_MS = 60_000;

const root = await mkdtemp(join(tmpdir(), 'faultline-history-cli-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
await cp(FIXTURE_RESULTS, root, { recursive: true });
for (const dir of Object.values(FIXTURE_RUNS)) await cp(dir, join(root, basename(dir)), { recursive: true });
const nights: FixtureNight[] = [];
for (const id of Object.values(NIGHTS)) nights.push(await loadNight(root, id));
const singleRuns: RunRecord[] = [];
for (const dir of Object.values(FIXTURE_RUNS)) singleRuns.push(await readRunRecord(join(dir, 'results.json')));

const history = (args: string[], resultsRoot = root) =>
  execa(process.execPath, [BIN, 'history', '--results', resultsRoot, ...args], {
    reject: false,
    timeout: CLI_TIMEOUT_MS,
    stdin: 'ignore',
    env: { FAULTLINE_VERBOSE: '0' },
  });
const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

t.before(() => {
  // The CLI runs from dist/: one older than the sources would test old code.
  if (
    !existsSync(COMPILED) ||
    statSync(COMPILED).mtimeMs < statSync(join(PROJECT_ROOT, 'harness/cli/history.ts')).mtimeMs
  )
    throw new Error(`${COMPILED} is missing or older than its source: run npx tsc -p tsconfig.json first`);
});

t.test('the history is the index: none before --rebuild, every nightly and run after it', async (t) => {
  const before = await history([]);
  t.same([before.exitCode, before.stdout], [0, `no nightlies in ${root}/index.jsonl`], 'no index, no nightlies');

  const r = await history(['--rebuild']);
  t.equal(r.exitCode, 0, `exit 0 (${r.stderr})`);
  const runCount = nights.reduce((n, night) => n + night.runs.length, 0) + singleRuns.length;
  t.equal(runCount, 41, 'the fixtures: 38 nightly jobs and 3 single runs');
  t.match(r.stderr, new RegExp(`index rebuilt: ${runCount} run\\(s\\), ${nights.length} nightly\\(ies\\)$`, 'm'));
  t.notMatch(r.stderr, /unreadable skipped/, 'every real record is readable');
  const expected = [...nights]
    .sort((a, b) => a.record.startedAt.localeCompare(b.record.startedAt))
    .map(({ record, runs }) => {
      const verdicts = (v: string): number => runs.filter((j) => j.record.verdict === v).length;
      const subtests = runs.flatMap((j) => j.record.subtests);
      const passed = subtests.filter((s) => s.status === 'pass').length;
      return (
        `${record.startedAt}  ${record.nightlyId}  ${record.planName}  jobs ${runs.length}: ` +
        `${verdicts('pass')} pass ${verdicts('fail')} fail ${verdicts('error')} error  tests ${passed}/${subtests.length} pass`
      );
    });
  t.same(lines(r.stdout), expected, 'one line per night, oldest first, counted as the records say');
  t.match(r.stdout, /report-kernels {2}jobs 16: 16 pass 0 fail 0 error {2}tests 588\/610 pass/, "6.1's skips counted");

  const newest = await history(['--limit', '1']);
  t.same(lines(newest.stdout), expected.slice(-1), '--limit 1: the newest night');
});

/** A test's rows as the records have them: [status, context, total_p50, nightly], oldest first. */
function fromRecords(id: string): string[][] {
  return nights
    .flatMap(({ record, runs }) =>
      runs.flatMap(({ job, record: run }) =>
        run.subtests
          .filter((s) => s.id === id)
          .map((s) => ({
            at: run.startedAt,
            row: [
              s.status.toUpperCase(),
              `${job.kernel}+${job.config}+${job.guestRam}`,
              String(s.metrics?.find((m) => m.name === 'total_p50')?.value ?? '-'),
              record.nightlyId,
            ],
          })),
      ),
    )
    .sort((a, b) => a.at.localeCompare(b.at))
    .map((r) => r.row);
}

/** `START  CONTEXT  STATUS  ID  METRICS  (NIGHT OR RUN)` → [status, context, total_p50, night or run]. */
function parseRow(line: string): string[] {
  const m = /^\d{4}-\d\d-\d\d \d\d:\d\d {2}(\S+) +(\S+) +(\S+)(?: {2}(.*))? {2}\((\S+)\)$/.exec(line);
  if (!m) return [`unparsed: ${line}`];
  const [, context = '', status = '', , metrics = '', from = ''] = m;
  return [status, context, /(?:^| )total_p50=(\d+)ns(?: |$)/.exec(metrics)?.[1] ?? '-', from];
}

t.test("a test over the nights: each run's status and latency, as its results.json has them", async (t) => {
  const id = 'uffd-lat/wp-async/hugetlb';
  const want = fromRecords(id);
  t.equal(want.length, 8, 'in 3 nights: 6 runs on 6.12, 2 on 6.1');
  t.same(
    want.map(([status, context]) => `${status} ${context}`).filter((r, i, all) => all.indexOf(r) === i),
    ['PASS debian-6.12+debian+anon', 'SKIP debian-6.1+debian+anon'],
    'the fixture has a pass and a skip to tell apart',
  );
  const r = await history(['--test', id]);
  t.equal(r.exitCode, 0, `exit 0 (${r.stderr})`);
  t.same(lines(r.stdout).map(parseRow), want, 'status, context, total_p50 and night of every run, oldest first');

  const old = await history(['--test', id, '--kernel', 'debian-6.1', '--json']);
  t.equal(old.exitCode, 0, `exit 0 (${old.stderr})`);
  const rows = lines(old.stdout).map((l) => JSON.parse(l) as { runId: string; status: string; nightlyId: string });
  const kernels = nights.find((n) => n.record.nightlyId === NIGHTS.kernels);
  t.same(
    rows.map((row) => [row.runId, row.status, row.nightlyId]),
    (kernels?.runs ?? [])
      .filter((j) => j.job.kernel === 'debian-6.1' && j.record.subtests.some((s) => s.id === id))
      .map((j) => [j.record.runId, 'skip', NIGHTS.kernels])
      .sort(),
    "--kernel debian-6.1 --json: 6.1's two runs, each a skip (6.1 has no WP_ASYNC)",
  );
});

t.test('single runs: a flaky subtest and a panic, by a part of their ids', async (t) => {
  const flaky = await history(['--test', 'fails-once']);
  t.equal(flaky.exitCode, 0, `exit 0 (${flaky.stderr})`);
  t.same(
    lines(flaky.stdout).map(parseRow),
    [['FLAKY', 'guest_ram=anon', '-', 'flaky-fails-once']],
    'the retried subtest of the flaky run, named by its run id',
  );
  const panic = await history(['--test', 'panic/anon']);
  t.same(lines(panic.stdout).map(parseRow), [['FAIL', 'guest_ram=anon', '-', 'panic-mid-test']]);
  t.same(
    singleRuns.map((r) => r.runId),
    ['infra-boot-timeout', 'flaky-fails-once', 'panic-mid-test'],
    'the run ids those rows name are the records',
  );
});

t.test('a test no run has: exit 2, one line saying what to try', async (t) => {
  const r = await history(['--test', 'no-such-test']);
  t.equal(r.exitCode, 2);
  t.equal(r.stdout, '');
  t.equal(
    r.stderr,
    `faultline: no results for test 'no-such-test' in ${root}/index.jsonl (try a part of the id, or --rebuild)`,
  );
});

t.test("a night's culprit is printed beside the failure it explains, and in the list of nightlies", async (t) => {
  // Three nights of a real run of nightly-culprit.e2e: night 2 bisected zeropage/anon's failure,
  // night 3 failed the same way and named night 2's culprit.
  const culpritRoot = await mkdtemp(join(tmpdir(), 'faultline-history-culprit-'));
  t.teardown(() => rm(culpritRoot, { recursive: true, force: true }));
  await cp(join(PROJECT_ROOT, 'harness', 'nightly', 'fixtures', 'culprit'), join(culpritRoot, 'nightly'), {
    recursive: true,
  });
  const run = (args: string[]) => history(args, culpritRoot);
  t.equal((await run(['--rebuild'])).exitCode, 0);
  const night2 = await readNightlyRecord(join(culpritRoot, 'nightly', 'night-2'));
  const hash = night2.bisects?.[0]?.culprit?.hash.slice(0, 12) ?? 'none';
  const rows = lines((await run(['--test', 'uffd-unit-tests/zeropage/anon'])).stdout);
  const culprit = `culprit ${hash} ("userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly", bisected by night-2)`;
  t.match(rows, [
    / {2}PASS {3}uffd-unit-tests\/zeropage\/anon {2}\(night-1\)$/,
    new RegExp(`  ERROR  uffd-unit-tests/zeropage/anon  \\(night-2\\)  ${culprit.replace(/[()]/g, '\\$&')}$`),
    new RegExp(`  ERROR  uffd-unit-tests/zeropage/anon  \\(night-3\\)  ${culprit.replace(/[()]/g, '\\$&')}$`),
  ]);
  t.equal(rows.length, 3);
  const list = lines((await run([])).stdout);
  t.match(list, [
    / night-1 .*pass$/,
    new RegExp(` night-2 .*  culprit ${hash}: uffd-unit-tests/zeropage/anon$`),
    / night-3 /,
  ]);
});
