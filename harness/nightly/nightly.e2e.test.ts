/**
 * A small REAL nightly: Debian's 6.12 kernel, two backings, two guests in parallel, the quick
 * uffd suite (fixtures/plans/e2e.yaml). Real QEMU guests through runTests; nothing mocked.
 * Checks the nightly's own contract: every job ran in its own guest and run directory, the two
 * guests overlapped, the history indexed the runs, the report, junit and KCIDB export exist and
 * validate.
 */
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPlan } from './plan.js';
import { runNightly } from './nightly.js';
import { loadNightlyRuns } from '../results/nightly.js';
import { readHistory, runEntries } from '../history/index.js';
import { toKcidb, kcidbErrors } from '../report/kcidb.js';
import { kcidbInputs } from '../report/export.js';
import { exists } from '../util/fsutil.js';
import { which } from '../util/proc.js';
import { NIGHTLY_VIEWS } from '../report/views.js';

// Measured: 26 s (two guests restored from a snapshot); the deadline is above the slowest figure.
t.setTimeout(15 * 60_000);

const qemu = await which('qemu-system-x86_64');

t.test(
  'real nightly: 1 kernel x 2 backings, 2 parallel guests',
  { skip: qemu ? false : 'qemu-system-x86_64 missing (npm run setup)' },
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'faultline-nightly-e2e-'));
    t.teardown(() => (process.env['FAULTLINE_KEEP_E2E'] ? undefined : rm(root, { recursive: true, force: true })));
    const plan = await readPlan(join(import.meta.dirname, 'fixtures', 'plans', 'e2e.yaml'));
    const out = await runNightly({
      planFile: 'e2e.yaml',
      views: NIGHTLY_VIEWS,
      plan,
      resultsRoot: root,
      parallel: 2,
      accel: 'auto',
      print: false,
    });

    t.ok(out.record.complete, 'nightly complete');
    t.equal(out.record.jobs.length, 2);
    t.equal(out.record.host.parallel, 2);
    const runs = await loadNightlyRuns(out.dir, out.record);
    t.equal(runs.length, 2);
    for (const r of runs) {
      // 'pass' exactly: no infrastructure error and no failed test (a flaky subtest alone still passes).
      const failed = r.record.subtests.filter((s) => s.status === 'fail' || s.status === 'error').map((s) => s.id);
      t.equal(
        r.record.verdict,
        'pass',
        `${r.job.id}: passed (infrastructure error: ${r.record.infraError ?? 'none'}; failed: ${failed.join(', ') || 'none'})`,
      );
      t.ok(r.record.subtests.length > 0, `${r.job.id}: ran tests`);
      t.same(r.record.backings, [r.job.backing], `${r.job.id}: one backing per job`);
      t.ok(await exists(join(r.dir, 'console.log')), `${r.job.id}: own console log`);
    }
    t.not(runs[0]?.dir, runs[1]?.dir, 'separate run directories');
    // The two guests ran at the same time (a pool of 2, not one after the other).
    const [a, b] = runs.map((r) => [Date.parse(r.record.startedAt), Date.parse(r.record.finishedAt)] as const);
    t.ok(a && b && a[0] < b[1] && b[0] < a[1], 'the two jobs overlapped in time');

    const hist = runEntries(await readHistory(root));
    t.equal(hist.length, 2, 'both runs indexed');
    t.ok(await exists(out.reportPath), 'HTML report written');
    t.match(await readFile(out.junitPath, 'utf8'), /<testsuite name="debian-6\.12\+debian\+anon\+anon\+uffd\+r1"/);
    const kcidb = toKcidb(kcidbInputs({ kind: 'nightly', dir: out.dir, record: out.record, runs }));
    t.same(kcidbErrors(kcidb), [], 'KCIDB export validates');
    t.ok(
      kcidb.tests.some((x) => x.path.startsWith('uffd.unit.')),
      'tests carry uffd.unit.* paths',
    );
  },
);
