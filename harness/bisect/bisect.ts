import { mkdir, realpath, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BuildBrokenError, ExitCode, FaultlineError, UsageError } from '../util/errors.js';
import { exists, sha256, writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { Git, type BisectProgress } from '../util/git.js';
import { log } from '../util/log.js';
import { DEFAULT_POLICY, confidenceOf, decide, estimateRates, passThreshold, tallyOf, type Rates } from './policy.js';
import { readBisectRecord, readBisectState, type BisectState } from './record.js';
import type { BisectRecord, CommitSummary, RevisionTester, RunObservation, RunPolicy, StepOutcome, StepRecord, StepRole } from './types.js';

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

function summaryOf(c: { hash: string; subject: string; authorName: string; authorEmail: string; authorDate: string }): CommitSummary {
  return { hash: c.hash, subject: c.subject, authorName: c.authorName, authorEmail: c.authorEmail, authorDate: c.authorDate };
}

/**
 * Bisect good..bad with real `git bisect` in a linked worktree, testing each revision with the
 * injected tester. Resumes from <resultsDir>/state.json when it exists with the same parameters.
 * Resolves with the results record; rejects with BisectRefusedError when the endpoints are wrong.
 */
export async function runBisect(opts: BisectOptions, tester: RevisionTester): Promise<BisectRecord> {
  const policy: RunPolicy = { ...DEFAULT_POLICY, ...opts.policy };
  if (policy.failThreshold > policy.runs) {
    throw new UsageError(`--fail-threshold ${policy.failThreshold} is larger than the runs per step (${policy.runs}): lower it or raise --runs/--max-runs`);
  }
  const userGit = new Git(opts.repo);
  if (!(await exists(opts.repo)) || !(await userGit.isRepo())) {
    throw new UsageError(`${opts.repo} is not a git checkout: pass the kernel tree with --kernel-src`);
  }
  const repo = await realpath(opts.repo);
  const good = await userGit.resolveCommit(opts.good);
  const bad = await userGit.resolveCommit(opts.bad);
  if (good === bad) throw new UsageError(`--good and --bad are the same commit ${short(good)}: nothing to bisect`);
  if (!(await userGit.isAncestor(good, bad))) {
    throw new UsageError(`--good ${opts.good} (${short(good)}) is not an ancestor of --bad ${opts.bad} (${short(bad)}): pass a good revision older than the bad one`);
  }
  const resultsDir = resolve(opts.resultsDir);
  await mkdir(resultsDir, { recursive: true });
  const statePath = join(resultsDir, STATE);
  const key = sha256(JSON.stringify({ repo, good, bad, spec: opts.spec, policy, verifyRevert: opts.verifyRevert === true, firstParent: opts.firstParent === true }));

  let state: BisectState;
  if (await exists(statePath)) {
    state = await readBisectState(statePath);
    if (state.key !== key) {
      throw new UsageError(`${resultsDir} holds a different bisect (${short(state.good)}..${short(state.bad)} ${state.spec}): use another --results-dir or delete it`);
    }
    if (state.phase === 'done' && (await exists(join(resultsDir, RESULTS)))) {
      log.info(`bisect already finished in ${resultsDir}: reporting its results`);
      return readBisectRecord(join(resultsDir, RESULTS));
    }
    log.info(`resuming bisect in ${resultsDir} (phase ${state.phase}, ${state.steps.length} steps done)`);
  } else {
    state = {
      schema: 'faultline.bisect-state/1',
      key,
      repo,
      goodRef: opts.good,
      badRef: opts.bad,
      good,
      bad,
      spec: opts.spec,
      tester: tester.describe(),
      policy,
      worktree: resolve(opts.worktree ?? join(resultsDir, 'worktree')),
      startedAt: new Date().toISOString(),
      phase: 'endpoints',
      rangeSize: await userGit.countCommits(`${good}..${bad}`),
      steps: [],
      bisectLog: '',
    };
  }
  const save = (): Promise<void> => writeJsonAtomic(statePath, state);
  await save();

  const { git: wt, fresh } = await ensureWorktree(userGit, state.worktree, bad);
  const maxSteps = opts.maxSteps ?? state.rangeSize + 8;
  const subjects = new Map<string, string>();
  // One git log instead of one git show per step.
  for (const c of await wt.log(`${good}..${bad}`, { reverse: false })) subjects.set(c.hash, c.subject);
  const subjectOf = async (rev: string): Promise<string> => {
    let s = subjects.get(rev);
    if (s === undefined) {
      s = (await wt.commit(rev)).subject;
      subjects.set(rev, s);
    }
    return s;
  };

  /** All runs seen at a revision (bisect + endpoint + verification steps), for pooled decisions. */
  const pooledRuns = (rev: string): RunObservation[] => state.steps.filter((s) => s.rev === rev).flatMap((s) => s.runs);
  const currentRates = (): Rates => estimateRates(state.steps);

  async function callTester(rev: string, runs: number, label: string): Promise<StepOutcome> {
    const t0 = Date.now();
    try {
      const o = await tester.test(rev, wt.dir, { runs, label });
      if (o.kind === 'runs' && o.runs.length === 0) return { kind: 'infra', detail: 'the tester returned no runs', durationMs: Date.now() - t0 };
      return o;
    } catch (e) {
      // Typed harness errors are outcomes; anything else (a bug, an interruption) propagates.
      if (e instanceof BuildBrokenError) return { kind: 'build-broken', detail: e.firstError || e.message, durationMs: Date.now() - t0 };
      if (e instanceof FaultlineError) return { kind: 'infra', detail: e.message, durationMs: Date.now() - t0 };
      throw e;
    }
  }

  /** Test one revision until the policy decides (or it must be skipped). */
  async function testStep(role: StepRole, rev: string, fixed?: { runs: number; prior: readonly RunObservation[] }): Promise<StepRecord> {
    const label = role === 'bisect' ? `step ${state.steps.filter((s) => s.role === 'bisect').length + 1}` : role;
    const subject = await subjectOf(rev);
    const p = state.pending?.rev === rev && state.pending.role === role ? state.pending : undefined;
    const pending = p ?? { role, rev, runs: [], infraErrors: [], startedAt: new Date().toISOString(), durationMs: 0 };
    state.pending = pending;
    let buildMs: number | undefined;
    let cacheHit: boolean | undefined;
    let skipReason: string | undefined;
    const P = state.passThreshold ?? 1;
    for (;;) {
      const prior = fixed?.prior ?? [];
      const decision = decide(policy, P, tallyOf([...prior, ...pending.runs]), fixed ? fixed.runs + prior.length : undefined);
      if ('verdict' in decision) {
        const verdict = decision.verdict;
        const rec = finishStep(role, rev, subject, pending, verdict, `${runsText([...prior, ...pending.runs])}${prior.length ? ` (${prior.length} earlier)` : ''}`, buildMs, cacheHit);
        rec.confidence = confidenceOf(verdict, tallyOf([...prior, ...pending.runs]), currentRates());
        return rec;
      }
      if (skipReason !== undefined) return finishStep(role, rev, subject, pending, 'skip', skipReason, buildMs, cacheHit);
      log.info(`${label}: testing ${short(rev)} ${subject} (${decision.more} run${decision.more === 1 ? '' : 's'})`);
      const t0 = Date.now();
      const o = await callTester(rev, decision.more, label);
      pending.durationMs += Date.now() - t0;
      switch (o.kind) {
        case 'runs':
          pending.runs.push(...o.runs);
          if (o.buildMs !== undefined) buildMs = (buildMs ?? 0) + o.buildMs;
          if (o.cacheHit !== undefined) cacheHit = cacheHit === undefined ? o.cacheHit : cacheHit && o.cacheHit;
          break;
        case 'infra':
          pending.infraErrors.push(o.detail);
          log.warn(`${label}: infra error at ${short(rev)}: ${o.detail}`);
          if (pending.infraErrors.length > policy.infraRetries) skipReason = `infra error after ${pending.infraErrors.length} attempts: ${o.detail}`;
          break;
        case 'build-broken':
          skipReason = `build broken: ${o.detail}`;
          break;
        case 'boot-failed':
          skipReason = `boot failed: ${o.detail}`;
          break;
        case 'untestable':
          skipReason = `not testable here: ${o.detail}`;
          break;
      }
      if (skipReason !== undefined) return finishStep(role, rev, subject, pending, 'skip', skipReason, buildMs, cacheHit);
      await save();
    }
  }

  function finishStep(role: StepRole, rev: string, subject: string, pending: NonNullable<BisectState['pending']>, verdict: StepRecord['verdict'],
    reason: string, buildMs: number | undefined, cacheHit: boolean | undefined): StepRecord {
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
      ...(buildMs !== undefined ? { buildMs } : {}),
      ...(cacheHit !== undefined ? { cacheHit } : {}),
    };
    log.info(`${role === 'bisect' ? 'step' : role} ${short(rev)}: ${verdict} (${reason})`);
    return rec;
  }

  /** Record a finished step (and drop the pending runs) in one atomic state write. */
  async function commitStep(step: StepRecord): Promise<void> {
    state.steps.push(step);
    delete state.pending;
    await save();
  }

  async function refuse(message: string): Promise<never> {
    const record = buildRecord(state, { outcome: 'refused', refusal: message });
    await writeJsonAtomic(join(resultsDir, RESULTS), record);
    // No resumable state: running again re-tests the endpoints (the cause may have been fixed).
    await rm(statePath, { force: true });
    await wt.bisectReset();
    if (!opts.keepWorktree) await userGit.worktreeRemove(wt.dir);
    throw new BisectRefusedError(message);
  }

  /** Set when this invocation started git bisect itself (no replay needed). */
  let startProgress: BisectProgress | undefined;

  // ---- 1. endpoints --------------------------------------------------------------------------
  if (state.phase === 'endpoints') {
    for (const [role, rev, expect] of [['good-endpoint', good, 'good'], ['bad-endpoint', bad, 'bad']] as const) {
      let step = state.steps.find((s) => s.role === role);
      if (!step) {
        await wt.checkoutDetached(rev);
        step = await testStep(role, rev, { runs: policy.endpointRuns, prior: [] });
        step.marked = true;
        await commitStep(step);
      }
      const which = role === 'good-endpoint' ? 'good' : 'bad';
      const named = `${which} revision ${short(rev)} ("${step.subject}")`;
      if (step.verdict === 'skip') await refuse(`${named} cannot be tested: ${step.reason}`);
      if (step.verdict !== expect) {
        await refuse(expect === 'good'
          ? `${named} fails ${state.spec} (${step.reason}): pick an older --good, or raise --fail-threshold if the test is flaky there`
          : `${named} passes ${state.spec} (${step.reason}): pick a newer --bad, or check that the spec names the failing test`);
      }
    }
    const badStep = state.steps.find((s) => s.role === 'bad-endpoint');
    state.passThreshold = passThreshold(policy, tallyOf(badStep?.runs ?? []));
    if (!fresh) await wt.bisectReset();
    startProgress = await wt.bisectStart(bad, good, opts.firstParent ? { firstParent: true } : {});
    state.bisectLog = await wt.bisectLog();
    state.phase = 'bisecting';
    if (startProgress.kind !== 'next') state.found = foundOf(startProgress);
    await save();
  }

  // ---- 2. bisect -----------------------------------------------------------------------------
  if (state.phase === 'bisecting') {
    let progress: BisectProgress;
    if (state.found) {
      progress = state.found.kind === 'culprit' ? { kind: 'culprit', rev: state.found.rev } : { kind: 'ambiguous', candidates: state.found.candidates };
    } else if (startProgress) {
      progress = startProgress;
    } else {
      // The state's log is the truth: rebuild git's bisect state from it (covers a lost worktree too).
      const logFile = join(resultsDir, 'bisect-log.replay');
      await writeFileAtomic(logFile, state.bisectLog);
      await wt.bisectReset();
      progress = await wt.bisectReplay(logFile);
      await rm(logFile, { force: true });
    }
    while (progress.kind === 'next') {
      if (state.steps.filter((s) => s.role === 'bisect').length >= maxSteps) {
        throw new FaultlineError(`bisect did not converge after ${maxSteps} steps (range of ${state.rangeSize} commits): see ${statePath}`);
      }
      const rev = progress.rev;
      const last = state.steps[state.steps.length - 1];
      let step: StepRecord;
      if (last && last.role === 'bisect' && !last.marked && last.rev === rev) {
        step = last; // tested before an interruption, not yet handed to git
      } else {
        step = await testStep('bisect', rev);
        await commitStep(step);
      }
      progress = await wt.bisectMark(step.verdict);
      step.marked = true;
      state.bisectLog = await wt.bisectLog();
      await save();
    }
    state.found = foundOf(progress);
    await writeFileAtomic(join(resultsDir, LOG), state.bisectLog);
    await wt.bisectReset();
    state.phase = 'verifying';
    await save();
  }

  // ---- 3. verify the culprit -----------------------------------------------------------------
  let verification: BisectRecord['verification'];
  const found = state.found;
  if (state.phase === 'verifying' && found?.kind === 'culprit') {
    const culprit = await wt.commit(found.rev);
    const parent = culprit.parents[0];
    if (!parent) throw new FaultlineError(`culprit ${short(culprit.hash)} has no parent`);
    const verifyOne = async (role: StepRole, rev: string): Promise<StepRecord> => {
      const done = state.steps.find((s) => s.role === role && s.rev === rev);
      if (done) return done;
      const prior = pooledRuns(rev);
      await wt.checkoutDetached(rev);
      // At least one fresh run, and at least endpointRuns runs in total at this revision.
      const step = await testStep(role, rev, { runs: Math.max(1, policy.endpointRuns - prior.length), prior });
      step.marked = true;
      await commitStep(step);
      return step;
    };
    const vp = await verifyOne('verify-parent', parent);
    const vc = await verifyOne('verify-culprit', culprit.hash);
    let revert: NonNullable<BisectRecord['verification']>['revert'];
    if (opts.verifyRevert) {
      const done = state.steps.find((s) => s.role === 'verify-revert');
      if (done) {
        revert = { verdict: done.verdict, commit: done.rev };
      } else {
        await wt.checkoutDetached(bad);
        const r = await wt.revert(culprit.hash);
        if (!r.ok) {
          revert = { verdict: 'conflict', reason: r.reason };
          log.warn(`revert of ${short(culprit.hash)} on ${short(bad)} does not apply: ${r.reason}`);
        } else {
          const step = await testStep('verify-revert', r.commit, { runs: policy.endpointRuns, prior: [] });
          step.marked = true;
          await commitStep(step);
          revert = { verdict: step.verdict, commit: r.commit };
        }
      }
    }
    verification = {
      parent,
      parentVerdict: vp.verdict,
      culpritVerdict: vc.verdict,
      ...(revert ? { revert } : {}),
      verified: vp.verdict === 'good' && vc.verdict === 'bad' && (revert === undefined || revert.verdict === 'good'),
    };
  }

  // ---- 4. results ----------------------------------------------------------------------------
  let record: BisectRecord;
  if (found?.kind === 'culprit') {
    const c = await wt.commit(found.rev);
    const parent = verification?.parent ?? c.parents[0] ?? '';
    const rates = estimateRates(state.steps);
    const confidence = confidenceOf('good', tallyOf(pooledRuns(parent)), rates) * confidenceOf('bad', tallyOf(pooledRuns(c.hash)), rates);
    record = buildRecord(state, { outcome: 'found', culprit: { ...summaryOf(c), confidence }, ...(verification ? { verification } : {}) });
  } else if (found?.kind === 'ambiguous') {
    const candidates: CommitSummary[] = [];
    for (const h of found.candidates) candidates.push(summaryOf(await wt.commit(h)));
    record = buildRecord(state, { outcome: 'ambiguous', candidates });
  } else {
    throw new FaultlineError(`bisect state in ${statePath} has no result in phase ${state.phase}`);
  }
  await writeFileAtomic(join(resultsDir, LOG), record.bisectLog);
  await writeJsonAtomic(join(resultsDir, RESULTS), record);
  state.phase = 'done';
  await save();
  if (!opts.keepWorktree) await userGit.worktreeRemove(wt.dir);
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
    const [a, b] = await Promise.all([
      wt.exec(['rev-parse', '--path-format=absolute', '--git-common-dir']),
      userGit.exec(['rev-parse', '--path-format=absolute', '--git-common-dir']),
    ]);
    if (a.stdout.trim() !== b.stdout.trim()) throw new UsageError(`${path} is a checkout of another repository: pass a different --worktree`);
    return { git: wt, fresh: false };
  }
  if (await exists(path)) throw new UsageError(`${path} exists and is not a git worktree: remove it or pass a different --worktree`);
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
