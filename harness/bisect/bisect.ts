import { mkdir, realpath, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BuildBrokenError, ExitCode, FaultlineError, UsageError } from '../util/errors.js';
import { exists, sha256, writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { Git, type BisectProgress } from '../vcs/git.js';
import { log } from '../util/log.js';
import { DEFAULT_POLICY, confidenceOf, decide, estimateRates, passThreshold, tallyOf } from './policy.js';
import { readBisectRecord, readBisectState, type BisectState } from './record.js';
import type {
  BisectCommand,
  BisectRecord,
  CommitSummary,
  RunObservation,
  RunPolicy,
  StepOutcome,
  StepRecord,
  StepRole,
  StepTester,
} from './types.js';

export interface BisectOptions {
  /** The user's kernel (or any) git checkout; never modified apart from a linked worktree. */
  repo: string;
  good: string;
  bad: string;
  /** The test spec as written (goes into the record and the resume key). */
  spec: string;
  resultsDir: string;
  /** Where the linked worktree goes (default <resultsDir>/worktree). */
  worktree?: string;
  keepWorktree?: boolean;
  policy?: Partial<RunPolicy>;
  verifyRevert?: boolean;
  firstParent?: boolean;
  /** Safety net against a runaway loop (default: range size + 8). */
  maxSteps?: number;
  /** The command line that started the bisect, kept in the record for reproduction. */
  command?: BisectCommand;
  /**
   * Called once with a verified culprit, before the worktree is removed: the worktree (checked
   * out at the culprit) still holds the tree's scripts and the builds' obj dirs.
   */
  onVerifiedCulprit?: (record: BisectRecord, worktree: string) => Promise<void>;
}

/** The endpoints do not behave as claimed: nothing to bisect. Exit 2 (bad input). */
export class BisectRefusedError extends FaultlineError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.infra });
    this.name = 'BisectRefusedError';
  }
}

const STATE = 'state.json';
const RESULTS = 'results.json';
const LOG = 'bisect-log.txt';

function short(rev: string): string {
  return rev.slice(0, 12);
}

function runsText(runs: readonly RunObservation[]): string {
  const t = tallyOf(runs);
  return `${t.fail}/${t.pass + t.fail} runs failed`;
}

function summaryOf(c: {
  hash: string;
  subject: string;
  authorName: string;
  authorEmail: string;
  authorDate: string;
}): CommitSummary {
  return {
    hash: c.hash,
    subject: c.subject,
    authorName: c.authorName,
    authorEmail: c.authorEmail,
    authorDate: c.authorDate,
  };
}

/**
 * Bisect good..bad with real `git bisect` in a linked worktree, testing each revision with the
 * injected tester. Resumes from <resultsDir>/state.json when it exists with the same parameters.
 * Resolves with the results record; rejects with BisectRefusedError when the endpoints are wrong.
 */
export async function runBisect(opts: BisectOptions, tester: StepTester): Promise<BisectRecord> {
  const policy: RunPolicy = { ...DEFAULT_POLICY, ...opts.policy };
  if (policy.failThreshold > policy.runs) {
    throw new UsageError(
      `--fail-threshold ${policy.failThreshold} is larger than the runs per step (${policy.runs}): lower it or raise --runs/--max-runs`,
    );
  }
  const userGit = new Git(opts.repo);
  const range = await checkRange(opts, userGit);
  const resultsDir = resolve(opts.resultsDir);
  await mkdir(resultsDir, { recursive: true });
  const statePath = join(resultsDir, STATE);
  const loaded = await loadState({ opts, tester, policy, userGit, resultsDir, statePath, ...range });
  if ('finished' in loaded) return loaded.finished;
  const { state } = loaded;
  await writeJsonAtomic(statePath, state);

  const { git: wt, fresh } = await ensureWorktree(userGit, state.worktree, range.bad);
  const session = new BisectSession({ opts, tester, policy, userGit, wt, state, resultsDir, statePath });
  // One git log instead of one git show per step.
  for (const c of await wt.log(`${range.good}..${range.bad}`, { reverse: false }))
    session.subjects.set(c.hash, c.subject);

  let startProgress: BisectProgress | undefined;
  if (state.phase === 'endpoints') startProgress = await checkEndpoints(session, fresh);
  if (state.phase === 'bisecting') await bisectSteps(session, startProgress);
  const verification =
    state.phase === 'verifying' && state.found?.kind === 'culprit'
      ? await verifyCulprit(session, state.found.rev)
      : undefined;
  return writeResults(session, verification);
}

/** The endpoints as commits of a real checkout, good an ancestor of bad. */
async function checkRange(opts: BisectOptions, userGit: Git): Promise<{ repo: string; good: string; bad: string }> {
  if (!(await exists(opts.repo)) || !(await userGit.isRepo())) {
    throw new UsageError(`${opts.repo} is not a git checkout: pass the kernel tree with --kernel-src`);
  }
  const repo = await realpath(opts.repo);
  const good = await userGit.resolveCommit(opts.good);
  const bad = await userGit.resolveCommit(opts.bad);
  if (good === bad) throw new UsageError(`--good and --bad are the same commit ${short(good)}: nothing to bisect`);
  if (!(await userGit.isAncestor(good, bad))) {
    throw new UsageError(
      `--good ${opts.good} (${short(good)}) is not an ancestor of --bad ${opts.bad} (${short(bad)}): pass a good revision older than the bad one`,
    );
  }
  return { repo, good, bad };
}

/** The saved state of this bisect (same parameters), its finished results, or a fresh state. */
async function loadState(o: {
  opts: BisectOptions;
  tester: StepTester;
  policy: RunPolicy;
  userGit: Git;
  resultsDir: string;
  statePath: string;
  repo: string;
  good: string;
  bad: string;
}): Promise<{ state: BisectState } | { finished: BisectRecord }> {
  const { opts, policy, resultsDir, statePath, repo, good, bad } = o;
  const key = sha256(
    JSON.stringify({
      repo,
      good,
      bad,
      spec: opts.spec,
      policy,
      verifyRevert: opts.verifyRevert === true,
      firstParent: opts.firstParent === true,
    }),
  );
  if (await exists(statePath)) {
    const state = await readBisectState(statePath);
    if (state.key !== key) {
      throw new UsageError(
        `${resultsDir} holds a different bisect (${short(state.good)}..${short(state.bad)} ${state.spec}): use another --results-dir or delete it`,
      );
    }
    if (state.phase === 'done' && (await exists(join(resultsDir, RESULTS)))) {
      log.info(`bisect already finished in ${resultsDir}: reporting its results`);
      return { finished: await readBisectRecord(join(resultsDir, RESULTS)) };
    }
    log.info(`resuming bisect in ${resultsDir} (phase ${state.phase}, ${state.steps.length} steps done)`);
    return { state };
  }
  return {
    state: {
      schema: 'faultline.bisect-state/1',
      key,
      repo,
      goodRef: opts.good,
      badRef: opts.bad,
      good,
      bad,
      spec: opts.spec,
      tester: o.tester.describe(),
      policy,
      ...(opts.command ? { command: opts.command } : {}),
      worktree: resolve(opts.worktree ?? join(resultsDir, 'worktree')),
      startedAt: new Date().toISOString(),
      phase: 'endpoints',
      rangeSize: await o.userGit.countCommits(`${good}..${bad}`),
      steps: [],
      bisectLog: '',
    },
  };
}

/** What every bisect phase shares: the options, the worktree, and the resumable state it saves. */
class BisectSession {
  readonly opts: BisectOptions;
  readonly tester: StepTester;
  readonly policy: RunPolicy;
  /** The user's checkout (owns the linked worktree). */
  readonly userGit: Git;
  /** The linked worktree git bisect runs in. */
  readonly wt: Git;
  readonly state: BisectState;
  readonly resultsDir: string;
  readonly statePath: string;
  readonly maxSteps: number;
  /** Commit subjects by hash, filled from one git log up front. */
  readonly subjects = new Map<string, string>();

  constructor(
    init: Pick<BisectSession, 'opts' | 'tester' | 'policy' | 'userGit' | 'wt' | 'state' | 'resultsDir' | 'statePath'>,
  ) {
    this.opts = init.opts;
    this.tester = init.tester;
    this.policy = init.policy;
    this.userGit = init.userGit;
    this.wt = init.wt;
    this.state = init.state;
    this.resultsDir = init.resultsDir;
    this.statePath = init.statePath;
    this.maxSteps = init.opts.maxSteps ?? init.state.rangeSize + 8;
  }

  save(): Promise<void> {
    return writeJsonAtomic(this.statePath, this.state);
  }

  async subjectOf(rev: string): Promise<string> {
    let s = this.subjects.get(rev);
    if (s === undefined) {
      s = (await this.wt.commit(rev)).subject;
      this.subjects.set(rev, s);
    }
    return s;
  }

  /** All runs seen at a revision (bisect + endpoint + verification steps), for pooled decisions. */
  pooledRuns(rev: string): RunObservation[] {
    return this.state.steps.filter((s) => s.rev === rev).flatMap((s) => s.runs);
  }

  bisectStepCount(): number {
    return this.state.steps.filter((s) => s.role === 'bisect').length;
  }

  async callTester(rev: string, runs: number, label: string): Promise<StepOutcome> {
    const t0 = Date.now();
    try {
      const o = await this.tester.test(rev, this.wt.dir, { runs, label });
      if (o.kind === 'runs' && o.runs.length === 0)
        return { kind: 'infra', detail: 'the tester returned no runs', durationMs: Date.now() - t0 };
      return o;
    } catch (e) {
      // Typed harness errors are outcomes; anything else (a bug, an interruption) propagates.
      if (e instanceof BuildBrokenError)
        return { kind: 'build-broken', detail: e.firstError || e.message, durationMs: Date.now() - t0 };
      if (e instanceof FaultlineError) return { kind: 'infra', detail: e.message, durationMs: Date.now() - t0 };
      throw e;
    }
  }

  /** Test one revision until the policy decides (or it must be skipped). */
  async testStep(
    role: StepRole,
    rev: string,
    fixed?: { runs: number; prior: readonly RunObservation[] },
  ): Promise<StepRecord> {
    const { state, policy } = this;
    const label = role === 'bisect' ? `step ${this.bisectStepCount() + 1}` : role;
    const subject = await this.subjectOf(rev);
    const p = state.pending?.rev === rev && state.pending.role === role ? state.pending : undefined;
    const pending = p ?? { role, rev, runs: [], infraErrors: [], startedAt: new Date().toISOString(), durationMs: 0 };
    state.pending = pending;
    const build: BuildTotals = {};
    const P = state.passThreshold ?? 1;
    for (;;) {
      const prior = fixed?.prior ?? [];
      const decision = decide(
        policy,
        P,
        tallyOf([...prior, ...pending.runs]),
        fixed ? fixed.runs + prior.length : undefined,
      );
      if ('verdict' in decision) {
        const verdict = decision.verdict;
        const rec = finishStep(
          role,
          rev,
          subject,
          pending,
          verdict,
          `${runsText([...prior, ...pending.runs])}${prior.length ? ` (${prior.length} earlier)` : ''}`,
          build,
        );
        rec.confidence = confidenceOf(verdict, tallyOf([...prior, ...pending.runs]), estimateRates(state.steps));
        return rec;
      }
      log.info(`${label}: testing ${short(rev)} ${subject} (${decision.more} run${decision.more === 1 ? '' : 's'})`);
      const t0 = Date.now();
      const o = await this.callTester(rev, decision.more, label);
      pending.durationMs += Date.now() - t0;
      const skipReason = absorbOutcome(o, pending, build, policy, label, rev);
      if (skipReason !== undefined) return finishStep(role, rev, subject, pending, 'skip', skipReason, build);
      await this.save();
    }
  }

  /** Record a finished step (and drop the pending runs) in one atomic state write. */
  async commitStep(step: StepRecord): Promise<void> {
    this.state.steps.push(step);
    delete this.state.pending;
    await this.save();
  }

  /** Test a revision with a fixed run budget (endpoints, verification) and record it as marked. */
  async testFixedStep(
    role: StepRole,
    rev: string,
    runs: number,
    prior: readonly RunObservation[],
  ): Promise<StepRecord> {
    const step = await this.testStep(role, rev, { runs, prior });
    step.marked = true;
    await this.commitStep(step);
    return step;
  }

  async refuse(message: string): Promise<never> {
    const record = buildRecord(this.state, { outcome: 'refused', refusal: message });
    await writeJsonAtomic(join(this.resultsDir, RESULTS), record);
    // No resumable state: running again re-tests the endpoints (the cause may have been fixed).
    await rm(this.statePath, { force: true });
    await this.wt.bisectReset();
    if (!this.opts.keepWorktree) await this.userGit.worktreeRemove(this.wt.dir);
    throw new BisectRefusedError(message);
  }
}

/** Build time and cache use summed over a step's tester calls (absent until a call reports them). */
interface BuildTotals {
  buildMs?: number;
  cacheHit?: boolean;
}

/** Fold one tester outcome into the pending step; returns why the step must be skipped, if it must. */
function absorbOutcome(
  o: StepOutcome,
  pending: NonNullable<BisectState['pending']>,
  build: BuildTotals,
  policy: RunPolicy,
  label: string,
  rev: string,
): string | undefined {
  switch (o.kind) {
    case 'runs':
      pending.runs.push(...o.runs);
      if (o.buildMs !== undefined) build.buildMs = (build.buildMs ?? 0) + o.buildMs;
      if (o.cacheHit !== undefined)
        build.cacheHit = build.cacheHit === undefined ? o.cacheHit : build.cacheHit && o.cacheHit;
      return undefined;
    case 'infra':
      pending.infraErrors.push(o.detail);
      log.warn(`${label}: infra error at ${short(rev)}: ${o.detail}`);
      return pending.infraErrors.length > policy.infraRetries
        ? `infra error after ${pending.infraErrors.length} attempts: ${o.detail}`
        : undefined;
    case 'build-broken':
      return `build broken: ${o.detail}`;
    case 'boot-failed':
      return `boot failed: ${o.detail}`;
    case 'untestable':
      return `not testable here: ${o.detail}`;
    case 'program-broken':
      return `program does not compile here (the kernel builds): ${o.detail}`;
  }
}

function finishStep(
  role: StepRole,
  rev: string,
  subject: string,
  pending: NonNullable<BisectState['pending']>,
  verdict: StepRecord['verdict'],
  reason: string,
  build: BuildTotals,
): StepRecord {
  const rec: StepRecord = {
    role,
    rev,
    subject,
    verdict,
    reason,
    confidence: 0,
    runs: pending.runs,
    infraErrors: pending.infraErrors,
    durationMs: pending.durationMs,
    startedAt: pending.startedAt,
    marked: false,
    ...(build.buildMs !== undefined ? { buildMs: build.buildMs } : {}),
    ...(build.cacheHit !== undefined ? { cacheHit: build.cacheHit } : {}),
  };
  log.info(`${role === 'bisect' ? 'step' : role} ${short(rev)}: ${verdict} (${reason})`);
  return rec;
}

/**
 * Why an endpoint refuses the bisect. A verdict says what was run (suite, filter, backings, in
 * `tester`, and the runs): "passes --splat WARN" after anon alone is no proof that the bad
 * revision does not WARN, on shmem.
 */
export function endpointRefusal(o: {
  expect: 'good' | 'bad';
  step: Pick<StepRecord, 'rev' | 'subject' | 'verdict' | 'reason'>;
  spec: string;
  tester: string;
}): string {
  const { expect, step, spec } = o;
  const named = `${expect} revision ${short(step.rev)} ("${step.subject}")`;
  const ran = `each run: ${o.tester}`;
  if (step.verdict === 'skip') return `${named} cannot be tested: ${step.reason}`;
  return expect === 'good'
    ? `${named} fails ${spec} (${step.reason}; ${ran}): pick an older --good, or raise --fail-threshold if the test is flaky there`
    : `${named} passes ${spec} (${step.reason}; ${ran}): pick a newer --bad, run what fails there (--suite, --filter, --backing), or check that the spec names the failing test`;
}

/**
 * Phase 1: check that good passes and bad fails (refusing otherwise), then start git bisect.
 * Returns git's first answer so the next phase need not replay the log.
 */
async function checkEndpoints(session: BisectSession, fresh: boolean): Promise<BisectProgress> {
  const { state, policy, wt } = session;
  for (const [role, rev, expect] of [
    ['good-endpoint', state.good, 'good'],
    ['bad-endpoint', state.bad, 'bad'],
  ] as const) {
    let step = state.steps.find((s) => s.role === role);
    if (!step) {
      await wt.checkoutDetached(rev);
      step = await session.testFixedStep(role, rev, policy.endpointRuns, []);
    }
    if (step.verdict === 'skip' || step.verdict !== expect)
      await session.refuse(endpointRefusal({ expect, step, spec: state.spec, tester: session.tester.describe() }));
  }
  const badStep = state.steps.find((s) => s.role === 'bad-endpoint');
  state.passThreshold = passThreshold(policy, tallyOf(badStep?.runs ?? []));
  if (!fresh) await wt.bisectReset();
  const startProgress = await wt.bisectStart(
    state.bad,
    state.good,
    session.opts.firstParent ? { firstParent: true } : {},
  );
  state.bisectLog = await wt.bisectLog();
  state.phase = 'bisecting';
  if (startProgress.kind !== 'next') state.found = foundOf(startProgress);
  await session.save();
  return startProgress;
}

/** Phase 2: test and mark each revision git bisect hands out until it names a culprit (or candidates). */
async function bisectSteps(session: BisectSession, startProgress: BisectProgress | undefined): Promise<void> {
  const { state, wt, resultsDir } = session;
  let progress = await bisectProgressOf(session, startProgress);
  while (progress.kind === 'next') {
    if (session.bisectStepCount() >= session.maxSteps) {
      throw new FaultlineError(
        `bisect did not converge after ${session.maxSteps} steps (range of ${state.rangeSize} commits): see ${session.statePath}`,
      );
    }
    const rev = progress.rev;
    const last = state.steps[state.steps.length - 1];
    let step: StepRecord;
    if (last && last.role === 'bisect' && !last.marked && last.rev === rev) {
      step = last; // tested before an interruption, not yet handed to git
    } else {
      step = await session.testStep('bisect', rev);
      await session.commitStep(step);
    }
    progress = await wt.bisectMark(step.verdict);
    step.marked = true;
    state.bisectLog = await wt.bisectLog();
    await session.save();
  }
  state.found = foundOf(progress);
  await writeFileAtomic(join(resultsDir, LOG), state.bisectLog);
  await wt.bisectReset();
  state.phase = 'verifying';
  await session.save();
}

/** Where git bisect stands: the recorded result, this run's start, or a replay of the saved log. */
async function bisectProgressOf(
  session: BisectSession,
  startProgress: BisectProgress | undefined,
): Promise<BisectProgress> {
  const { state, wt } = session;
  if (state.found) {
    return state.found.kind === 'culprit'
      ? { kind: 'culprit', rev: state.found.rev }
      : { kind: 'ambiguous', candidates: state.found.candidates };
  }
  if (startProgress) return startProgress;
  // The state's log is the truth: rebuild git's bisect state from it (covers a lost worktree too).
  const logFile = join(session.resultsDir, 'bisect-log.replay');
  await writeFileAtomic(logFile, state.bisectLog);
  await wt.bisectReset();
  const progress = await wt.bisectReplay(logFile);
  await rm(logFile, { force: true });
  return progress;
}

type Verification = NonNullable<BisectRecord['verification']>;

/** Phase 3: re-test the culprit and its parent (and, if asked, bad with the culprit reverted). */
async function verifyCulprit(session: BisectSession, culpritRev: string): Promise<Verification> {
  const { state, policy, wt } = session;
  const culprit = await wt.commit(culpritRev);
  const parent = culprit.parents[0];
  if (!parent) throw new FaultlineError(`culprit ${short(culprit.hash)} has no parent`);
  const verifyOne = async (role: StepRole, rev: string): Promise<StepRecord> => {
    const done = state.steps.find((s) => s.role === role && s.rev === rev);
    if (done) return done;
    const prior = session.pooledRuns(rev);
    await wt.checkoutDetached(rev);
    // At least one fresh run, and at least endpointRuns runs in total at this revision.
    return session.testFixedStep(role, rev, Math.max(1, policy.endpointRuns - prior.length), prior);
  };
  const vp = await verifyOne('verify-parent', parent);
  const vc = await verifyOne('verify-culprit', culprit.hash);
  const revert = session.opts.verifyRevert ? await verifyRevert(session, culprit.hash) : undefined;
  return {
    parent,
    parentVerdict: vp.verdict,
    culpritVerdict: vc.verdict,
    ...(revert ? { revert } : {}),
    verified: vp.verdict === 'good' && vc.verdict === 'bad' && (revert === undefined || revert.verdict === 'good'),
  };
}

/** Revert the culprit on top of bad and test that: the failure should go away. */
async function verifyRevert(session: BisectSession, culprit: string): Promise<Verification['revert']> {
  const { state, policy, wt } = session;
  const done = state.steps.find((s) => s.role === 'verify-revert');
  if (done) return { verdict: done.verdict, commit: done.rev };
  await wt.checkoutDetached(state.bad);
  const r = await wt.revert(culprit);
  if (!r.ok) {
    log.warn(`revert of ${short(culprit)} on ${short(state.bad)} does not apply: ${r.reason}`);
    return { verdict: 'conflict', reason: r.reason };
  }
  const step = await session.testFixedStep('verify-revert', r.commit, policy.endpointRuns, []);
  return { verdict: step.verdict, commit: r.commit };
}

/** Phase 4: write the results record and bisect log, mark the state done, drop the worktree. */
async function writeResults(session: BisectSession, verification: Verification | undefined): Promise<BisectRecord> {
  const { state, wt, resultsDir } = session;
  const found = state.found;
  let record: BisectRecord;
  if (found?.kind === 'culprit') {
    const c = await wt.commit(found.rev);
    const parent = verification?.parent ?? c.parents[0] ?? '';
    const rates = estimateRates(state.steps);
    const confidence =
      confidenceOf('good', tallyOf(session.pooledRuns(parent)), rates) *
      confidenceOf('bad', tallyOf(session.pooledRuns(c.hash)), rates);
    record = buildRecord(state, {
      outcome: 'found',
      culprit: { ...summaryOf(c), confidence },
      ...(verification ? { verification } : {}),
    });
  } else if (found?.kind === 'ambiguous') {
    const candidates: CommitSummary[] = [];
    for (const h of found.candidates) candidates.push(summaryOf(await wt.commit(h)));
    record = buildRecord(state, { outcome: 'ambiguous', candidates });
  } else {
    throw new FaultlineError(`bisect state in ${session.statePath} has no result in phase ${state.phase}`);
  }
  await writeFileAtomic(join(resultsDir, LOG), record.bisectLog);
  await writeJsonAtomic(join(resultsDir, RESULTS), record);
  if (record.culprit && record.verification?.verified && session.opts.onVerifiedCulprit) {
    await wt.checkoutDetached(record.culprit.hash);
    await session.opts.onVerifiedCulprit(record, wt.dir);
  }
  state.phase = 'done';
  await session.save();
  if (!session.opts.keepWorktree) await session.userGit.worktreeRemove(wt.dir);
  return record;
}

function foundOf(p: BisectProgress): NonNullable<BisectState['found']> {
  if (p.kind === 'culprit') return { kind: 'culprit', rev: p.rev };
  if (p.kind === 'ambiguous') return { kind: 'ambiguous', candidates: p.candidates };
  throw new FaultlineError(`bisect has not finished (next ${p.rev})`);
}

async function ensureWorktree(userGit: Git, path: string, rev: string): Promise<{ git: Git; fresh: boolean }> {
  if (await exists(join(path, '.git'))) {
    const wt = new Git(path);
    const [a, b] = await Promise.all([wt.commonDirIfRepo(), userGit.commonDirIfRepo()]);
    if (a === undefined || a !== b)
      throw new UsageError(`${path} is a checkout of another repository: pass a different --worktree`);
    return { git: wt, fresh: false };
  }
  if (await exists(path))
    throw new UsageError(`${path} exists and is not a git worktree: remove it or pass a different --worktree`);
  return { git: await userGit.worktreeAdd(path, rev), fresh: true };
}

function buildRecord(state: BisectState, result: Pick<BisectRecord, 'outcome'> & Partial<BisectRecord>): BisectRecord {
  const rates = estimateRates(state.steps);
  // Final confidences use the rates from every run, not the ones known when the step ran.
  const steps = state.steps.map((s) => ({ ...s, confidence: confidenceOf(s.verdict, tallyOf(s.runs), rates) }));
  const bisectSteps = steps.filter((s) => s.role === 'bisect');
  const finishedAt = new Date().toISOString();
  return {
    schema: 'faultline.bisect/1',
    repo: state.repo,
    goodRef: state.goodRef,
    badRef: state.badRef,
    good: state.good,
    bad: state.bad,
    spec: state.spec,
    tester: state.tester,
    policy: state.policy,
    ...(state.command ? { command: state.command } : {}),
    startedAt: state.startedAt,
    finishedAt,
    durationMs: Date.parse(finishedAt) - Date.parse(state.startedAt),
    rates,
    passThreshold: state.passThreshold ?? 1,
    steps,
    bisectLog: state.bisectLog,
    stats: {
      revisionsTested: new Set(steps.map((s) => s.rev)).size,
      bisectSteps: bisectSteps.length,
      skips: bisectSteps.filter((s) => s.verdict === 'skip').length,
      endpointChecks: steps.filter((s) => s.role === 'good-endpoint' || s.role === 'bad-endpoint').length,
      runs: steps.reduce((n, s) => n + s.runs.length, 0),
      rangeSize: state.rangeSize,
    },
    ...result,
  };
}
