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
import { parsePlan, readPlan } from './plan.js';
import { runNightly } from './nightly.js';
import { loadNightlyRuns } from '../results/nightly.js';
import { readHistory, runEntries } from '../history/index.js';
import { toKcidb, kcidbErrors } from '../report/kcidb.js';
import { kcidbInputs } from '../report/export.js';
import { exists } from '../util/fsutil.js';
import { which } from '../util/proc.js';
import { qemuChildren } from '../testkit/qemu-children.js';
import { runTests } from '../run/run.js';
import type { RunRequest } from '../run/request.js';
import type { GuestRunRecord } from '../results/types.js';
import { NIGHTLY_VIEWS } from '../report/views.js';

// Measured: 26 s (two guests restored from a snapshot), then 20 s for the lane of three jobs
// and 3 s for the stopped one; the deadline is above the slowest figure.
t.setTimeout(20 * 60_000);

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

/** QEMU processes this test process started (runTests in-process starts them as its children). */
const ownQemus = async (): Promise<string[]> => (await qemuChildren(process.pid)).map((c) => `${c.pid} ${c.command}`);

t.test(
  'one lane: each job starts ahead, its guest loaded paused, and runs only once the job before is done',
  { skip: qemu ? false : 'qemu-system-x86_64 missing (npm run setup)' },
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'faultline-nightly-ahead-'));
    t.teardown(() => (process.env['FAULTLINE_KEEP_E2E'] ? undefined : rm(root, { recursive: true, force: true })));
    const planFile = join(root, 'plan.yaml');
    const yaml = 'name: ahead\nkernels:\n  - name: debian-6.12\n    debian: "6.12"\nbackings: [anon]\nsuites: [uffd]\n';
    const plan = parsePlan(`${yaml}filter: zeropage\nquick: true\nrepeat: 3\nretries: 0\nsmp: 1\n`, planFile);
    const out = await runNightly({
      planFile,
      views: NIGHTLY_VIEWS,
      plan,
      resultsRoot: root,
      parallel: 1,
      print: false,
    });
    const runs = await loadNightlyRuns(out.dir, out.record);
    t.equal(runs.length, 3);
    const statuses = runs.map((r) => r.record.subtests.map((s) => `${s.id} ${s.status}`).join(', '));
    t.ok(statuses[0]?.includes('uffd-unit-tests/zeropage/anon pass'), `the first job passed (${statuses[0] ?? ''})`);
    t.same(statuses.slice(1), [statuses[0], statuses[0]], 'every job the same subtests and results');
    const records = runs.map((r) => r.record as GuestRunRecord);
    for (const [i, rec] of records.entries()) {
      if (i === 0) continue;
      // The first job saved (or found) the snapshot while the second waited: both later ones were ready ahead.
      t.match(rec.guest.starts, [{ how: 'restored', ahead: true }], `job ${i + 1}: its guest was loaded ahead`);
      t.ok((rec.timing.aheadMs ?? 0) > 0, `job ${i + 1}: its time before the go is recorded apart`);
      const before = Date.parse(records[i - 1]?.finishedAt ?? '');
      t.ok(Date.parse(rec.startedAt) >= before, `job ${i + 1}: let go only after job ${i} finished`);
    }
  },
);

t.test(
  'a job stopped before its turn stops the guest it loaded, and runs no test',
  { skip: qemu ? false : 'qemu-system-x86_64 missing (npm run setup)' },
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'faultline-nightly-stop-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const req: RunRequest = {
      kernel: { kind: 'debian', series: '6.12' },
      suites: ['uffd'],
      backings: ['anon'],
      memMiB: 1024,
      smp: 1,
      accel: 'auto',
      guestRam: 'anon',
      timeoutSec: 600,
      bootTimeoutSec: 180,
      resultsRoot: root,
      quick: true,
      filter: 'zeropage',
      keepVm: false,
      hugepages2m: 64,
      hugepages1g: 0,
      retries: 0,
    };
    // The nightly above left this guest's snapshot in the cache.
    let whileWaiting: string[] = [];
    await t.rejects(
      runTests(req, {
        // The turn comes once the guest is loaded (or after 60 s), and says stop.
        startGate: async () => {
          for (const until = Date.now() + 60_000; whileWaiting.length === 0 && Date.now() < until;) {
            await new Promise((r) => setTimeout(r, 100));
            whileWaiting = await ownQemus();
          }
          return false;
        },
      }),
      /stopped before its turn came: no test ran/,
    );
    t.equal(whileWaiting.length, 1, `while it waited, its guest was loaded (${whileWaiting.join('; ')})`);
    t.match(whileWaiting[0] ?? '', /-incoming defer/, 'from the snapshot');
    t.same(await ownQemus(), [], 'stopped with the run: no QEMU left');
  },
);
