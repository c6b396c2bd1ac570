/**
 * The CI examples run as written: the shard and merge scripts of docs/github-actions-nightly.yml
 * and docs/k8s-nightly-job.yaml, parsed out of the files (never retyped), run as separate bash
 * processes on this machine with their flags, environment (matrix values, SHARDS,
 * JOB_COMPLETION_INDEX, FAULTLINE_CACHE), working directories and volume layout, real guests
 * included (the smallest plan: Debian's 6.12, the quick uffd suite on anon, one job).
 *
 * What the replay stands in for, and nothing more: `faultline` on PATH (the image's symlink to
 * bin/faultline.js), the Actions cache and artifacts (copies between fresh workspaces), the
 * Kubernetes volumes (mount paths moved under a temporary root; the shared cache volume is a
 * link to this machine's faultline cache) and the clock (a `date` for the second night).
 * Two nights per engine: every job ran once, the merged night has its report, junit and a
 * valid KCIDB export, and the second night compares with the first.
 */
import t, { type Test } from 'tap';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNightlyRecord, type NightlyRecord } from '../results/nightly.js';
import { kcidbErrors } from '../report/kcidb.js';
import { cacheRoot, exists } from '../util/fsutil.js';
import { PROJECT_ROOT } from '../util/project.js';
import { run, which, type RunResult } from '../util/proc.js';
import {
  cronJobContainer,
  expandExpressions,
  readK8s,
  readWorkflow,
  remapMounts,
  stepRunning,
  type Workflow,
  type WorkflowStep,
} from './ci-examples.js';

// Measured: 743 s warm in a full run; 2,067 s (34 min) cold, building its kernels; the deadline is above the slowest figure.
t.setTimeout(50 * 60_000);

const PLAN = `# The smallest real plan: one job (Debian 6.12, quick uffd suite, anon).
name: ci-replay
kernels:
  - name: debian-6.12
    debian: "6.12"
backings: [anon]
suites: [uffd]
quick: true
repeat: 1
timeouts: { uffd: 600 }
mem: 1024
smp: 1
`;
const JOB_ID = 'debian-6.12+debian+anon+anon+uffd+r1';
const STEP_TIMEOUT_MS = 20 * 60_000;

const qemu = await which('qemu-system-x86_64');
const realDate = await which('date');
const root = await mkdtemp(join(tmpdir(), 'faultline-ci-replay-'));
t.teardown(() => (process.env['FAULTLINE_KEEP_E2E'] ? undefined : rm(root, { recursive: true, force: true })));

/** PATH for the replayed scripts: `faultline` as the image has it, and a `date` set by REPLAY_DATE. */
async function replayBin(): Promise<string> {
  const bin = join(root, 'bin');
  await mkdir(bin, { recursive: true });
  await symlink(join(PROJECT_ROOT, 'bin', 'faultline.js'), join(bin, 'faultline'));
  const date = `#!/bin/sh\nif [ -n "$REPLAY_DATE" ]; then exec ${realDate} -d "$REPLAY_DATE 12:00 UTC" "$@"; fi\nexec ${realDate} "$@"\n`;
  await writeFile(join(bin, 'date'), date, { mode: 0o755 });
  return `${bin}:${process.env['PATH'] ?? ''}`;
}

async function bash(args: string[], cwd: string, env: Record<string, string>): Promise<RunResult> {
  return run('bash', args, { cwd, env, timeoutMs: STEP_TIMEOUT_MS, allowFailure: true });
}

function withOf(step: WorkflowStep, key: string): string {
  const v = step.with[key];
  if (typeof v !== 'string') throw new Error(`${step.uses ?? step.name ?? 'step'}: with.${key} is not a string`);
  return v;
}

function usesStep(w: Workflow, job: string, action: string): WorkflowStep {
  const s = w.jobs[job]?.steps.find((x) => x.uses?.startsWith(`${action}@`));
  if (!s) throw new Error(`jobs.${job}: no ${action} step`);
  return s;
}

interface Night {
  merged: string;
  shards: string[];
  exitCode: number;
  output: string;
}

/** One night of the Actions workflow: each matrix leg in a fresh workspace, then the merge job. */
async function actionsNight(w: Workflow, runId: string, store: string, path: string): Promise<Night> {
  const night = join(root, `actions-${runId}`);
  const shardStep = stepRunning(w, 'shard', 'faultline nightly');
  const upload = usesStep(w, 'shard', 'actions/upload-artifact');
  const cachePath = withOf(usesStep(w, 'shard', 'actions/cache/restore'), 'path');
  // GitHub runs `shell: bash` steps as: bash --noprofile --norc -eo pipefail FILE
  const shell = w.shell === 'bash' ? ['--noprofile', '--norc', '-eo', 'pipefail'] : ['-e'];
  const artifacts = join(night, 'artifacts');
  const legs = w.jobs['shard']?.matrix['shard'] ?? [];
  const results = await Promise.all(
    legs.map(async (leg) => {
      const ctx = { 'matrix.shard': String(leg), 'env.SHARDS': w.env['SHARDS'] ?? '', 'github.run_id': runId };
      const ws = join(night, `shard-${String(leg)}`);
      await mkdir(join(ws, 'plans'), { recursive: true });
      await writeFile(join(ws, w.env['PLAN'] ?? 'PLAN unset'), PLAN);
      if (await exists(store)) await cp(store, join(ws, cachePath), { recursive: true });
      const file = join(ws, '.step.sh');
      await writeFile(file, expandExpressions(shardStep.run ?? '', ctx));
      const r = await bash([...shell, file], ws, { ...w.env, ...shardStep.env, PATH: path });
      const from = join(ws, expandExpressions(withOf(upload, 'path'), ctx));
      await cp(from, join(artifacts, expandExpressions(withOf(upload, 'name'), ctx)), { recursive: true });
      return r;
    }),
  );
  for (const r of results) if (r.exitCode !== 0) throw new Error(`shard step failed: ${r.all.slice(-3000)}`);

  const ws = join(night, 'merge');
  await mkdir(ws, { recursive: true });
  if (await exists(store)) await cp(store, join(ws, cachePath), { recursive: true });
  const download = usesStep(w, 'merge', 'actions/download-artifact');
  const pattern = new RegExp(`^${withOf(download, 'pattern').replace(/\*/g, '.*')}$`);
  for (const name of await readdir(artifacts))
    if (pattern.test(name))
      await cp(join(artifacts, name), join(ws, withOf(download, 'path'), name), { recursive: true });
  const mergeStep = stepRunning(w, 'merge', 'faultline merge');
  const file = join(ws, '.step.sh');
  await writeFile(file, expandExpressions(mergeStep.run ?? '', { 'github.run_id': runId }));
  const outputFile = join(night, 'github-output');
  const r = await bash([...shell, file], ws, { ...w.env, ...mergeStep.env, PATH: path, GITHUB_OUTPUT: outputFile });
  if (r.exitCode !== 0) throw new Error(`merge step failed: ${r.all.slice(-3000)}`);
  // actions/cache/save: tomorrow's restore.
  await rm(store, { recursive: true, force: true });
  await cp(join(ws, cachePath), store, { recursive: true });
  const exit = /^exit=(\d+)$/m.exec(await readFile(outputFile, 'utf8'))?.[1];
  return {
    merged: join(ws, 'merged'),
    shards: legs.map((l) => join(ws, withOf(download, 'path'), `shard-${String(l)}`)),
    exitCode: Number(exit ?? 'NaN'),
    output: r.all,
  };
}

/** One night of the Kubernetes CronJobs: the Indexed Job's pods in parallel, then the merge pod. */
async function k8sNight(volumes: string, day: string, path: string): Promise<Night> {
  const m = await readK8s();
  const shards = cronJobContainer(m, 'faultline-nightly-shards');
  const merge = cronJobContainer(m, 'faultline-nightly-merge');
  const pod = async (c: typeof shards.container, extra: Record<string, string>) => {
    const env: Record<string, string> = { PATH: path, REPLAY_DATE: day, ...extra };
    for (const [k, v] of Object.entries(c.env)) env[k] = remapMounts(v, c.mounts, volumes);
    const [cmd, ...args] = c.args.map((a) => remapMounts(a, c.mounts, volumes));
    if (cmd !== '/bin/bash') throw new Error(`args start with ${cmd ?? '(nothing)'}, not /bin/bash`);
    const cwd = join(volumes, 'workdir');
    await mkdir(cwd, { recursive: true });
    return run(cmd, args, { cwd, env, timeoutMs: STEP_TIMEOUT_MS, allowFailure: true });
  };
  const n = Number(shards.jobSpec['completions']);
  const pods = await Promise.all(
    Array.from({ length: n }, (_, i) => pod(shards.container, { JOB_COMPLETION_INDEX: String(i) })),
  );
  for (const r of pods) if (r.exitCode !== 0) throw new Error(`shard pod failed: ${r.all.slice(-3000)}`);
  const r = await pod(merge.container, {});
  const stamp = day.replace(/-/g, '');
  return {
    merged: join(volumes, 'results', 'nightly', `nightly-${stamp}`),
    shards: Array.from({ length: n }, (_, i) => join(volumes, 'results', 'shards', stamp, `shard-${i + 1}`)),
    exitCode: r.exitCode,
    output: r.all,
  };
}

/** The merged night's contract; returns its record. */
async function checkNight(t: Test, night: Night, baseline?: NightlyRecord): Promise<void> {
  t.equal(night.exitCode, 0, `merge exit 0 (${night.output.slice(-400)})`);
  const shardRecs = await Promise.all(night.shards.map((d) => readNightlyRecord(d)));
  const ranIn = shardRecs.flatMap((s) => s.jobs.filter((j) => j.state === 'done').map((j) => j.id));
  t.same(ranIn, [JOB_ID], 'the one job ran in exactly one shard');
  t.same(
    shardRecs.map((s) => s.shard?.count),
    night.shards.map(() => night.shards.length),
    'every shard knew the shard count',
  );
  const rec = await readNightlyRecord(night.merged);
  t.ok(rec.complete, 'merged night complete');
  t.same(
    rec.jobs.map((j) => [j.id, j.state, j.verdict]),
    [[JOB_ID, 'done', 'pass']],
    'the merged night has the job, once, passed',
  );
  t.ok(await exists(join(night.merged, 'report', 'index.html')), 'HTML report written');
  t.match(await readFile(join(night.merged, 'junit.xml'), 'utf8'), /<testsuite /, 'junit written');
  const kcidb: unknown = JSON.parse(await readFile(join(night.merged, 'kcidb.json'), 'utf8'));
  t.same(kcidbErrors(kcidb), [], 'KCIDB export written and valid');
  if (baseline) {
    const cmp = JSON.parse(await readFile(join(night.merged, 'comparison.json'), 'utf8')) as { baseline?: unknown };
    t.equal(cmp.baseline, baseline.nightlyId, 'the second night compares with the first');
    t.ok(await exists(join(night.merged, 'comparison.txt')), 'comparison.txt written');
  }
}

t.test('CI examples replayed: two nights each on Actions and Kubernetes', async (t) => {
  if (!qemu || !realDate) {
    t.fail('qemu-system-x86_64 or date missing: run npm run setup');
    return;
  }
  const path = await replayBin();
  const w = await readWorkflow();
  const store = join(root, 'actions-cache');
  const volumes = join(root, 'k8s');
  await mkdir(join(volumes, 'results'), { recursive: true });
  await mkdir(join(volumes, 'plan'), { recursive: true });
  await writeFile(join(volumes, 'plan', 'nightly.yaml'), PLAN);
  // The shared cache volume (FAULTLINE_CACHE=/results/cache) holds what this machine's cache has.
  await symlink(cacheRoot(), join(volumes, 'results', 'cache'));

  // The two engines' nights run side by side (one guest each).
  const [a1, k1] = await Promise.all([actionsNight(w, '1001', store, path), k8sNight(volumes, '2026-03-01', path)]);
  // The night records, read outside the subtests: night 2 compares against them.
  const [ra1, rk1] = [await readNightlyRecord(a1.merged), await readNightlyRecord(k1.merged)];
  await t.test('Actions night 1', async (t) => checkNight(t, a1));
  await t.test('Kubernetes night 1', async (t) => checkNight(t, k1));
  const [a2, k2] = await Promise.all([actionsNight(w, '1002', store, path), k8sNight(volumes, '2026-03-02', path)]);
  await t.test('Actions night 2', async (t) => {
    await checkNight(t, a2, ra1);
    // Everything the workflow uploads as the night's report exists.
    const upload = w.jobs['merge']?.steps.find((s) => s.with['name'] === 'nightly-report');
    if (!upload) throw new Error('jobs.merge: no nightly-report upload');
    const paths = withOf(upload, 'path')
      .split('\n')
      .map((p) => p.trim())
      .filter((p) => p);
    t.ok(paths.length >= 5, 'the upload names the report files');
    const mergeWs = join(a2.merged, '..');
    for (const p of paths) t.ok(await exists(join(mergeWs, p)), `uploaded: ${p}`);
  });
  await t.test('Kubernetes night 2', async (t) => checkNight(t, k2, rk1));
});
