/**
 * `faultline nightly`: expand a plan into jobs, pick this machine's shard, prepare each distinct
 * kernel once, run the jobs on a bounded pool of guests (an infra error is retried once), keep
 * nightly.json as the resume state, then index the runs, compare with the previous night and
 * write the reports.
 */
import { hostname, availableParallelism, totalmem } from 'node:os';
import { mkdir, readdir } from 'node:fs/promises';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newRunRecord, readRunRecord, writeRunRecord } from '../results/record.js';
import type { RunRecord } from '../results/types.js';
import { SHIPPED_KNOWN_ISSUES } from '../results/known-issues.js';
import type { AccelRequest, RunRequest, RunViewWriter } from '../run/request.js';
import { ExitCode, FaultlineError, UsageError, errorMessage, type ExitCodeValue } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fsutil.js';
import { run, tail, which } from '../util/proc.js';
import { log } from '../util/log.js';
import { pastDurations, readHistory, type HistoryEntry } from '../history/index.js';
import { JOB_GO_FILE, JOB_REQUEST_FILE, writeJobRequest } from './job-request.js';
import { finalizeNightly, type FinalizeResult, type NightlyViews } from './finalize.js';
import { earlierCulpritIssues, earlierNightEntries } from './culprit-known-issues.js';
import { PROGRAM_JOB, expandJobs, selectShard } from './jobs.js';
import {
  defaultKernelPreparer,
  prepareKernels,
  resolveKernelCommit,
  type KernelPreparer,
  type PreparedKernel,
} from './kernels.js';
import { planHash, readPlan } from './plan.js';
import type { Job, Plan, ShardSpec } from '../results/nightly.js';
import { defaultParallelism, runPool } from './pool.js';
import {
  readNightlyRecord,
  writeNightlyRecord,
  NIGHTLY_FILE,
  type NightlyJobState,
  type NightlyRecord,
} from '../results/nightly.js';

export interface JobContext {
  /** Parent of the run directory (runTests' resultsRoot). */
  resultsRoot: string;
  runId: string;
  attempt: number;
  signal: AbortSignal;
  kernel: PreparedKernel;
  /**
   * Resolves when the job may start its guest (the job before it in its lane is done); until
   * then it may prepare and load its guest paused. Absent: at once.
   */
  turn?: Promise<void>;
}

/** Runs one job and returns its record and run directory. The real one boots a guest via runTests. */
export type JobExecutor = (job: Job, ctx: JobContext) => Promise<{ record: RunRecord; dir: string }>;

export interface NightlyOptions {
  planFile: string;
  /** The files each run and the night are shown as (report/'s NIGHTLY_VIEWS from the CLI). */
  views: NightlyViews;
  /** Parsed plan (tests); read from planFile otherwise. */
  plan?: Plan;
  /**
   * Known-issues files every job applies besides the plan's `known_issues:` and earlier nights'
   * culprits (`--known-issues`, `--no-known-issues`); default: the shipped list.
   */
  knownIssues?: readonly string[];
  resultsRoot: string;
  /** The nightly's directory (default results/nightly/<id>). */
  outDir?: string;
  nightlyId?: string;
  parallel?: number;
  shard?: ShardSpec;
  resume?: boolean;
  /** Results root whose history balances shards (default: resultsRoot). Every shard must see the same one. */
  durationsFrom?: string;
  accel?: AccelRequest;
  aptOptions?: string[];
  /** Boot every job's guest instead of restoring a snapshot of the first ready one. */
  noSnapshot?: boolean;
  /**
   * Start each job while the one before it in its lane runs, its guest loaded from the snapshot
   * and paused until its turn (default true; the real executor only).
   */
  ahead?: boolean;
  /** Explicit nightly directory to compare against (default: the previous complete nightly of the plan). */
  baseline?: string;
  compare?: boolean;
  executor?: JobExecutor;
  kernelPreparer?: KernelPreparer;
  signal?: AbortSignal;
  /** Print progress lines (default true). */
  progress?: boolean;
  /** Print the final summary to stdout (default true). */
  print?: boolean;
}

export interface NightlyOutcome extends FinalizeResult {
  dir: string;
  record: NightlyRecord;
  exitCode: ExitCodeValue;
}

/** The job runner script: compiled .js under dist/, the .ts source under tsx/tap. */
function jobChildPath(): string {
  const self = fileURLToPath(import.meta.url);
  return join(dirname(self), `job-child${extname(self)}`);
}

/**
 * Runs each job's runTests in a child process (job-child.ts): one job's crash, hang or stray
 * exception stays in that job (reported as its infrastructure error, retried once) and each run
 * keeps its own log. The child's output goes to <run dir>/nightly-job.log.
 */
function realExecutor(plan: Plan, opts: NightlyOptions, knownIssues: (job: Job) => string[]): JobExecutor {
  const accel = opts.accel ?? 'auto';
  const aptOptions = opts.aptOptions ?? [];
  const noSnapshot = opts.noSnapshot === true;
  return async (job, ctx) => {
    const req: RunRequest = {
      kernel: ctx.kernel.spec,
      // The tree goes along with prebuilt selftests: programs: are compiled against its headers.
      ...(ctx.kernel.selftestsDir !== undefined ? { selftestsDir: ctx.kernel.selftestsDir } : {}),
      ...(ctx.kernel.selftestsTree !== undefined ? { selftestsTree: ctx.kernel.selftestsTree } : {}),
      ...(job.suite === PROGRAM_JOB ? { suites: [], programs: plan.programs ?? [] } : { suites: [job.suite] }),
      backings: [job.backing],
      memMiB: plan.memMiB,
      smp: plan.smp,
      accel,
      guestRam: job.guestRam,
      timeoutSec: job.timeoutSec,
      bootTimeoutSec: plan.bootTimeoutSec,
      resultsRoot: ctx.resultsRoot,
      runId: ctx.runId,
      quick: plan.quick,
      ...(plan.filter !== undefined ? { filter: plan.filter } : {}),
      keepVm: false,
      retries: plan.retries,
      knownIssues: knownIssues(job),
      numaNodes: plan.numaNodes,
      hugepages2m: plan.hugepages2m,
      hugepages1g: plan.hugepages1g,
      aptOptions: [...aptOptions],
      ...(plan.cmdline !== undefined ? { cmdline: plan.cmdline } : {}),
      ...(noSnapshot ? { noSnapshot } : {}),
    };
    const dir = join(ctx.resultsRoot, ctx.runId);
    await mkdir(dir, { recursive: true });
    const reqFile = join(dir, JOB_REQUEST_FILE);
    await writeJobRequest(reqFile, req);
    // Last-resort deadline: runTests has its own per-test and boot deadlines well inside this;
    // a job that waits for its turn may wait as long as the job before it runs.
    const ownMs = (plan.bootTimeoutSec + 8 * job.timeoutSec + 1800) * 1000;
    const timeoutMs = ctx.turn ? 2 * ownMs : ownMs;
    const goFile = ctx.turn ? join(dir, JOB_GO_FILE) : undefined;
    if (ctx.turn && goFile) void letGo(ctx.turn, goFile, ctx.signal);
    // kill -9 of the nightly must take its guests along: the job process gets SIGKILL when its
    // parent dies (and QEMU in turn, through runTests' own pdeathsig).
    const argv = [process.execPath, ...process.execArgv, jobChildPath(), reqFile, ...(goFile ? [goFile] : [])];
    const setpriv = await which('setpriv');
    const [cmd, ...args] = setpriv ? [setpriv, '--pdeathsig', 'SIGKILL', ...argv] : argv;
    const r = await run(cmd ?? process.execPath, args, {
      timeoutMs,
      cwd: process.cwd(),
      logFile: join(dir, 'nightly-job.log'),
      allowFailure: true,
    }).catch((e: unknown) => {
      throw new FaultlineError(
        `job process for ${job.id}: ${errorMessage(e)}`,
        e instanceof FaultlineError && e.detail ? { detail: e.detail } : {},
      );
    });
    const resultsFile = join(dir, 'results.json');
    if (!(await exists(resultsFile))) {
      throw new FaultlineError(`job ${job.id} ended (exit ${r.exitCode}) without results.json`, {
        detail: tail(r.all, 30),
      });
    }
    return { record: await readRunRecord(resultsFile), dir };
  };
}

/** Tell a job waiting for its turn (job-child.ts) to start once `turn` comes, or to stop if the night was stopped. */
async function letGo(turn: Promise<void>, goFile: string, signal: AbortSignal): Promise<void> {
  let onAbort = (): void => undefined;
  const stop = new Promise<void>((r) => (onAbort = r));
  signal.addEventListener('abort', onAbort, { once: true });
  await Promise.race([turn, stop]);
  signal.removeEventListener('abort', onAbort);
  await writeFileAtomic(goFile, signal.aborted ? 'stop\n' : 'go\n').catch((e: unknown) =>
    log.warn(`letting ${goFile} go failed: ${errorMessage(e)}`),
  );
}

/**
 * The known-issues files a job applies: the given ones (default: the shipped list), the plan's,
 * and the culprits earlier nights bisected for its kernel and config.
 */
async function knownIssuesOf(
  plan: Plan,
  opts: NightlyOptions,
  history: HistoryEntry[],
  record: NightlyRecord,
  resultsRoot: string,
): Promise<(job: Job) => string[]> {
  // Only the directories: the culprit files are beside nightly.json, which need not be read.
  const earlier = earlierNightEntries(history, record).map((n) => ({ dir: join(resultsRoot, n.dir) }));
  const culpritIssues = await earlierCulpritIssues(earlier);
  const given = opts.knownIssues ?? [SHIPPED_KNOWN_ISSUES];
  return (job) => [...given, ...(plan.knownIssues ?? []), ...culpritIssues(job)];
}

/** A results.json for a job that never produced one (kernel did not build, harness threw): no guest to tell of. */
function infraErrorRecord(job: Job, runId: string, message: string, kernelPath = job.kernel): RunRecord {
  return newRunRecord({
    runId,
    startedAt: new Date().toISOString(),
    kernel: { source: 'path', path: kernelPath },
    selftests: { source: 'none' },
    suites: [job.suite],
    backings: [job.backing],
    infraError: message,
  });
}

function defaultNightlyId(now: Date, shard?: ShardSpec): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `nightly-${stamp}${shard ? `-shard${shard.index}of${shard.count}` : ''}`;
}

/** The newest incomplete nightly of this plan and shard under resultsRoot/nightly. */
async function findResumable(resultsRoot: string, hash: string, shard?: ShardSpec): Promise<string | undefined> {
  const root = join(resultsRoot, 'nightly');
  let names: string[];
  try {
    names = (await readdir(root)).sort().reverse();
  } catch {
    return undefined;
  }
  for (const n of names) {
    const dir = join(root, n);
    if (!(await exists(join(dir, NIGHTLY_FILE)))) continue;
    try {
      const rec = await readNightlyRecord(dir);
      const sameShard =
        (rec.shard?.index ?? 0) === (shard?.index ?? 0) && (rec.shard?.count ?? 0) === (shard?.count ?? 0);
      if (!rec.complete && rec.planHash === hash && sameShard) return dir;
    } catch {
      /* not resumable */
    }
  }
  return undefined;
}

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s}s`;
  const m = Math.round(s / 60);
  return m < 90 ? `${m}m` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export async function runNightly(opts: NightlyOptions): Promise<NightlyOutcome> {
  const plan = opts.plan ?? (await readPlan(opts.planFile));
  const resultsRoot = resolve(opts.resultsRoot);
  // Read once: a new night's shard balance and tonight's culprit known issues both come from it.
  const history = await readHistory(resultsRoot);
  const { dir, record } = await openNightly(opts, plan, resultsRoot, history);
  await mkdir(join(dir, 'runs'), { recursive: true });

  const par = parallelismOf(opts, plan);
  record.host.parallel = par;

  const store = new NightlyStore(dir, record);
  await store.save();

  const pending = record.jobs.filter((j) => j.state === 'pending');
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  // Build/download each distinct kernel once, before any guest starts, at the commits pinned for tonight.
  const commits = await pinCommits(plan, record.commits);
  if (Object.keys(commits).length > 0) {
    record.commits = commits;
    await store.save();
  }
  const prepared =
    pending.length > 0
      ? await prepareKernels(plan, pending, opts.kernelPreparer ?? defaultKernelPreparer(opts.aptOptions), commits)
      : new Map<string, PreparedKernel | { error: string }>();
  const executor =
    opts.executor ?? realExecutor(plan, opts, await knownIssuesOf(plan, opts, history, record, resultsRoot));
  const runner = new JobRunner({
    store,
    prepared,
    executor,
    signal: controller.signal,
    progress: opts.progress ?? true,
    views: opts.views.run,
  });

  if (pending.length > 0) {
    log.info(`nightly ${record.nightlyId}: ${pending.length} job(s) to run, ${par} in parallel; results in ${dir}`);
    // Jobs ahead of their turn only with the real executor: it gates them (an injected one would run at once).
    const ahead = opts.executor === undefined && opts.ahead !== false && opts.noSnapshot !== true;
    const outcomes = await runPool(
      pending,
      par,
      (job, _slot, turn) => runner.runJob(job, turn),
      controller.signal,
      ahead,
    );
    for (const o of outcomes) if (o.error !== undefined) log.warn(`${o.item.id}: ${errorMessage(o.error)}`);
  }
  opts.signal?.removeEventListener('abort', onAbort);
  await store.saved();

  if (controller.signal.aborted || record.jobs.some((j) => j.state !== 'done')) {
    const left = record.jobs.filter((j) => j.state !== 'done').length;
    throw new FaultlineError(
      `nightly interrupted with ${left} job(s) left: continue with 'faultline nightly --plan ${opts.planFile} --resume${opts.shard ? ` --shard ${opts.shard.index}/${opts.shard.count}` : ''}'`,
    );
  }
  record.complete = true;
  record.finishedAt = new Date().toISOString();
  await store.save();
  await store.saved();

  const fin = await finalizeNightly(dir, record, {
    resultsRoot,
    views: opts.views,
    ...(opts.baseline !== undefined ? { baseline: resolve(opts.baseline) } : {}),
    compare: opts.compare ?? (record.shard === undefined || opts.baseline !== undefined),
    ...(opts.print !== undefined ? { print: opts.print } : {}),
    bisect: opts.accel !== undefined ? { accel: opts.accel } : {},
  });
  // The culprit loop's outcomes are information: the night's verdict stays its jobs' and comparison's.
  return { ...fin, dir, record, exitCode: nightlyExitCode(record, fin) };
}

/** Guests run at once: --parallel, else what the host's cores and memory allow (said in the log). */
function parallelismOf(opts: Pick<NightlyOptions, 'parallel'>, plan: Plan): number {
  if (opts.parallel !== undefined) return opts.parallel;
  const auto = defaultParallelism(plan.memMiB, plan.guestRam.includes('hugetlb'));
  log.info(auto.why);
  return auto.jobs;
}

/** Tonight's commit of each tree kernel with a `ref:`: the ones already pinned (--resume), else the ref's now. */
async function pinCommits(plan: Plan, pinned: Readonly<Record<string, string>> = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = { ...pinned };
  for (const k of plan.kernels) {
    if (out[k.name] !== undefined) continue;
    const commit = await resolveKernelCommit(k);
    if (commit !== undefined) out[k.name] = commit;
  }
  return out;
}

/** The nightly to run: the interrupted one (--resume), or a new one of this machine's shard of the plan's jobs. */
async function openNightly(
  opts: NightlyOptions,
  plan: Plan,
  resultsRoot: string,
  history: readonly HistoryEntry[],
): Promise<{ dir: string; record: NightlyRecord }> {
  const hash = planHash(plan);
  const resumeDir = opts.resume
    ? opts.outDir
      ? resolve(opts.outDir)
      : await findResumable(resultsRoot, hash, opts.shard)
    : undefined;
  if (opts.resume && resumeDir === undefined)
    throw new UsageError(
      `--resume: no interrupted nightly of plan '${plan.name}' under ${join(resultsRoot, 'nightly')}: run without --resume to start one`,
    );
  if (resumeDir !== undefined) {
    const record = await readNightlyRecord(resumeDir);
    if (record.planHash !== hash)
      throw new UsageError(
        `--resume: ${resumeDir} was started from a different plan (hash ${record.planHash}, now ${hash}): resume with the same plan file or start a new nightly`,
      );
    if (record.complete) throw new UsageError(`--resume: ${resumeDir} is already complete`);
    const done = record.jobs.filter((j) => j.state === 'done').length;
    log.info(`resuming ${record.nightlyId}: ${done}/${record.jobs.length} jobs already done`);
    return { dir: resumeDir, record };
  }
  const allJobs = expandJobs(plan);
  const durationsHistory = opts.durationsFrom !== undefined ? await readHistory(resolve(opts.durationsFrom)) : history;
  const durations = pastDurations(durationsHistory, plan.name);
  let jobs: Job[] = allJobs;
  let shardInfo: NightlyRecord['shard'];
  if (opts.shard) {
    const sel = selectShard(allJobs, opts.shard, durations);
    jobs = sel.jobs;
    shardInfo = { ...opts.shard, fingerprint: sel.assignment.fingerprint, balanced: sel.assignment.balanced };
    log.info(
      `shard ${opts.shard.index}/${opts.shard.count}: ${jobs.length} of ${allJobs.length} jobs (${sel.assignment.balanced ? 'balanced by past durations' : 'no history: round-robin'}; assignment ${sel.assignment.fingerprint})`,
    );
  }
  const nightlyId = opts.nightlyId ?? defaultNightlyId(new Date(), opts.shard);
  const dir = opts.outDir ? resolve(opts.outDir) : join(resultsRoot, 'nightly', nightlyId);
  if (await exists(join(dir, NIGHTLY_FILE)))
    throw new UsageError(`${dir} already holds a nightly: pass --resume to continue it, or another --out`);
  const record: NightlyRecord = {
    schema: 'faultline.nightly/1',
    nightlyId,
    planName: plan.name,
    planHash: hash,
    plan,
    ...(shardInfo ? { shard: shardInfo } : {}),
    startedAt: new Date().toISOString(),
    complete: false,
    host: { hostname: hostname(), cpus: availableParallelism(), memMiB: Math.round(totalmem() / 1048576), parallel: 0 },
    totalJobs: allJobs.length,
    jobs: jobs.map((j): NightlyJobState => ({ ...j, state: 'pending', attempts: 0 })),
  };
  return { dir, record };
}

/** nightly.json, the resume state: writes are queued so concurrent jobs never interleave them. */
class NightlyStore {
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    readonly record: NightlyRecord,
  ) {}

  /** Queue a write of the record as it is now. */
  save(): Promise<void> {
    const snapshot = JSON.parse(JSON.stringify(this.record)) as NightlyRecord;
    this.saving = this.saving.then(() => writeNightlyRecord(this.dir, snapshot));
    return this.saving;
  }

  /** Resolves when every queued write has landed. */
  saved(): Promise<void> {
    return this.saving;
  }
}

/** Runs the nightly's jobs (one at a time each, many at once overall) and keeps the progress count. */
class JobRunner {
  private readonly store: NightlyStore;
  private readonly prepared: ReadonlyMap<string, PreparedKernel | { error: string }>;
  private readonly executor: JobExecutor;
  private readonly signal: AbortSignal;
  private readonly progress: boolean;
  private readonly views: RunViewWriter;
  private readonly total: number;
  private readonly t0 = Date.now();
  private doneCount: number;
  private finishedThisSession = 0;
  private running = 0;

  constructor(init: {
    store: NightlyStore;
    prepared: ReadonlyMap<string, PreparedKernel | { error: string }>;
    executor: JobExecutor;
    signal: AbortSignal;
    progress: boolean;
    views: RunViewWriter;
  }) {
    this.views = init.views;
    this.store = init.store;
    this.prepared = init.prepared;
    this.executor = init.executor;
    this.signal = init.signal;
    this.progress = init.progress;
    this.total = init.store.record.jobs.length;
    this.doneCount = init.store.record.jobs.filter((j) => j.state === 'done').length;
  }

  /** Run ids are unique across nights (history, KCIDB test ids and merges key on them). */
  private runIdFor(job: Job, attempt: number): string {
    return `${this.store.record.nightlyId}.${job.id}.try${attempt}`;
  }

  /** Run the job (its first attempt once `turn` comes: it may get ready before). */
  async runJob(job: NightlyJobState, turn?: Promise<void>): Promise<void> {
    const kernel = this.prepared.get(job.buildKey);
    const runsRoot = join(this.store.dir, 'runs');
    if (!kernel || 'error' in kernel) {
      const runId = this.runIdFor(job, job.attempts + 1);
      job.attempts++;
      const rec = infraErrorRecord(
        job,
        runId,
        kernel && 'error' in kernel ? kernel.error : `kernel ${job.kernel} was not prepared`,
      );
      const runDir = join(runsRoot, runId);
      await mkdir(runDir, { recursive: true });
      await this.writeViews(runDir, rec);
      await writeRunRecord(runDir, rec);
      await this.finishJob(job, rec, runDir);
      return;
    }
    // An infrastructure error (guest died, hung, SSH lost) is retried once; the failed attempt is kept.
    for (;;) {
      if (this.signal.aborted) return;
      job.attempts++;
      const runId = this.runIdFor(job, job.attempts);
      // A job started ahead counts as running from its turn on.
      let counted = false;
      const count = (): void => void ((counted = true), this.running++);
      if (turn && job.attempts === 1) void turn.then(count);
      else count();
      let rec: RunRecord;
      let runDir: string;
      try {
        const out = await this.executor(job, {
          resultsRoot: runsRoot,
          runId,
          attempt: job.attempts,
          signal: this.signal,
          kernel,
          ...(turn && job.attempts === 1 ? { turn } : {}),
        });
        rec = out.record;
        runDir = out.dir;
      } catch (e) {
        if (this.signal.aborted) {
          if (counted) this.running--;
          return;
        }
        const detail = e instanceof FaultlineError && e.detail ? `\n${e.detail}` : '';
        rec = infraErrorRecord(
          job,
          runId,
          `${errorMessage(e)}${detail}`.slice(0, 4000),
          kernel.spec.kind === 'path'
            ? kernel.spec.bzImage
            : kernel.spec.kind === 'debian'
              ? `debian ${kernel.spec.series}`
              : kernel.spec.kernelSrc,
        );
        runDir = join(runsRoot, runId);
        await mkdir(runDir, { recursive: true });
        await writeRunRecord(runDir, rec);
      }
      if (counted) this.running--;
      // Interrupted (Ctrl-C reaches the guests too): leave the job pending for --resume.
      if (rec.infraError !== undefined && this.signal.aborted) return;
      // The job's process (or the executor) left results.json; the run's views go beside it.
      await this.writeViews(runDir, rec);
      if (rec.infraError !== undefined && job.attempts < 2) {
        log.warn(`${job.id}: infrastructure error (${rec.infraError.split('\n')[0] ?? ''}); retrying once`);
        job.failedAttempts = [...(job.failedAttempts ?? []), relative(this.store.dir, runDir)];
        await this.store.save();
        continue;
      }
      await this.finishJob(job, rec, runDir);
      return;
    }
  }

  /** A run's views are derived from its record: one that cannot be written costs the view, not the job. */
  private async writeViews(runDir: string, rec: RunRecord): Promise<void> {
    await this.views(runDir, rec).catch((e: unknown) =>
      log.warn(`${rec.runId}: its views (TAP, JUnit, latency page) were not written: ${errorMessage(e)}`),
    );
  }

  private async finishJob(job: NightlyJobState, rec: RunRecord, runDir: string): Promise<void> {
    job.state = 'done';
    job.runDir = relative(this.store.dir, runDir);
    job.verdict = rec.verdict;
    job.durationMs = rec.durationMs;
    job.finishedAt = new Date().toISOString();
    if (rec.infraError !== undefined) job.infraError = rec.infraError;
    else delete job.infraError;
    this.doneCount++;
    this.finishedThisSession++;
    await this.store.save();
    if (this.progress) {
      const { doneCount, total, running } = this;
      const elapsed = Date.now() - this.t0;
      const left = total - doneCount;
      const eta =
        this.finishedThisSession > 0 && left > 0
          ? ` ETA ${fmtDuration((elapsed / this.finishedThisSession) * left)}`
          : '';
      const s = rec.summary;
      log.info(
        `[${doneCount}/${total}] ${job.id}: ${rec.verdict.toUpperCase()} (${s.pass} pass, ${s.fail} fail, ${s.skip} skip, ${s.error} error${rec.splats.length ? `, ${rec.splats.length} splat(s)` : ''}) in ${fmtDuration(rec.durationMs)}${rec.infraError ? ` — ${rec.infraError}` : ''};${failingText(rec)}${running > 0 ? ` ${running} running;` : ''}${eta}`,
      );
    }
  }
}

/** The first few subtests that failed the job, with their reasons: a red line names its cause. */
function failingText(rec: RunRecord): string {
  const failing = rec.subtests.filter((t) => (t.status === 'fail' || t.status === 'error') && t.known === undefined);
  if (failing.length === 0) return '';
  const shown = failing.slice(0, 3).map((t) => `${t.id}${t.reason ? ` (${t.reason.slice(0, 160)})` : ''}`);
  const more = failing.length > shown.length ? `, and ${failing.length - shown.length} more` : '';
  return ` failing: ${shown.join('; ')}${more};`;
}

/** 1 when a job failed or anything regressed against the baseline; 2 when only infrastructure broke; else 0. */
export function nightlyExitCode(record: NightlyRecord, fin: Pick<FinalizeResult, 'comparison'>): ExitCodeValue {
  if (record.jobs.some((j) => j.verdict === 'fail') || fin.comparison?.regressed) return ExitCode.testFailure;
  if (record.jobs.some((j) => j.verdict === 'error')) return ExitCode.infra;
  return ExitCode.ok;
}
