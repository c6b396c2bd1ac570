/**
 * The culprit loop's grouping and deduplication on three nights captured from a real run of
 * harness/e2e/nightly-culprit.e2e.test.ts (kernel test repository, TCG guests): night 1 at the
 * `warning` commit passes, night 2 at the `culprit` commit fails uffd-unit-tests zeropage/anon
 * and bisected it, night 3 on the same commit. Only nightly.json and each run's results.json are
 * kept (fixtures/culprit/); the comparisons are recomputed here from them.
 */
import t from 'tap';
import { join } from 'node:path';
import { compareNightlies } from './finalize.js';
import {
  alreadyBisected,
  earlierBisects,
  knownEntry,
  persistentFailures,
  regressionGroups,
  signatureOf,
} from './culprit-groups.js';
import { loadNightlyRuns, readNightlyRecord, type LoadedJob, type NightlyRecord } from '../results/nightly.js';

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
