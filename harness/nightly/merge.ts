/**
 * `faultline merge DIR...`: combine the shard directories of one nightly (from CI matrix legs or
 * a Kubernetes Indexed Job) into one nightly directory, then index, compare and report it as if
 * it had run on one machine. Refuses to mix plans and to count a job twice; jobs no shard ran are
 * kept as pending so the report shows the hole.
 */
import { cp, mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ExitCode, UsageError, type ExitCodeValue } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { finalizeNightly, type FinalizeResult, type NightlyViews } from './finalize.js';
import { expandJobs } from './jobs.js';
import { nightlyExitCode } from './nightly.js';
import {
  NIGHTLY_FILE,
  readNightlyRecord,
  writeNightlyRecord,
  type Job,
  type NightlyJobState,
  type NightlyRecord,
} from '../results/nightly.js';

export interface MergeOptions {
  resultsRoot: string;
  /** The merged night's views (report/'s NIGHTLY_VIEWS from the CLI). */
  views: NightlyViews;
  outDir?: string;
  nightlyId?: string;
  compare?: boolean;
  baseline?: string;
  print?: boolean;
}

export interface MergeOutcome extends FinalizeResult {
  dir: string;
  record: NightlyRecord;
  missing: string[];
  exitCode: ExitCodeValue;
}

type ShardInput = { dir: string; rec: NightlyRecord };
type JobOwner = { dir: string; job: NightlyJobState };

export async function mergeNightlies(dirs: readonly string[], opts: MergeOptions): Promise<MergeOutcome> {
  const inputs = await readShards(dirs);
  const first = inputs[0];
  if (!first) throw new UsageError('merge: nothing to merge');
  const owner = jobOwners(inputs);
  const plan = first.rec.plan;
  const planJobs = expandJobs(plan);
  const nightlyId = mergedNightlyId(first.dir, opts);
  const outDir = resolve(opts.outDir ?? join(opts.resultsRoot, 'nightly', nightlyId));
  if (await exists(join(outDir, NIGHTLY_FILE)))
    throw new UsageError(`merge: ${outDir} already holds a nightly: pass another --out`);
  await mkdir(join(outDir, 'runs'), { recursive: true });

  const { jobs, missing } = await copyOwnedRuns(planJobs, owner, outDir);
  const extra = [...owner.keys()].filter((id) => !planJobs.some((j) => j.id === id));
  if (extra.length) log.warn(`merge: ${extra.length} job(s) not in the plan ignored (e.g. ${extra[0] ?? ''})`);
  if (missing.length)
    log.warn(
      `merge: ${missing.length} of ${planJobs.length} job(s) ran in no shard (e.g. ${missing[0] ?? ''}): a shard is missing or incomplete`,
    );

  const record = mergedRecord(inputs, first, nightlyId, jobs, missing.length === 0);
  await writeNightlyRecord(outDir, record);
  const fin = await finalizeNightly(outDir, record, {
    resultsRoot: resolve(opts.resultsRoot),
    views: opts.views,
    compare: opts.compare ?? true,
    ...(opts.baseline !== undefined ? { baseline: resolve(opts.baseline) } : {}),
    ...(opts.print !== undefined ? { print: opts.print } : {}),
    // The shards compared nothing: the merged night runs the plan's culprit loop (`bisect:`).
    bisect: {},
  });
  const code = nightlyExitCode(record, fin);
  return {
    ...fin,
    dir: outDir,
    record,
    missing,
    exitCode: missing.length > 0 && code === ExitCode.ok ? ExitCode.infra : code,
  };
}

/** Reads every shard's record; refuses shards of different plans, warns on mixed histories. */
async function readShards(dirs: readonly string[]): Promise<ShardInput[]> {
  if (dirs.length === 0) throw new UsageError('merge: name the shard directories to combine (faultline merge DIR...)');
  const inputs: ShardInput[] = [];
  for (const d of dirs) inputs.push({ dir: resolve(d), rec: await readNightlyRecord(resolve(d)) });
  const first = inputs[0];
  if (!first) throw new UsageError('merge: nothing to merge');
  for (const i of inputs) {
    if (i.rec.planHash !== first.rec.planHash) {
      throw new UsageError(
        `merge: ${i.dir} ran plan ${i.rec.planName} (${i.rec.planHash}) but ${first.dir} ran ${first.rec.planName} (${first.rec.planHash}): merge shards of one plan only`,
      );
    }
  }
  const fps = new Set(inputs.map((i) => i.rec.shard?.fingerprint).filter((f): f is string => f !== undefined));
  if (fps.size > 1)
    log.warn(
      `shards were assigned from different histories (fingerprints ${[...fps].join(', ')}); checking coverage job by job`,
    );
  return inputs;
}

/** Which shard owns each job: the one that finished it; a job finished by two shards is refused. */
function jobOwners(inputs: readonly ShardInput[]): Map<string, JobOwner> {
  const owner = new Map<string, JobOwner>();
  for (const i of inputs) {
    for (const job of i.rec.jobs) {
      const prev = owner.get(job.id);
      if (prev && prev.job.state === 'done' && job.state === 'done') {
        throw new UsageError(
          `merge: job ${job.id} ran in both ${prev.dir} and ${i.dir}: every shard must compute the same assignment (same plan, same --durations-from history) — or merge only one of them`,
        );
      }
      if (!prev || (prev.job.state !== 'done' && job.state === 'done')) owner.set(job.id, { dir: i.dir, job });
    }
  }
  return owner;
}

/** The merged night's id: --nightly-id, else --out's name, else the first shard's name without its shard suffix. */
function mergedNightlyId(firstDir: string, opts: MergeOptions): string {
  // The merged night is named after its own directory when --out names one (CI examples write
  // nightly-<run or date>); shard directories are often the same names every night (shard-1).
  return (
    opts.nightlyId ??
    (opts.outDir !== undefined
      ? basename(resolve(opts.outDir))
      : basename(firstDir).replace(/-shard\d+of\d+$/, '') + '-merged')
  );
}

/** Copies each plan job's run (and failed attempts) from its owning shard; jobs no shard finished stay pending. */
async function copyOwnedRuns(
  planJobs: readonly Job[],
  owner: ReadonlyMap<string, JobOwner>,
  outDir: string,
): Promise<{ jobs: NightlyJobState[]; missing: string[] }> {
  const jobs: NightlyJobState[] = [];
  const missing: string[] = [];
  for (const pj of planJobs) {
    const o = owner.get(pj.id);
    if (!o || o.job.state !== 'done' || o.job.runDir === undefined) {
      missing.push(pj.id);
      jobs.push({ ...pj, state: 'pending', attempts: o?.job.attempts ?? 0 });
      continue;
    }
    const runDir = join('runs', basename(o.job.runDir));
    await cp(join(o.dir, o.job.runDir), join(outDir, runDir), { recursive: true, force: true });
    const failedAttempts: string[] = [];
    for (const fa of o.job.failedAttempts ?? []) {
      const to = join('runs', basename(fa));
      if (await exists(join(o.dir, fa))) await cp(join(o.dir, fa), join(outDir, to), { recursive: true, force: true });
      failedAttempts.push(to);
    }
    jobs.push({ ...o.job, runDir, ...(failedAttempts.length ? { failedAttempts } : {}) });
  }
  return { jobs, missing };
}

/** The merged night's record: the shards' time span, their hosts summed, the jobs as copied. */
function mergedRecord(
  inputs: readonly ShardInput[],
  first: ShardInput,
  nightlyId: string,
  jobs: NightlyJobState[],
  complete: boolean,
): NightlyRecord {
  const startedAt = inputs.map((i) => i.rec.startedAt).sort()[0] ?? new Date().toISOString();
  const finishedAt =
    inputs
      .map((i) => i.rec.finishedAt ?? '')
      .sort()
      .pop() || new Date().toISOString();
  return {
    schema: 'faultline.nightly/1',
    nightlyId,
    planName: first.rec.planName,
    planHash: first.rec.planHash,
    plan: first.rec.plan,
    mergedFrom: inputs.map((i) => i.rec.nightlyId),
    startedAt,
    finishedAt,
    complete,
    host: {
      hostname: [...new Set(inputs.map((i) => i.rec.host.hostname))].join(','),
      cpus: inputs.reduce((a, i) => a + i.rec.host.cpus, 0),
      memMiB: inputs.reduce((a, i) => a + i.rec.host.memMiB, 0),
      parallel: inputs.reduce((a, i) => a + i.rec.host.parallel, 0),
    },
    totalJobs: jobs.length,
    jobs,
    ...mergedCommits(inputs),
  };
}

/**
 * The commit each tree kernel tested, when every shard that pinned one pinned the same: shards
 * started while the branch moved tested two commits, and such a night has no one bad commit to
 * bisect to (that kernel is left out, with a warning).
 */
export function mergedCommits(inputs: readonly Pick<ShardInput, 'rec'>[]): Pick<NightlyRecord, 'commits'> {
  const seen = new Map<string, Set<string>>();
  for (const i of inputs)
    for (const [k, c] of Object.entries(i.rec.commits ?? {})) seen.set(k, (seen.get(k) ?? new Set()).add(c));
  const commits: Record<string, string> = {};
  for (const [k, cs] of seen) {
    const [only, ...others] = [...cs];
    if (only !== undefined && others.length === 0) commits[k] = only;
    else
      log.warn(
        `merge: the shards tested kernel ${k} at ${[...cs].map((c) => c.slice(0, 12)).join(' and ')}: not bisected`,
      );
  }
  return seen.size > 0 ? { commits } : {};
}
