/**
 * The culprit loop (plan `bisect:`): after the night's jobs and comparison, each new regression
 * group (culprit-groups.ts) becomes one in-process `faultline bisect` (harness/bisect, as the
 * command runs it) between the last good night's commit and tonight's, inside the time budget.
 * Its outcome goes into nightly.json, its culprit mail into the night's directory. A bisect that
 * cannot conclude says why; it never changes the night's own verdict.
 */
import { join, relative, resolve } from 'node:path';
import { BisectRefusedError, runBisect } from '../bisect/bisect.js';
import { CULPRIT_MAIL, DEFAULT_REPORT_FROM, writeCulpritMail } from '../bisect/culprit-mail.js';
import { JudgedTester, judgeRun } from '../bisect/judge.js';
import { DEFAULT_POLICY } from '../bisect/policy.js';
import { parseProgramSpec, parseSplatSpec, parseSubtestSpec, type TestSpec } from '../bisect/spec.js';
import type { BisectRecord, RunPolicy, StepTester } from '../bisect/types.js';
import { SHIPPED_KNOWN_ISSUES } from '../results/known-issues.js';
import type { Comparison } from '../analysis/compare.js';
import {
  type LoadedJob,
  type NightlyBisect,
  type NightlyRecord,
  type Plan,
  type TreePlanKernel,
} from '../results/nightly.js';
import type { HistoryEntry } from '../history/index.js';
import { kernelRevisionTester, type KernelBuildSettings, type RunSettings } from '../revision/kernel.js';
import type { AccelRequest, RunViewWriter } from '../run/request.js';
import { FaultlineError, errorMessage } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { Git } from '../vcs/git.js';
import { log } from '../util/log.js';
import { parseAddress } from '../util/rfc5322.js';
import { earlierNights } from './culprit-known-issues.js';
import { PROGRAM_JOB } from './jobs.js';
import {
  alreadyBisected,
  earlierBisects,
  knownEntry,
  lastPassingNightIn,
  memberGroup,
  metricSpecOf,
  persistentFailures,
  regressionGroups,
  signatureOf,
  splatTitlePattern,
  type GroupMember,
  type RegressionGroup,
} from './culprit-groups.js';
import { timeoutFor } from './plan.js';

/** A group as recorded: what a bisect of it needs (window, signal, the job it runs). */
type BisectWindow = Omit<NightlyBisect, 'outcome'>;

/** The bisect ran past the plan's `max_minutes:` (thrown by the tester: before a step, or after one that ended past it). */
class BudgetSpent extends Error {}

/**
 * A tester inside the budget: it starts no step once the budget is spent, and a step that ends
 * past it (its build and guest timeouts are cut to the deadline, testerOf) gives no verdict: a run
 * cut short by the budget must not be judged.
 */
export function budgeted(inner: StepTester, deadline: number, minutes: number): StepTester {
  const spent = (when: string) =>
    new BudgetSpent(`the bisect budget of ${minutes} min (bisect: max_minutes) ran out ${when}`);
  return {
    describe: () => inner.describe(),
    test: async (rev, worktree, req) => {
      if (Date.now() > deadline) throw spent(`before ${req.label}`);
      const outcome = await inner.test(rev, worktree, req);
      if (Date.now() > deadline) throw spent(`during ${req.label}`);
      return outcome;
    },
  };
}

/** What the bisect tests: the splat's title (digits and addresses loosened) or the failing subtest. */
function specOf(group: Pick<RegressionGroup, 'signal' | 'suite'>, plan: Pick<Plan, 'programs'>): TestSpec {
  if (group.signal.kind === 'splat') return parseSplatSpec(splatTitlePattern(group.signal.id));
  if (group.signal.kind === 'metric') return metricSpecOf(group.signal);
  const [program, ...path] = group.signal.id.split('/');
  if (group.suite === PROGRAM_JOB && program !== undefined && path.length === 0)
    return parseProgramSpec(plan.programs ?? []);
  return parseSubtestSpec(`${program ?? ''}:${path.join('/')}`);
}

/** The guest runs of each step: the failing job's suite (or programs) on its backing and guest RAM, as the night ran it. */
function runSettingsOf(
  plan: Plan,
  group: BisectWindow,
  spec: TestSpec,
  resultsRoot: string,
  accel: AccelRequest,
): RunSettings {
  const programs = group.suite === PROGRAM_JOB ? (plan.programs ?? []) : [];
  // A test spec runs its own test alone, as `faultline bisect --test` does; a splat the plan's filter.
  const filter = spec.kind === 'subtest' || spec.kind === 'metric' ? spec.testName : plan.filter;
  return {
    suites: group.suite === PROGRAM_JOB ? [] : [group.suite],
    ...(programs.length ? { programs } : {}),
    backings: [group.backing],
    memMiB: plan.memMiB,
    smp: plan.smp,
    accel,
    guestRam: group.guestRam,
    timeoutSec: timeoutFor(plan, group.suite),
    bootTimeoutSec: plan.bootTimeoutSec,
    resultsRoot,
    quick: plan.quick,
    ...(filter !== undefined && filter !== '' ? { filter } : {}),
    keepVm: false,
    hugepages2m: plan.hugepages2m,
    hugepages1g: plan.hugepages1g,
    numaNodes: plan.numaNodes,
    knownIssues: [SHIPPED_KNOWN_ISSUES, ...(plan.knownIssues ?? [])],
    ...(plan.cmdline !== undefined ? { cmdline: plan.cmdline } : {}),
  };
}

function testerOf(
  plan: Plan,
  kernel: TreePlanKernel,
  group: BisectWindow,
  spec: TestSpec,
  dir: string,
  run: { accel: AccelRequest; deadline: number; views?: RunViewWriter },
): StepTester {
  const fragments = [...kernel.kconfig, ...(plan.configs.find((c) => c.name === group.config)?.fragments ?? [])];
  const build: KernelBuildSettings = {
    ...(fragments.length ? { kconfig: fragments } : {}),
    ...(kernel.configBase !== undefined ? { base: kernel.configBase } : {}),
    progress: 'plain',
  };
  const { accel, deadline, views } = run;
  const revision = kernelRevisionTester(build, runSettingsOf(plan, group, spec, join(dir, 'runs'), accel), {
    deadline,
    ...(views ? { views } : {}),
  });
  return new JudgedTester(revision, (record) => judgeRun(spec, record));
}

/** The `faultline bisect` command line that runs this bisect by hand (kept in results.json and the culprit mail). */
function bisectCommand(
  plan: Plan,
  kernel: TreePlanKernel,
  group: BisectWindow,
  spec: TestSpec,
  check: boolean,
): { cwd: string; argv: string[] } {
  const fragments = [...kernel.kconfig, ...(plan.configs.find((c) => c.name === group.config)?.fragments ?? [])];
  const what =
    spec.kind === 'splat'
      ? [
          '--splat',
          spec.text.replace(/^--splat /, ''),
          '--suite',
          group.suite,
          ...(plan.filter ? ['--filter', plan.filter] : []),
        ]
      : spec.kind === 'program'
        ? (plan.programs ?? []).flatMap((p) => ['--program', p])
        : spec.kind === 'metric'
          ? ['--metric', ...spec.text.split(' ')]
          : ['--test', spec.text];
  const argv = [
    'faultline',
    'bisect',
    '--kernel-src',
    resolve(kernel.tree),
    '--good',
    group.good,
    '--bad',
    group.bad,
    ...what,
    ...(spec.kind === 'splat' || spec.kind === 'program' ? ['--backing', group.backing] : []),
    '--config-base',
    kernel.configBase ?? 'defconfig',
    ...(fragments.length ? ['--kconfig', fragments.join(',')] : []),
    ...(plan.quick ? [] : ['--no-quick']),
    ...policyFlags(policyOf(plan.bisect?.runs ?? 1, spec)),
    // A culprit check (culprit^..culprit) reverts nothing.
    ...(check ? [] : ['--verify-revert']),
  ];
  return { cwd: process.cwd(), argv };
}

/**
 * The bisect policy of `bisect: runs: N`: every step, both endpoints, the culprit and its parent
 * run N times; one failure makes a revision bad. A latency is judged on at least 3 runs, bad when
 * most are beyond the threshold: one run of a loaded host's guest can be slow by a scheduler tick
 * or two, and must not make a good revision bad.
 */
function policyOf(runs: number, spec: TestSpec): RunPolicy {
  const n = spec.kind === 'metric' ? Math.max(runs, 3) : runs;
  const failThreshold = spec.kind === 'metric' ? Math.floor(n / 2) + 1 : 1;
  return { ...DEFAULT_POLICY, mode: 'fixed', runs: n, endpointRuns: n, failThreshold };
}

/** A fixed policy as `faultline bisect` flags (its endpoint runs default to --runs). */
function policyFlags(p: RunPolicy): string[] {
  return ['--runs', String(p.runs), ...(p.failThreshold > 1 ? ['--fail-threshold', String(p.failThreshold)] : [])];
}

/** The plan's tree kernel of that name: the one kind a night can bisect. */
function treeKernel(plan: Plan, name: string): TreePlanKernel | undefined {
  return plan.kernels.find((k): k is TreePlanKernel => k.kind === 'tree' && k.name === name);
}

/** The worktree a night's bisects of one kernel share (removed when its culprit loop ends). */
function sharedWorktree(nightDir: string, kernel: string): string {
  return join(nightDir, 'bisects', `worktree-${kernel.replace(/[^A-Za-z0-9_.-]+/g, '_')}`);
}

/** A short directory name for a group's bisect: its label, the signal, then the window. */
function bisectDirName(group: BisectWindow, label: string): string {
  const what = group.signal.id.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60);
  return `${label}-${group.kernel}-${what}-${group.good.slice(0, 8)}..${group.bad.slice(0, 8)}`;
}

export interface CulpritLoopContext {
  plan: Plan;
  /** The night's directory: bisects go to <dir>/bisects/<name>/. */
  dir: string;
  accel?: AccelRequest;
  /** The files each step's run writes besides its results.json. */
  views?: RunViewWriter;
}

/** The outcome of one finished bisect record: a verified culprit, or why not. */
function outcomeOf(rec: BisectRecord): Pick<NightlyBisect, 'outcome' | 'reason' | 'culprit'> {
  const c = rec.culprit;
  if (rec.outcome === 'found' && c && rec.verification?.verified)
    return {
      outcome: 'culprit',
      culprit: {
        hash: c.hash,
        subject: c.subject,
        author: `${c.authorName} <${c.authorEmail}>`,
        confidence: c.confidence,
      },
    };
  if (rec.outcome === 'found' && c) {
    const v = rec.verification;
    return {
      outcome: 'inconclusive',
      reason: `culprit ${c.hash.slice(0, 12)} not verified (parent ${v?.parentVerdict ?? '?'}, culprit ${v?.culpritVerdict ?? '?'}${v?.revert ? `, revert ${v.revert.verdict}` : ''})`,
    };
  }
  if (rec.outcome === 'ambiguous')
    return {
      outcome: 'inconclusive',
      reason: `only skipped commits remain; the first bad one is one of ${(rec.candidates ?? []).map((x) => x.hash.slice(0, 12)).join(', ')}`,
    };
  return { outcome: 'inconclusive', reason: rec.refusal ?? `bisect ended ${rec.outcome}` };
}

/**
 * Bisect one group (its window, its signal); every way it can end is an outcome (only a bug in the
 * harness propagates). `check`: a culprit's check against another signal (window culprit^..culprit,
 * no revert, no mail).
 */
async function bisectGroup(
  ctx: CulpritLoopContext,
  { members: _members, ...group }: RegressionGroup,
  label: string,
  check = false,
): Promise<NightlyBisect> {
  const { plan } = ctx;
  const kernel = treeKernel(plan, group.kernel);
  const budget = plan.bisect;
  if (!kernel || !budget)
    return { ...group, outcome: 'inconclusive', reason: `kernel ${group.kernel} is not a tree kernel of the plan` };
  const resultsDir = join(ctx.dir, 'bisects', bisectDirName(group, label));
  const spec = specOf(group, plan);
  const t0 = Date.now();
  const deadline = t0 + budget.maxMinutes * 60_000;
  const tester = budgeted(
    testerOf(plan, kernel, group, spec, resultsDir, {
      accel: ctx.accel ?? 'auto',
      deadline,
      ...(ctx.views ? { views: ctx.views } : {}),
    }),
    deadline,
    budget.maxMinutes,
  );
  const base = { ...group, spec: spec.text, dir: relative(ctx.dir, resultsDir) };
  log.info(
    `bisect ${group.good.slice(0, 12)}..${group.bad.slice(0, 12)} of ${group.kernel}/${group.config} for ${spec.text} (budget ${budget.maxMinutes} min): ${resultsDir}`,
  );
  try {
    const rec = await runBisect(
      {
        repo: resolve(kernel.tree),
        good: group.good,
        bad: group.bad,
        spec: spec.text,
        resultsDir,
        // One worktree per kernel for the night's bisects: its obj dir keeps the builds incremental.
        worktree: sharedWorktree(ctx.dir, kernel.name),
        keepWorktree: true,
        policy: policyOf(budget.runs, spec),
        verifyRevert: !check,
        command: bisectCommand(plan, kernel, group, spec, check),
        onVerifiedCulprit: async (record, worktree) => {
          if (!record.culprit || check) return;
          const reportFrom = parseAddress(DEFAULT_REPORT_FROM);
          if (!reportFrom) return;
          await writeCulpritMail(
            { record: { ...record, culprit: record.culprit }, git: new Git(worktree), tree: worktree, reportFrom },
            resultsDir,
          ).catch((e: unknown) => log.warn(`culprit mail not written: ${errorMessage(e)}`));
        },
      },
      tester,
    );
    const mail = join(resultsDir, CULPRIT_MAIL);
    return {
      ...base,
      ...outcomeOf(rec),
      ...((await exists(mail)) ? { mail: relative(ctx.dir, mail) } : {}),
      durationMs: Date.now() - t0,
    };
  } catch (e) {
    if (!(e instanceof BudgetSpent || e instanceof BisectRefusedError || e instanceof FaultlineError)) throw e;
    return {
      ...base,
      outcome: 'inconclusive',
      reason: errorMessage(e).split('\n')[0] ?? 'failed',
      durationMs: Date.now() - t0,
    };
  }
}

/**
 * Whether a culprit explains a member's regression: bisected over culprit^..culprit, the member's
 * test passes at the parent and fails at the culprit, each as often as the plan's runs ask.
 */
async function explains(
  ctx: CulpritLoopContext,
  member: RegressionGroup,
  culprit: string,
  label: string,
): Promise<boolean> {
  const kernel = treeKernel(ctx.plan, member.kernel);
  if (!kernel) return false;
  const parent = await new Git(resolve(kernel.tree)).resolveCommit(`${culprit}^`).catch(() => undefined);
  if (parent === undefined) return false;
  const entry = await bisectGroup(ctx, { ...member, good: parent, bad: culprit }, label, true);
  return entry.outcome === 'culprit' && entry.culprit?.hash === culprit;
}

/**
 * One window may hold several culprits (a WARN from one commit, a slowdown from another): KernelCI
 * bisects each regression. The group's strongest signal is bisected; each other member is then
 * checked against that culprit, and joins its entry when the culprit explains it. The first one it
 * does not explain is bisected over the whole window in turn, and so on. A bisect that does not
 * conclude keeps the members left: nothing tells them apart.
 */
async function bisectApart(ctx: CulpritLoopContext, group: RegressionGroup, index: number): Promise<NightlyBisect[]> {
  const out: NightlyBisect[] = [];
  let pending = group.members;
  for (let n = 1; pending.length > 0; n++) {
    const [first, ...rest] = pending;
    if (!first) break;
    const entry = await bisectGroup(ctx, memberGroup(group, first), n === 1 ? `${index}` : `${index}.${n}`);
    out.push(entry);
    const culprit = entry.outcome === 'culprit' ? entry.culprit?.hash : undefined;
    if (culprit === undefined) {
      entry.signals.push(...rest.map((m) => m.signal));
      break;
    }
    const left: GroupMember[] = [];
    for (const [i, m] of rest.entries()) {
      if (await explains(ctx, memberGroup(group, m), culprit, `${index}.${n}-check${i + 1}`))
        entry.signals.push(m.signal);
      else left.push(m);
    }
    pending = left;
  }
  return out;
}

/** One line per group for the night's summary. */
export function formatBisects(bisects: readonly NightlyBisect[]): string[] {
  if (bisects.length === 0) return [];
  return [
    `culprits (${bisects.length}):`,
    ...bisects.map((b) => {
      const what = `${b.kernel}/${b.config} ${b.signal.kind} ${b.signal.id}${b.signal.threshold ? ` (${b.signal.threshold.direction} ${b.signal.threshold.value})` : ''}`;
      const culprit = b.culprit
        ? `culprit ${b.culprit.hash.slice(0, 12)} ("${b.culprit.subject}", ${b.culprit.author})`
        : '';
      if (b.outcome === 'known')
        return `  ${what}: failing since ${b.since ?? '?'}${culprit ? `, ${culprit}` : `, ${b.reason ?? 'not concluded'}`}`;
      const window = `${b.good.slice(0, 12)}..${b.bad.slice(0, 12)}`;
      if (b.outcome === 'culprit')
        return `  ${what}: ${culprit} in ${window}, confidence ${(b.culprit?.confidence ?? 0).toFixed(3)}${b.mail ? `; mail ${b.mail}` : ''}`;
      return `  ${what}: could not conclude in ${window}: ${b.reason ?? 'no reason recorded'}`;
    }),
  ];
}

export interface CulpritLoopInput {
  record: NightlyRecord;
  baseline: NightlyRecord;
  comparison: Comparison;
  runs: readonly LoadedJob[];
  history: readonly HistoryEntry[];
  resultsRoot: string;
}

/**
 * The night's culprit loop: new regression groups are bisected one after another; groups an
 * earlier night bisected, and failures an earlier culprit still explains, are named, not bisected.
 */
export async function culpritLoop(ctx: CulpritLoopContext, i: CulpritLoopInput): Promise<NightlyBisect[]> {
  const nights = (await earlierNights(i.history, i.resultsRoot, i.record)).map((n) => n.record);
  const earlier = earlierBisects(nights);
  const out: NightlyBisect[] = [];
  const lastPass = lastPassingNightIn(i.history, nights);
  const groups = regressionGroups(i.comparison, i.record, i.baseline, i.runs, lastPass);
  try {
    for (const [index, group] of groups.entries()) {
      const before = alreadyBisected(group, earlier);
      out.push(...(before ? [knownEntry(group, before)] : await bisectApart(ctx, group, index + 1)));
    }
  } finally {
    // The worktrees are the user's repositories': none outlives the loop, however it ends.
    for (const k of i.record.plan.kernels)
      if (k.kind === 'tree' && groups.some((g) => g.kernel === k.name))
        await new Git(resolve(k.tree)).worktreeRemove(sharedWorktree(ctx.dir, k.name)).catch(() => undefined);
  }
  const contains = async (culprit: string, commit: string): Promise<boolean> => {
    const k = i.record.plan.kernels.find((x) => x.kind === 'tree' && i.record.commits?.[x.name] === commit);
    return k?.kind === 'tree' ? new Git(resolve(k.tree)).isAncestor(culprit, commit).catch(() => false) : false;
  };
  const seen = new Set(out.map(signatureOf));
  out.push(...(await persistentFailures(earlier, i.record, i.runs, contains, seen)));
  return out;
}
