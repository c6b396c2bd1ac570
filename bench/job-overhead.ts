/**
 * A nightly job's overhead (issue 25): everything a job costs but its test programs. Nightlies
 * of 2 and of 8 identical short jobs (Debian 6.12, shmem, the quick uffd suite filtered to
 * register-ioctls, one guest at a time) are timed whole; the difference over the 6 extra jobs is
 * what one job costs, without the night's fixed part (kernel, report). Minus the median time
 * inside the job's test programs, that is its overhead. Side by side in one run: jobs started
 * ahead of their turn (their guest loaded paused while the job before runs: the default), jobs
 * restored only at their turn (--no-ahead), and guests booted with the binaries in their
 * initramfs (--no-snapshot).
 * Usage: node dist/bench/job-overhead.js
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNightly } from '../harness/nightly/nightly.js';
import { parsePlan } from '../harness/nightly/plan.js';
import { readGuestRunRecord } from '../harness/results/record.js';
import { NIGHTLY_VIEWS } from '../harness/report/views.js';
import { median } from '../harness/stats/descriptive.js';

type Mode = 'ahead' | 'restored' | 'booted';

const PLAN = (repeat: number) =>
  [
    'name: job-overhead',
    'kernels:',
    '  - name: debian-6.12',
    '    debian: "6.12"',
    'backings: [shmem]',
    'suites: [uffd]',
    'filter: register-ioctls',
    'quick: true',
    `repeat: ${repeat}`,
    'retries: 0',
  ].join('\n');

/** Wall time of one nightly of `repeat` jobs, and the time inside each job's test programs. */
async function night(repeat: number, mode: Mode): Promise<{ wallMs: number; testsMs: number[] }> {
  const root = await mkdtemp(join(tmpdir(), 'bench-job-overhead-'));
  try {
    const planFile = join(root, 'plan.yaml');
    const t0 = Date.now();
    const out = await runNightly({
      views: NIGHTLY_VIEWS,
      planFile,
      plan: parsePlan(PLAN(repeat), planFile),
      resultsRoot: root,
      parallel: 1,
      compare: false,
      print: false,
      progress: false,
      noSnapshot: mode === 'booted',
      ahead: mode === 'ahead',
    });
    const wallMs = Date.now() - t0;
    const testsMs: number[] = [];
    for (const j of out.record.jobs) {
      if (j.verdict !== 'pass' || !j.runDir) throw new Error(`job ${j.id}: ${j.verdict ?? 'no verdict'}`);
      const rec = await readGuestRunRecord(join(out.dir, j.runDir, 'results.json'));
      testsMs.push(rec.timing.testsMs);
    }
    return { wallMs, testsMs };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const sec = (ms: number): string => (ms / 1000).toFixed(2);
// One night first fills whatever is cold (kernel, selftests, image, snapshot): not timed.
await night(1, 'restored');
for (const [label, mode] of [
  ['ahead: loaded paused while the job before ran (default)', 'ahead'],
  ['restored at its turn (--no-ahead)', 'restored'],
  ['booted, binaries in its initramfs (--no-snapshot)', 'booted'],
] as const) {
  const small = await night(2, mode);
  const large = await night(8, mode);
  const perJob = (large.wallMs - small.wallMs) / 6;
  const tests = median([...small.testsMs, ...large.testsMs]);
  console.log(
    `${label}: a job costs ${sec(perJob)} s, ${sec(tests)} s of it in its test programs: overhead ${sec(perJob - tests)} s (nights of 2 and 8 jobs: ${sec(small.wallMs)} s, ${sec(large.wallMs)} s)`,
  );
}
