/**
 * The culprit loop (plan `bisect:`): after the night's jobs and comparison, each new regression
 * group (culprit-groups.ts) becomes one in-process `faultline bisect` (harness/bisect, as the
 * command runs it) between the baseline night's commit and tonight's, inside the time budget.
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
import { GuestRunner, KernelBuilder, type KernelBuildSettings, type RunSettings } from '../revision/kernel.js';
import { RevisionTester } from '../revision/tester.js';
import type { AccelRequest } from '../run/request.js';
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
  persistentFailures,
  regressionGroups,
  signatureOf,
  splatTitlePattern,
  type RegressionGroup,
} from './culprit-groups.js';
import { timeoutFor } from './plan.js';

/** The bisect ran past the plan's `max_minutes:` (thrown by the tester, before the next build). */
class BudgetSpent extends Error {}

/** A tester that refuses to start another step once the budget is spent. */
function budgeted(inner: StepTester, deadline: number, minutes: number): StepTester {
  return {
    describe: () => inner.describe(),
    test: (rev, worktree, req) => {
      if (Date.now() > deadline)
        throw new BudgetSpent(`the bisect budget of ${minutes} min (bisect: max_minutes) ran out`);
      return inner.test(rev, worktree, req);
    },
  };
}

/** What the bisect tests: the splat's title (digits and addresses loosened) or the failing subtest. */
function specOf(group: Pick<RegressionGroup, 'signal' | 'suite'>, plan: Pick<Plan, 'programs'>): TestSpec {
  if (group.signal.kind === 'splat') return parseSplatSpec(splatTitlePattern(group.signal.id));
  const [program, ...path] = group.signal.id.split('/');
  if (group.suite === PROGRAM_JOB && program !== undefined && path.length === 0)
    return parseProgramSpec(plan.programs ?? []);
  return parseSubtestSpec(`${program ?? ''}:${path.join('/')}`);
}

/** The guest runs of each step: the failing job's suite (or programs) on its backing and guest RAM, as the night ran it. */
function runSettingsOf(
  plan: Plan,
  group: RegressionGroup,
  spec: TestSpec,
  resultsRoot: string,
  accel: AccelRequest,
): RunSettings {
  const programs = group.suite === PROGRAM_JOB ? (plan.programs ?? []) : [];
  // A test spec runs its own test alone, as `faultline bisect --test` does; a splat the plan's filter.
  const filter = spec.kind === 'subtest' ? spec.testName : plan.filter;
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
  group: RegressionGroup,
  spec: TestSpec,
  dir: string,
  accel: AccelRequest,
): StepTester {
  const fragments = [...kernel.kconfig, ...(plan.configs.find((c) => c.name === group.config)?.fragments ?? [])];
  const build: KernelBuildSettings = {
    ...(fragments.length ? { kconfig: fragments } : {}),
    ...(kernel.configBase !== undefined ? { base: kernel.configBase } : {}),
    progress: 'plain',
  };
  const revision = new RevisionTester(
    new KernelBuilder(build),
    new GuestRunner(runSettingsOf(plan, group, spec, join(dir, 'runs'), accel)),
  );
  return new JudgedTester(revision, (record) => judgeRun(spec, record));
}

/** The `faultline bisect` command line that runs this bisect by hand (kept in results.json and the culprit mail). */
function bisectCommand(
  plan: Plan,
  kernel: TreePlanKernel,
  group: RegressionGroup,
  spec: TestSpec,
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
    '--runs',
    String(plan.bisect?.runs ?? 1),
    '--verify-revert',
  ];
  return { cwd: process.cwd(), argv };
}

/** The bisect policy of `bisect: runs: N`: every step, both endpoints, the culprit and its parent run N times. */
function policyOf(runs: number): RunPolicy {
  return { ...DEFAULT_POLICY, mode: 'fixed', runs, endpointRuns: runs, failThreshold: 1 };
}

/** A short directory name for a group's bisect: the signal, then the window. */
function bisectDirName(group: RegressionGroup, index: number): string {
  const what = group.signal.id.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60);
  return `${index + 1}-${group.kernel}-${what}-${group.good.slice(0, 8)}..${group.bad.slice(0, 8)}`;
}

export interface CulpritLoopContext {
  plan: Plan;
  /** The night's directory: bisects go to <dir>/bisects/<name>/. */
  dir: string;
  accel?: AccelRequest;
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

/** Bisect one group; every way it can end is an outcome (only a bug in the harness propagates). */
async function bisectGroup(ctx: CulpritLoopContext, group: RegressionGroup, index: number): Promise<NightlyBisect> {
  const { plan } = ctx;
  const kernel = plan.kernels.find((k): k is TreePlanKernel => k.kind === 'tree' && k.name === group.kernel);
  const budget = plan.bisect;
  if (!kernel || !budget)
    return { ...group, outcome: 'inconclusive', reason: `kernel ${group.kernel} is not a tree kernel of the plan` };
  const resultsDir = join(ctx.dir, 'bisects', bisectDirName(group, index));
  const spec = specOf(group, plan);
  const t0 = Date.now();
  const tester = budgeted(
    testerOf(plan, kernel, group, spec, resultsDir, ctx.accel ?? 'auto'),
    t0 + budget.maxMinutes * 60_000,
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
        policy: policyOf(budget.runs),
        verifyRevert: true,
        command: bisectCommand(plan, kernel, group, spec),
        onVerifiedCulprit: async (record, worktree) => {
          if (!record.culprit) return;
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
    // The worktree is the user's repository's: it must not outlive an unfinished bisect.
    await new Git(resolve(kernel.tree)).worktreeRemove(join(resultsDir, 'worktree')).catch(() => undefined);
    return {
      ...base,
      outcome: 'inconclusive',
      reason: errorMessage(e).split('\n')[0] ?? 'failed',
      durationMs: Date.now() - t0,
    };
  }
}

/** One line per group for the night's summary. */
export function formatBisects(bisects: readonly NightlyBisect[]): string[] {
  if (bisects.length === 0) return [];
  return [
    `culprits (${bisects.length}):`,
    ...bisects.map((b) => {
      const what = `${b.kernel}/${b.config} ${b.signal.kind === 'splat' ? 'splat' : 'test'} ${b.signal.id}`;
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
  const earlier = earlierBisects((await earlierNights(i.history, i.resultsRoot, i.record)).map((n) => n.record));
  const out: NightlyBisect[] = [];
  const groups = regressionGroups(i.comparison, i.record, i.baseline, i.runs);
  for (const [index, group] of groups.entries()) {
    const before = alreadyBisected(group, earlier);
    out.push(before ? knownEntry(group, before) : await bisectGroup(ctx, group, index));
  }
  const contains = async (culprit: string, commit: string): Promise<boolean> => {
    const k = i.record.plan.kernels.find((x) => x.kind === 'tree' && i.record.commits?.[x.name] === commit);
    return k?.kind === 'tree' ? new Git(resolve(k.tree)).isAncestor(culprit, commit).catch(() => false) : false;
  };
  const seen = new Set(out.map(signatureOf));
  out.push(...(await persistentFailures(earlier, i.record, i.runs, contains, seen)));
  return out;
}
