/**
 * The culprit loop's grouping and deduplication on three nights captured from a real run of
 * harness/e2e/nightly-culprit.e2e.test.ts (kernel test repository, TCG guests): night 1 at the
 * `warning` commit passes, night 2 at the `culprit` commit fails uffd-unit-tests zeropage/anon
 * and bisected it, night 3 on the same commit. Only nightly.json and each run's results.json are
 * kept (fixtures/culprit/); the comparisons are recomputed here from them.
 */
import t from 'tap';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readHistory, rebuildHistory } from '../history/index.js';
import { readRunRecord } from '../results/record.js';
import { evaluateRecord } from '../bisect/spec.js';
import { compareNightlies } from './finalize.js';
import {
  alreadyBisected,
  earlierBisects,
  knownEntry,
  lastPassingNightIn,
  metricSpecOf,
  persistentFailures,
  regressionGroups,
  signatureOf,
} from './culprit-groups.js';
import { loadNightlyRuns, readNightlyRecord, type LoadedJob, type NightlyRecord } from '../results/nightly.js';
import { warningRun } from '../testkit/real-runs.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'culprit');
const ZEROPAGE = 'uffd-unit-tests/zeropage/anon';

async function night(id: string): Promise<{ dir: string; record: NightlyRecord; runs: LoadedJob[] }> {
  const dir = join(fixtures, id);
  const record = await readNightlyRecord(dir);
  return { dir, record, runs: await loadNightlyRuns(dir, record) };
}

const [n1, n2, n3] = await Promise.all([night('night-1'), night('night-2'), night('night-3')]);
const culprit = n2.record.bisects?.[0]?.culprit?.hash ?? 'none';

t.test('a pass -> error on a moved tree is one group, its window the two nights commits', async (t) => {
  const cmp = await compareNightlies(n1, n2, [], n2.record.planName, n2.record.nightlyId);
  const groups = regressionGroups(cmp, n2.record, n1.record, n2.runs);
  t.same(groups, [
    {
      kernel: 'mm',
      config: 'default',
      guestRam: 'anon',
      backing: 'anon',
      suite: 'uffd',
      signal: { kind: 'test', id: ZEROPAGE },
      signals: [{ kind: 'test', id: ZEROPAGE }],
      good: n1.record.commits?.['mm'],
      bad: n2.record.commits?.['mm'],
      goodNight: 'night-1',
      members: [{ signal: { kind: 'test', id: ZEROPAGE }, job: n2.runs[0]?.job }],
    },
  ]);
  t.same(
    regressionGroups(cmp, n2.record, { ...n1.record, commits: n2.record.commits ?? {} }, n2.runs),
    [],
    'the baseline tested the same commit: nothing to bisect',
  );
  t.same(regressionGroups(cmp, n2.record, { nightlyId: 'night-1' }, n2.runs), [], 'a baseline without a commit: none');
});

t.test('no regression against a night that failed the same way: no group', async (t) => {
  const cmp = await compareNightlies(n2, n3, [], n3.record.planName, n3.record.nightlyId);
  t.same(cmp.regressions, []);
  t.same(regressionGroups(cmp, n3.record, n2.record, n3.runs), []);
});

t.test('the same regression and window as an earlier bisect: named, not bisected again', async (t) => {
  const cmp = await compareNightlies(n1, n2, [], n2.record.planName, n2.record.nightlyId);
  const [group] = regressionGroups(cmp, n2.record, n1.record, n2.runs);
  if (!group) throw new Error('no group');
  const earlier = earlierBisects([n1.record, n2.record]);
  t.equal(earlier.length, 1, "night 2's own bisect");
  const before = alreadyBisected(group, earlier);
  t.equal(before?.nightlyId, 'night-2');
  t.match(knownEntry(group, before ?? { nightlyId: '', bisect: { ...group, outcome: 'known' } }), {
    outcome: 'known',
    since: 'night-2',
    culprit: { hash: culprit },
  });
  t.equal(alreadyBisected({ ...group, good: group.bad }, earlier), undefined, 'another window is another bisect');
  t.equal(
    alreadyBisected({ ...group, signal: { kind: 'test', id: 'uffd-unit-tests/zeropage/shmem' } }, earlier),
    undefined,
    'another test is another bisect',
  );
});

t.test('a failure an earlier culprit still explains reads "failing since"', async (t) => {
  const earlier = earlierBisects([n1.record, n2.record]);
  const same = async (a: string, b: string): Promise<boolean> => a === b;
  const known = await persistentFailures(earlier, n3.record, n3.runs, same, new Set());
  t.match(known, [{ outcome: 'known', since: 'night-2', signal: { id: ZEROPAGE }, culprit: { hash: culprit } }]);
  t.equal(known.length, 1);
  t.same(await persistentFailures(earlier, n3.record, n1.runs, same, new Set()), [], 'passing tonight: not named');
  t.same(
    await persistentFailures(earlier, n3.record, n3.runs, async () => false, new Set()),
    [],
    "the culprit is not in tonight's commit: not named",
  );
  const sig = signatureOf(known[0] ?? { kernel: '', config: '', signal: { kind: 'test', id: '' } });
  t.same(await persistentFailures(earlier, n3.record, n3.runs, same, new Set([sig])), [], 'already named: once');
  t.same(earlierBisects([n3.record]), [], "a night's 'known' entries are not bisects of its own");
});

t.test('a splat an earlier culprit explains is the same splat in another pid', async (t) => {
  // The same WARN, captured on two real boots: bisect/fixtures (pid 82) and series/fixtures (pid 80).
  const tonight = warningRun();
  const earlierTitle = 'WARNING: CPU: 1 PID: 80 at fs/userfaultfd.c:1655 userfaultfd_ioctl+0x485/0xd16';
  t.not(tonight.splats[0]?.title, earlierTitle, 'two different titles');
  const [b2] = n2.record.bisects ?? [];
  if (!b2) throw new Error('no bisect in night 2');
  const signal = { kind: 'splat' as const, id: earlierTitle };
  const earlier = [{ nightlyId: 'night-2', bisect: { ...b2, signal, signals: [signal] } }];
  const runs = n3.runs.map((r) => ({ ...r, record: tonight }));
  const same = async (a: string, b: string): Promise<boolean> => a === b;
  const known = await persistentFailures(earlier, n3.record, runs, same, new Set());
  t.match(known, [{ outcome: 'known', since: 'night-2', signal }], 'still failing: known');
  const tonightSignal = { kind: 'splat' as const, id: tonight.splats[0]?.title ?? '' };
  const group = { ...b2, signal: tonightSignal, signals: [tonightSignal], members: [] };
  t.equal(alreadyBisected(group, earlier)?.nightlyId, 'night-2', 'the same window: already bisected');
  const other = { ...signal, id: 'WARNING: CPU: 1 PID: 80 at mm/shmem.c:3018 shmem_mfill_atomic_pte+0x55/0x1f6' };
  t.same(
    await persistentFailures(
      [{ nightlyId: 'night-2', bisect: { ...b2, signal: other, signals: [other] } }],
      n3.record,
      runs,
      same,
      new Set(),
    ),
    [],
    'another WARN is not',
  );
});

/**
 * Night 1 again as a night whose job died before zeropage ran ("night-1-died": night 1's record
 * and run with that one result taken out, the night's id changed), written beside the captured
 * nights. Night 2's failure is then no regression against it (the test only appeared), but it is
 * one against the last night that passed it (night 1): "previous good"; or none when none did.
 */
async function diedNight(root: string): Promise<{ dir: string; record: NightlyRecord }> {
  const dir = join(root, 'night-1-died');
  await cp(join(fixtures, 'night-1'), dir, { recursive: true });
  const record = { ...n1.record, nightlyId: 'night-1-died', startedAt: n1.record.finishedAt ?? n1.record.startedAt };
  await writeFile(join(dir, 'nightly.json'), JSON.stringify(record));
  for (const job of record.jobs) {
    const file = join(dir, job.runDir ?? 'none', 'results.json');
    const run = await readRunRecord(file);
    await writeFile(file, JSON.stringify({ ...run, subtests: run.subtests.filter((s) => s.id !== ZEROPAGE) }));
  }
  return { dir, record: await readNightlyRecord(dir) };
}

t.test('a regression whose baseline did not run the test bisects from the last night that passed it', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-culprit-groups-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await cp(fixtures, root, { recursive: true });
  const died = await diedNight(root);
  await rebuildHistory(root);
  const history = await readHistory(root);
  const lastPass = lastPassingNightIn(history, [n1.record, died.record]);
  const [job] = n2.runs;
  if (!job) throw new Error('night 2 has no run');
  t.same(lastPass(job.job, ZEROPAGE), { nightlyId: 'night-1', commit: n1.record.commits?.['mm'] });
  t.equal(lastPass({ ...job.job, backing: 'shmem' }, ZEROPAGE), undefined, 'another backing: no passing night');
  t.equal(lastPass({ ...job.job, config: 'debug' }, ZEROPAGE), undefined, 'another config: none');
  t.equal(lastPass(job.job, 'uffd-unit-tests/zeropage/shmem'), undefined, 'another test: none');

  const cmp = await compareNightlies(died, n2, [], n2.record.planName, n2.record.nightlyId);
  t.same(cmp.regressions, [], 'not run by the baseline: no regression in the comparison');
  t.match(cmp.appeared, [{ id: ZEROPAGE, head: ['error'] }], 'it appeared, failing');
  t.match(regressionGroups(cmp, n2.record, died.record, n2.runs, lastPass), [
    {
      signal: { kind: 'test', id: ZEROPAGE },
      good: n1.record.commits?.['mm'],
      bad: n2.record.commits?.['mm'],
      goodNight: 'night-1',
    },
  ]);
  t.equal(regressionGroups(cmp, n2.record, died.record, n2.runs, lastPass).length, 1);
  t.same(
    regressionGroups(cmp, n2.record, died.record, n2.runs, lastPassingNightIn(history, [died.record])),
    [],
    'no earlier night passed it: a new failure, nothing to bisect',
  );
});

/**
 * Latency regressions as bisect signals, on two nights captured from a real run of
 * harness/e2e/metric-bisect.e2e.test.ts (fixtures/metric/): night 1 at the test repository's tip,
 * night 2 at a commit that busy-waits 10 ms in UFFDIO_COPY; uffd-lat missing-copy on shmem, five
 * runs a night.
 */
t.test('a significant latency regression is a metric signal, one per subtest, clearest first', async (t) => {
  const metricNight = async (id: string) => {
    const dir = join(import.meta.dirname, 'fixtures', 'metric', id);
    const record = await readNightlyRecord(dir);
    return { dir, record, runs: await loadNightlyRuns(dir, record) };
  };
  const [m1, m2] = await Promise.all([metricNight('night-1'), metricNight('night-2')]);
  const cmp = await compareNightlies(m1, m2, [], m2.record.planName, m2.record.nightlyId);
  t.ok(cmp.metricRegressions.length > 2, `several metrics of the slowed subtests (${cmp.metricRegressions.length})`);
  const groups = regressionGroups(cmp, m2.record, m1.record, m2.runs);
  t.equal(groups.length, 1, 'one kernel and window: one group');
  const [g] = groups;
  t.match(g, {
    backing: 'shmem',
    suite: 'uffd-lat',
    good: m1.record.commits?.['mm'],
    bad: m2.record.commits?.['mm'],
    signal: { kind: 'metric', threshold: { direction: 'above' } },
  });
  const subtests = (g?.signals ?? []).map((s) => s.id.split('/').slice(0, -1).join('/'));
  t.same(new Set(subtests).size, subtests.length, `one signal per subtest (${subtests.join(', ')})`);
  t.ok(subtests.includes('uffd-lat/missing-copy/shmem/poll'), 'the poll subtest is one');
  // The threshold lies between the two nights: night 1's runs pass it, night 2's fail it.
  const spec = metricSpecOf(g?.signal ?? { kind: 'metric', id: 'none' });
  t.match(g?.signal.threshold?.value, /^\d+(\.\d+)?(us|ms)$/, 'in a readable unit');
  t.same(
    m1.runs.map((r) => evaluateRecord(spec, r.record).kind),
    m1.runs.map(() => 'pass'),
  );
  t.same(
    m2.runs.map((r) => evaluateRecord(spec, r.record).kind),
    m2.runs.map(() => 'fail'),
  );
  const [culprit] = m2.record.bisects ?? [];
  t.match(culprit, { outcome: 'culprit', signal: { kind: 'metric' } }, 'the night bisected it to a culprit');
  const same = async (a: string, b: string): Promise<boolean> => a === b;
  t.match(
    await persistentFailures(earlierBisects([m2.record]), m2.record, m2.runs, same, new Set()),
    [{ outcome: 'known', since: m2.record.nightlyId, signal: { kind: 'metric' } }],
    'still slow on a later night: "slow since", with its culprit',
  );
  t.same(
    await persistentFailures(earlierBisects([m2.record]), m2.record, m1.runs, same, new Set()),
    [],
    'fast again: not',
  );
});
