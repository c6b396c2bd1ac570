import t from 'tap';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePlan } from '../nightly/plan.js';
import { runNightly } from '../nightly/nightly.js';
import type { KernelPreparer } from '../nightly/kernels.js';
import { fixtureExecutor } from '../testkit/records.js';
import type { Job } from '../results/nightly.js';
import {
  indexPath,
  nightlyEntries,
  pastDurations,
  previousNightly,
  readHistory,
  rebuildHistory,
  runEntries,
  testHistory,
} from './index.js';
import { knownFlakyKeys } from '../analysis/flaky.js';
import { NIGHTLY_VIEWS } from '../report/views.js';

const plan = parsePlan(
  'name: hist\nkernels: [{name: debian-6.12, debian: "6.12"}]\nbackings: [anon, shmem]\nsuites: [uffd]\nrepeat: 2\n',
  'hist.yaml',
);
const noKernelWork: KernelPreparer = async (_k, _c, buildKey) => ({
  buildKey,
  spec: { kind: 'debian', series: '6.12' },
});

t.test('index, query, flaky detection, damage tolerance, rebuild', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-history-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const base = {
    planFile: 'hist.yaml',
    views: NIGHTLY_VIEWS,
    plan,
    resultsRoot: root,
    parallel: 2,
    kernelPreparer: noKernelWork,
    progress: false,
    print: false,
  };
  // Night 2: on the same kernel, 'minor' on shmem fails on one repetition only.
  const flip = (j: Job): boolean => j.backing === 'shmem' && j.rep === 1;
  await runNightly({ ...base, nightlyId: 'n1', executor: fixtureExecutor({ night: 1 }) });
  await runNightly({ ...base, nightlyId: 'n2', executor: fixtureExecutor({ night: 2, failing: flip }) });
  await runNightly({ ...base, nightlyId: 'n3', executor: fixtureExecutor({ night: 3 }) });

  const h = await readHistory(root);
  t.equal(nightlyEntries(h).length, 3);
  t.equal(runEntries(h).length, 3 * 4);
  t.equal(previousNightly(h, 'hist', '9999', 'n3')?.nightlyId, 'n2');

  const rows = testHistory(h, 'uffd-unit-tests/minor/shmem');
  t.equal(rows.length, 6, '3 nights x 2 repetitions');
  t.same(
    rows.map((r) => r.startedAt),
    [...rows.map((r) => r.startedAt)].sort(),
    'rows in time order',
  );
  t.equal(rows.filter((r) => r.status === 'fail').length, 1);
  t.ok(
    testHistory(h, 'uffd-lat/missing-copy').every((r) => r.metrics.some(([n, , u]) => n === 'total_p50' && u === 'ns')),
    'metrics over time',
  );
  t.equal(
    testHistory(h, 'minor/shmem', { kernel: 'debian-6.12', limit: 2 }).length,
    2,
    'substring match, kernel filter, limit',
  );

  const flaky = knownFlakyKeys(h, { planName: 'hist' });
  t.ok(flaky.has('debian-6.12+debian+anon|uffd-unit-tests/minor/shmem'), 'flipped on an unchanged kernel: known flaky');
  t.notOk(flaky.has('debian-6.12+debian+anon|uffd-unit-tests/minor/anon'));

  const d = pastDurations(h, 'hist');
  t.equal(d.size, 2, 'one duration per job key');

  // A line half-written by a killed process is skipped, not fatal.
  await appendFile(indexPath(root), '{"kind":"run","runId":"trunc');
  t.equal((await readHistory(root)).length, h.length);

  // Rebuild from the directories gives the same runs and nightlies.
  const r = await rebuildHistory(root);
  t.same({ runs: r.runs, nightlies: r.nightlies }, { runs: 12, nightlies: 3 });
  const h2 = await readHistory(root);
  t.same(
    runEntries(h2)
      .map((e) => e.runId)
      .sort(),
    runEntries(h)
      .map((e) => e.runId)
      .sort(),
  );
});
