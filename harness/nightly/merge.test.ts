/**
 * Shard -> merge round trip, resume after an interruption, infra-error retry and the nightly's
 * comparison with the previous night. Jobs are executed by a fixture executor (no guests here:
 * nightly.e2e.test.ts boots real ones).
 */
import t, { type Test } from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePlan } from './plan.js';
import { expandJobs } from './jobs.js';
import type { Job } from '../results/nightly.js';
import { runNightly, type NightlyOptions } from './nightly.js';
import { mergeNightlies, mergedCommits } from './merge.js';
import { loadNightlyRuns, readNightlyRecord } from '../results/nightly.js';
import type { KernelPreparer } from './kernels.js';
import { fixtureExecutor } from '../testkit/records.js';
import { readHistory, testHistory } from '../history/index.js';
import { FaultlineError, UsageError } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { NIGHTLY_VIEWS } from '../report/views.js';

const PLAN = `
name: roundtrip
kernels:
  - name: debian-6.12
    debian: "6.12"
backings: [anon, shmem, hugetlb]
guest_ram: [anon, shmem]
suites: [uffd]
repeat: 2
`;
const plan = parsePlan(PLAN, 'roundtrip.yaml');
const allJobs = expandJobs(plan);
const noKernelWork: KernelPreparer = async (k, _c, buildKey) => ({
  buildKey,
  spec: { kind: 'debian', series: k.kind === 'debian' ? k.series : '6.12' },
});

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'faultline-nightly-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

function opts(resultsRoot: string, extra: Partial<NightlyOptions> = {}): NightlyOptions {
  return {
    planFile: 'roundtrip.yaml',
    views: NIGHTLY_VIEWS,
    plan,
    resultsRoot,
    parallel: 2,
    kernelPreparer: noKernelWork,
    progress: false,
    print: false,
    executor: fixtureExecutor(),
    ...extra,
  };
}

const isFlakyJob = (j: Job): boolean => j.id === 'debian-6.12+debian+shmem+hugetlb+uffd+r2';

/** What a merge does with a shard given twice, a shard missing and shards of another plan. */
function shardMergeRefusals(t: Test, root: string, shardDirs: string[], sizes: number[]): void {
  t.test('merging a shard twice is refused', async (t) => {
    await t.rejects(
      mergeNightlies([shardDirs[0] ?? '', shardDirs[0] ?? ''], {
        resultsRoot: join(root, 'dup'),
        views: NIGHTLY_VIEWS,
        print: false,
      }),
      UsageError,
    );
  });
  t.test('a missing shard leaves pending jobs and exit code 2', async (t) => {
    const partial = await mergeNightlies(shardDirs.slice(0, 2), {
      views: NIGHTLY_VIEWS,
      resultsRoot: join(root, 'partial'),
      compare: false,
      print: false,
    });
    t.equal(partial.missing.length, sizes[2]);
    t.equal(partial.record.complete, false);
    t.equal(partial.exitCode, 2);
  });
  t.test('plans must match', async (t) => {
    const other = await runNightly(
      opts(join(root, 'other'), { plan: parsePlan(PLAN.replace('repeat: 2', 'repeat: 1'), 'x.yaml') }),
    );
    await t.rejects(
      mergeNightlies([shardDirs[0] ?? '', other.dir], {
        resultsRoot: join(root, 'mix'),
        views: NIGHTLY_VIEWS,
        print: false,
      }),
      /merge shards of one plan only/,
    );
  });
}

t.test('unsharded nightly, 3 shards on separate machines, merged: same jobs, same results', async (t) => {
  const root = await scratch(t);
  // Night 1 on one machine: gives the history that balances the shards.
  const full = await runNightly(
    opts(join(root, 'machine0'), { nightlyId: 'full', executor: fixtureExecutor({ infraFirstAttempt: isFlakyJob }) }),
  );
  t.equal(full.record.jobs.length, allJobs.length);
  t.ok(full.record.complete);
  const retried = full.record.jobs.find((j) => isFlakyJob(j));
  t.equal(retried?.attempts, 2, 'an infra error is retried once');
  t.equal(retried?.verdict, 'pass', 'and the retry counts');
  t.equal(retried?.failedAttempts?.length, 1, 'the failed attempt is kept');
  t.equal(full.exitCode, 0);

  const shardDirs: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const out = await runNightly(
      opts(join(root, `machine${i}`), { shard: { index: i, count: 3 }, durationsFrom: join(root, 'machine0') }),
    );
    t.equal(out.record.shard?.balanced, true, `shard ${i} balanced by past durations`);
    shardDirs.push(out.dir);
  }
  const sizes = await Promise.all(shardDirs.map(async (d) => (await readNightlyRecord(d)).jobs.length));
  t.equal(
    sizes.reduce((a, b) => a + b, 0),
    allJobs.length,
    `shard sizes ${sizes.join('+')} add up to the plan`,
  );

  const merged = await mergeNightlies(shardDirs, {
    views: NIGHTLY_VIEWS,
    resultsRoot: join(root, 'merged'),
    nightlyId: 'merged-night',
    compare: false,
    print: false,
  });
  t.same(merged.missing, []);
  t.ok(merged.record.complete);
  t.same(
    merged.record.jobs.map((j) => j.id),
    allJobs.map((j) => j.id),
    'merged jobs in plan order',
  );
  t.same(merged.record.mergedFrom?.length, 3);

  const fullRuns = await loadNightlyRuns(full.dir, full.record);
  const mergedRuns = await loadNightlyRuns(merged.dir, merged.record);
  const strip = (r: (typeof fullRuns)[number]) => ({
    job: r.job.id,
    verdict: r.record.verdict,
    subtests: r.record.subtests,
  });
  t.same(mergedRuns.map(strip), fullRuns.map(strip), 'every job result survives the round trip');
  t.ok(await exists(join(merged.dir, 'report', 'index.html')));
  const junit = await readFile(join(merged.dir, 'junit.xml'), 'utf8');
  t.equal((junit.match(/<testsuite /g) ?? []).length, allJobs.length, 'one junit testsuite per job');

  // The merge is indexed: history --test sees every repetition of a test.
  const rows = testHistory(await readHistory(join(root, 'merged')), 'uffd-unit-tests/minor/anon');
  t.equal(rows.length, 2 * 2, '2 guest RAM x 2 repetitions');

  shardMergeRefusals(t, root, shardDirs, sizes);
});

t.test('kill mid-run, then --resume runs only what is left', async (t) => {
  const root = await scratch(t);
  const controller = new AbortController();
  let runs = 0;
  const first = fixtureExecutor({
    onRun: () => {
      runs++;
      if (runs === 3) controller.abort();
    },
  });
  await t.rejects(
    runNightly(opts(root, { nightlyId: 'interrupted', executor: first, signal: controller.signal })),
    FaultlineError,
  );
  const dir = join(root, 'nightly', 'interrupted');
  const state = await readNightlyRecord(dir);
  const done = state.jobs.filter((j) => j.state === 'done').length;
  t.ok(done >= 2 && done < allJobs.length, `${done} jobs done before the interruption`);
  t.equal(state.complete, false);

  let resumedRuns = 0;
  const resumed = await runNightly(
    opts(root, { resume: true, executor: fixtureExecutor({ onRun: () => resumedRuns++ }) }),
  );
  t.equal(resumed.dir, dir, 'found the interrupted nightly by plan');
  t.equal(resumedRuns, allJobs.length - done, 'only pending jobs ran again');
  t.ok(resumed.record.complete);
  t.ok(resumed.record.jobs.every((j) => j.state === 'done'));
  await t.rejects(runNightly(opts(root, { resume: true })), /no interrupted nightly/);
});

t.test('the next night is compared with the previous one', async (t) => {
  const root = await scratch(t);
  await runNightly(opts(root, { nightlyId: 'night1', executor: fixtureExecutor({ packageVersion: '6.12.40-1' }) }));
  // New kernel; one backing fails consistently on both repetitions; latency up 40%.
  const failing = (j: Job): boolean => j.backing === 'hugetlb' && j.guestRam === 'anon';
  const night2 = await runNightly(
    opts(root, {
      nightlyId: 'night2',
      executor: fixtureExecutor({ packageVersion: '6.12.41-1', failing, latencyMedianNs: 12_000 * 1.4, night: 2 }),
    }),
  );
  const c = night2.comparison;
  t.ok(c, 'compared with night1');
  t.same(
    c?.regressions.map((r) => r.key),
    ['debian-6.12+debian+anon|uffd-unit-tests/minor/hugetlb'],
  );
  t.equal(c?.flaky.length, 0);
  t.equal(night2.exitCode, 1);
  t.ok(await exists(join(night2.dir, 'comparison.json')));
  // 2 repetitions per side: Mann-Whitney can not reach p < 0.05 (min exact p = 1/3), so no metric is flagged.
  t.equal(c?.metricRegressions.length, 0, 'two repetitions are not enough evidence for a latency regression');
  const html = await readFile(night2.reportPath, 'utf8');
  t.match(html, /Regressions \(pass → fail\)/);
  t.match(html, /uffd-unit-tests\/minor\/hugetlb/);
});

/**
 * A merged night's commits (what its culprit loop bisects to): from shard records captured on a
 * moving tree (fixtures/culprit/, nights 1 and 2 at two commits of the same branch).
 */
t.test('merged commits: the one commit the shards agree on, none when they tested two', async (t) => {
  const fixtures = join(import.meta.dirname, 'fixtures', 'culprit');
  const [n1, n2] = await Promise.all(['night-1', 'night-2'].map((n) => readNightlyRecord(join(fixtures, n))));
  if (!n1 || !n2) throw new Error('fixtures missing');
  t.same(mergedCommits([{ rec: n2 }, { rec: n2 }]), { commits: n2.commits }, 'both shards at one commit');
  t.same(mergedCommits([{ rec: n1 }, { rec: n2 }]), { commits: {} }, 'the branch moved between shards: none');
  t.same(mergedCommits([{ rec: { ...n2, commits: undefined } }]), {}, 'no tree kernel with a ref: no commits');
});
