/**
 * Report generation benchmark (issue 6): a nightly with 1,000 test results and a history of
 * 30 nights. Measures what `faultline nightly` does after the jobs: read the history index, load
 * tonight's and last night's results, compare them (Mann-Whitney + bootstrap per metric), render
 * the HTML report (matrix, failures, latency table + histograms, trend plots) and junit.xml.
 * Target: <= 2 s.
 *
 *   node dist/bench/report-gen.js [--tests 1000] [--nights 30] [--json FILE]
 */
import { mkdtemp, mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  appendHistory,
  nightlySummaryEntry,
  readHistory,
  runEntry,
  type HistoryEntry,
} from '../harness/history/index.js';
import { compareNightlies } from '../harness/nightly/finalize.js';
import { expandJobs } from '../harness/nightly/jobs.js';
import { parsePlan, planHash } from '../harness/nightly/plan.js';
import {
  loadNightlyRuns,
  writeNightlyRecord,
  type NightlyJobState,
  type NightlyRecord,
} from '../harness/results/nightly.js';
import { makeRecord, SAMPLE_SPLAT } from '../harness/testkit/records.js';
import { generateReport } from '../harness/report/generate.js';
import { toNightlyJunit } from '../harness/report/junit.js';
import { writeRunOutputs } from '../harness/report/run-outputs.js';
import { writeFileAtomic, writeJsonAtomic } from '../harness/util/fsutil.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
}
const jsonOut = ((): string | undefined => {
  const i = process.argv.indexOf('--json');
  return i >= 0 ? process.argv[i + 1] : undefined;
})();

const TESTS = arg('tests', 1000);
const NIGHTS = arg('nights', 30);

// 2 kernels x 2 guest RAM x 3 backings x 1 suite x 3 repetitions = 36 jobs.
const plan = parsePlan(
  `name: bench
kernels:
  - { name: debian-6.12, debian: "6.12" }
  - { name: debian-6.1, debian: "6.1" }
backings: [anon, shmem, hugetlb]
guest_ram: [anon, shmem]
suites: [uffd]
repeat: 3
`,
  'bench.yaml',
);
const jobs = expandJobs(plan);
const perJob = Math.ceil(TESTS / jobs.length);
const latencyPerJob = Math.max(1, Math.round(perJob * 0.2));
const unitPerJob = perJob - latencyPerJob;

async function writeNight(root: string, n: number, onDisk: boolean): Promise<HistoryEntry[]> {
  const nightlyId = `nightly-${String(n).padStart(3, '0')}`;
  const dir = join(root, 'nightly', nightlyId);
  const startedAt = new Date(Date.UTC(2025, 0, 1 + n, 2)).toISOString();
  const states: NightlyJobState[] = [];
  const entries: HistoryEntry[] = [];
  for (const [i, job] of jobs.entries()) {
    const runId = `${nightlyId}.${job.id}.try1`;
    const failing = n === NIGHTS && job.backing === 'hugetlb' && job.kernel === 'debian-6.1';
    const rec = makeRecord({
      runId,
      startedAt,
      backing: job.backing,
      guestRam: job.guestRam,
      seed: n * 1000 + i,
      unitTests: unitPerJob,
      latencyTests: latencyPerJob,
      latencyMedianNs: n === NIGHTS && job.backing === 'shmem' ? 14_000 : 12_000,
      packageVersion: `6.12.${30 + n}-1`,
      statusOf: (name) => (failing && name.startsWith('minor') ? 'fail' : 'pass'),
      ...(failing && job.rep === 1 ? { splats: [SAMPLE_SPLAT] } : {}),
    });
    const runDir = join(dir, 'runs', runId);
    if (onDisk) {
      await mkdir(join(runDir, 'output'), { recursive: true });
      await writeRunOutputs(runDir, rec);
      await writeFileAtomic(
        join(runDir, 'output', `uffd-unit-tests.${job.backing}.txt`),
        Array.from({ length: 200 }, (_, k) => `ok ${k} ${k === 50 ? 'minor' : 'test'}`).join('\n'),
      );
    }
    states.push({
      ...job,
      state: 'done',
      attempts: 1,
      runDir: relative(dir, runDir),
      verdict: rec.verdict,
      durationMs: rec.durationMs,
    });
    entries.push(
      runEntry(rec, relative(root, runDir), {
        nightlyId,
        planName: plan.name,
        jobKey: job.key,
        kernelName: job.kernel,
        config: job.config,
      }),
    );
  }
  const record: NightlyRecord = {
    schema: 'faultline.nightly/1',
    nightlyId,
    planName: plan.name,
    planHash: planHash(plan),
    plan,
    startedAt,
    finishedAt: startedAt,
    complete: true,
    host: { hostname: 'bench', cpus: 2, memMiB: 8192, parallel: 2 },
    totalJobs: jobs.length,
    jobs: states,
  };
  if (onDisk) await writeNightlyRecord(dir, record);
  entries.push(
    nightlySummaryEntry(
      record,
      relative(root, dir),
      entries.filter((e): e is Extract<HistoryEntry, { kind: 'run' }> => e.kind === 'run'),
    ),
  );
  return entries;
}

const root = await mkdtemp(join(tmpdir(), 'faultline-bench-report-'));
try {
  process.stderr.write(
    `preparing ${NIGHTS} nights x ${jobs.length} jobs x ${perJob} results (${jobs.length * perJob} results/night)...\n`,
  );
  for (let n = 1; n <= NIGHTS; n++) await appendHistory(root, await writeNight(root, n, n >= NIGHTS - 1));
  const tonight = join(root, 'nightly', `nightly-${String(NIGHTS).padStart(3, '0')}`);
  const lastNight = join(root, 'nightly', `nightly-${String(NIGHTS - 1).padStart(3, '0')}`);
  const { readNightlyRecord } = await import('../harness/results/nightly.js');

  const times: Record<string, number> = {};
  const t0 = performance.now();
  let t = t0;
  const lap = (name: string): void => {
    const now = performance.now();
    times[name] = Math.round(now - t);
    t = now;
  };
  const history = await readHistory(root);
  lap('read history index');
  const record = await readNightlyRecord(tonight);
  const runs = await loadNightlyRuns(tonight, record);
  lap('load tonight');
  const base = await readNightlyRecord(lastNight);
  const comparison = await compareNightlies(
    { dir: lastNight, record: base },
    { runs },
    history,
    plan.name,
    record.nightlyId,
  );
  lap('compare with last night');
  const reportPath = await generateReport({ dir: tonight, record, runs, history, comparison });
  lap('HTML report');
  await writeFileAtomic(join(tonight, 'junit.xml'), toNightlyJunit(record, runs));
  lap('junit.xml');
  const total = Math.round(performance.now() - t0);
  const results = runs.reduce((a, r) => a + r.record.subtests.length, 0);
  const size = (await stat(reportPath)).size;
  const out = {
    bench: 'report-gen',
    testResults: results,
    nights: NIGHTS,
    jobs: jobs.length,
    historyEntries: history.length,
    metricsCompared: comparison.metrics.length,
    metricRegressions: comparison.metricRegressions.length,
    statusRegressions: comparison.regressions.length,
    reportBytes: size,
    stepsMs: times,
    totalMs: total,
    targetMs: 2000,
    pass: total <= 2000,
  };
  process.stdout.write(
    `report generation: ${results} test results, ${NIGHTS} nights of history (${history.length} index entries), ${comparison.metrics.length} metrics compared\n` +
      Object.entries(times)
        .map(([k, v]) => `  ${k.padEnd(26)} ${String(v).padStart(6)} ms\n`)
        .join('') +
      `  ${'total'.padEnd(26)} ${String(total).padStart(6)} ms  (target <= 2000 ms: ${out.pass ? 'PASS' : 'FAIL'}); report ${(size / 1024).toFixed(0)} KiB\n`,
  );
  if (jsonOut) await writeJsonAtomic(jsonOut, out);
} finally {
  await rm(root, { recursive: true, force: true });
}
