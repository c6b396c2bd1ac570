import { FaultlineError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { ProgramRun, SubtestResult } from '../results/types.js';
import type { SelftestProgram } from '../results/selftests.js';
import { EXIT_STATUS, type GuestCommand, type ResumePlan, type Suite, type SuiteContext } from '../suites/types.js';
import { guestCommandLine, runProgram, type ProgramResult } from './program.js';
import { KernelCrashLimit, type GuestSession } from './session.js';

/** Bound on resumes of one planned command (each must report something new anyway). */
const MAX_RESUMES = 50;

/** What running a plan produced, in the order things ran. */
export interface PlanOutcome {
  programs: ProgramRun[];
  subtests: SubtestResult[];
  /** Guests lost with no sign from the kernel, and anything that stopped the run early: the harness could not tell. */
  infraErrors: string[];
}

/**
 * Runs the suites' commands on a session, so that no fault hides the rest of the run: a
 * program that dies is resumed at the subtests it had not reached (after a reboot when it
 * took the guest down), and each subtest that failed on its own merits is rerun up to
 * `retries` times; one that passes then is `flaky`, with every attempt kept.
 */
export class PlanRunner {
  private readonly programs: ProgramRun[] = [];
  private readonly subtests = new Map<string, SubtestResult>();
  /** The raw output file each subtest's first attempt came from. */
  private readonly firstOutput = new Map<string, string>();
  /** Subtests not to retry: failed by a kernel splat, timed out, or lost with the guest. */
  private readonly noRetry = new Set<string>();
  /** The command that produced each subtest, to rerun it. */
  private readonly producer = new Map<string, { suite: Suite; cmd: GuestCommand }>();
  private readonly infraErrors: string[] = [];

  constructor(
    private readonly session: GuestSession,
    private readonly ctx: SuiteContext,
    private readonly dir: string,
    private readonly built: readonly SelftestProgram[],
    private readonly timeoutCapSec: number,
  ) {}

  async run(suites: readonly Suite[], retries: number): Promise<PlanOutcome> {
    // --timeout caps every program; a suite may ask for less.
    const planned = suites.flatMap((suite) =>
      suite
        .plan(this.ctx)
        .map((c) => ({ suite, cmd: { ...c, timeoutSec: Math.min(c.timeoutSec, this.timeoutCapSec) } })),
    );
    let next = 0;
    try {
      for (; next < planned.length; next++) {
        const { suite, cmd } = planned[next] ?? {};
        if (!suite || !cmd || this.recordUnbuilt(suite, cmd)) continue;
        await this.runWithResume(suite, cmd);
      }
      if (retries > 0) await this.retryFailures(retries);
    } catch (e) {
      if (!(e instanceof FaultlineError)) throw e;
      // Crashes are failures with their reports; only a harness that could not tell is an error.
      if (!(e instanceof KernelCrashLimit)) this.infraErrors.push(e.message);
      if (e.detail) log.info(e.detail);
      for (const { suite, cmd } of planned.slice(next)) this.recordNotRun(suite, cmd, e.message);
    }
    return { programs: this.programs, subtests: [...this.subtests.values()], infraErrors: this.infraErrors };
  }

  /** A planned program the run stopped before (or while) running: named, with why, never silently missing. */
  private recordNotRun(suite: Suite, cmd: GuestCommand, why: string): void {
    if (this.programs.some((p) => p.command === guestCommandLine(cmd) && p.purpose === undefined)) return;
    this.recordWithoutRun(suite, cmd, 'error', `not run: ${why}`);
    this.noRetry.add(`${cmd.program}/${cmd.label}`);
  }

  /**
   * A program the tree could not build, or a command the suite cannot give what the tree
   * asks for: its subtest is a skip (too old, not provided) or an error (does not compile).
   */
  private recordUnbuilt(suite: Suite, cmd: GuestCommand): boolean {
    const prog = this.built.find((p) => p.name === cmd.program);
    if (prog?.status === 'built' && cmd.skipReason === undefined) return false;
    const status = prog?.status === 'failed' ? 'error' : 'skip';
    this.recordWithoutRun(suite, cmd, status, cmd.skipReason ?? prog?.reason ?? `${cmd.program} was not built`);
    return true;
  }

  /** A program that never ran: one program record and one subtest for it, with the reason. */
  private recordWithoutRun(suite: Suite, cmd: GuestCommand, status: 'skip' | 'error', reason: string): void {
    const backing = cmd.backing ? { backing: cmd.backing } : {};
    const command = guestCommandLine(cmd);
    this.programs.push({
      program: cmd.program,
      command,
      ...backing,
      exitCode: null,
      timedOut: false,
      durationMs: 0,
      status,
      reason,
      outputFile: '',
    });
    const id = `${cmd.program}/${cmd.label}`;
    this.add(
      { id, suite: suite.name, program: cmd.program, name: cmd.label, ...backing, status, reason },
      '',
      suite,
      cmd,
    );
  }

  /** Keep the first result for each id: a resume that reruns earlier subtests does not overwrite them. */
  private add(t: SubtestResult, outputFile: string, suite: Suite, cmd: GuestCommand): boolean {
    if (this.subtests.has(t.id)) return false;
    this.subtests.set(t.id, t);
    this.firstOutput.set(t.id, outputFile);
    this.producer.set(t.id, { suite, cmd });
    return true;
  }

  private async runOnce(suite: Suite, cmd: GuestCommand, purpose?: 'resume' | 'retry'): Promise<ProgramResult> {
    const r = await runProgram(this.session, suite, cmd, this.ctx, this.dir, purpose);
    this.programs.push(r.program);
    if (r.lostGuest?.kernelSign) this.session.noteKernelCrash();
    else if (r.lostGuest) this.infraErrors.push(r.lostGuest.reason);
    return r;
  }

  private recordResult(r: ProgramResult, suite: Suite, cmd: GuestCommand): void {
    for (const t of r.subtests) {
      if (this.add(t, r.program.outputFile, suite, cmd) && (r.timedOut || r.lostGuest || r.splatFailed.includes(t.id)))
        this.noRetry.add(t.id);
    }
  }

  /**
   * Run `cmd`; while it (or a resume) died with planned subtests unreported, run the suite's
   * next resume command. A resume that reports nothing new is not tried again; subtests no
   * command can reach are reported as errors naming where the program died.
   */
  private async runWithResume(suite: Suite, cmd: GuestCommand): Promise<void> {
    const first = await this.runOnce(suite, cmd);
    this.recordResult(first, suite, cmd);
    if (!first.died || !suite.resume) return;
    const reached = new Set(first.subtests.map((t) => t.id));
    // Subtests that took the kernel down: no resume may run them again.
    const crashed = new Set(first.lostGuest?.kernelSign ? first.splatFailed : []);
    const fruitless = new Set<string>();
    for (let i = 1; i <= MAX_RESUMES; i++) {
      const plan = suite.resume(cmd, reached, this.ctx, crashed);
      const next = plan.commands.find((c) => !fruitless.has(guestCommandLine(c)));
      if (!next) {
        this.recordUnreached(suite, cmd, plan.unreached, first);
        return;
      }
      log.info(`[${suite.name}] ${cmd.label} did not finish: resuming with ${guestCommandLine(next)}`);
      const resumed = { ...next, label: `${cmd.label}.resume${i}` };
      const r = await this.runOnce(suite, resumed, 'resume');
      const before = reached.size;
      for (const t of r.subtests) reached.add(t.id);
      if (r.lostGuest?.kernelSign) for (const id of r.splatFailed) crashed.add(id);
      this.recordResult(r, suite, resumed);
      if (reached.size === before) fruitless.add(guestCommandLine(next));
    }
  }

  private recordUnreached(
    suite: Suite,
    cmd: GuestCommand,
    unreached: ResumePlan['unreached'],
    first: ProgramResult,
  ): void {
    const why = `not reached: ${cmd.program} did not get past an earlier subtest (${first.program.reason ?? 'it died'}; see ${first.program.outputFile})`;
    for (const { reason, ...u } of unreached) {
      this.add(
        { ...u, suite: suite.name, program: cmd.program, status: 'error', reason: reason ?? why },
        first.program.outputFile,
        suite,
        cmd,
      );
      this.noRetry.add(u.id);
    }
  }

  /** Rerun each retryable failed subtest on its own; subtests that share a rerun command share its runs. */
  private async retryFailures(retries: number): Promise<void> {
    const groups = new Map<string, { suite: Suite; cmd: GuestCommand; ids: string[] }>();
    for (const t of this.subtests.values()) {
      if ((t.status !== 'fail' && t.status !== 'error') || this.noRetry.has(t.id)) continue;
      const from = this.producer.get(t.id);
      if (!from) continue;
      const iso = from.suite.isolate ? from.suite.isolate(from.cmd, t.id, this.ctx) : from.cmd;
      if (!iso) continue;
      const key = guestCommandLine(iso);
      const g = groups.get(key) ?? { suite: from.suite, cmd: iso, ids: [] };
      g.ids.push(t.id);
      groups.set(key, g);
    }
    for (const g of groups.values()) {
      let open = g.ids;
      for (let k = 1; k <= retries && open.length > 0; k++) {
        log.info(`[${g.suite.name}] retry ${k}/${retries} of ${open.join(', ')}`);
        // Each retry on a pristine guest when one is cheap (restored from the snapshot):
        // what the failed attempt left behind must not decide the retry.
        if (this.session.restorable) await this.session.recycle();
        // FAULTLINE_ATTEMPT tells a program which attempt it is (the first has none).
        const env = { ...g.cmd.env, FAULTLINE_ATTEMPT: String(k + 1) };
        const r = await this.runOnce(g.suite, { ...g.cmd, env, label: `${g.cmd.label}.retry${k}` }, 'retry');
        open = open.filter((id) => !this.recordAttempt(id, r, k));
      }
    }
  }

  /** Add retry `k`'s outcome to subtest `id`; true when it passed (the subtest is then flaky). */
  private recordAttempt(id: string, r: ProgramResult, k: number): boolean {
    const t = this.subtests.get(id);
    if (!t) return true;
    t.attempts ??= [
      {
        status: t.status,
        ...(t.reason !== undefined ? { reason: t.reason } : {}),
        outputFile: this.firstOutput.get(id) ?? '',
      },
    ];
    const reported = r.subtests.find((x) => x.id === id);
    // A program that passed on retry has no crash or exit code to report any more.
    const again =
      reported ?? (t.name === EXIT_STATUS && r.program.status === 'pass' ? { status: 'pass' as const } : undefined);
    const status = again?.status ?? 'error';
    const reason = again
      ? reported?.reason
      : `not reported by the retry (${r.program.reason ?? `exit ${String(r.program.exitCode)}`})`;
    t.attempts.push({ status, ...(reason !== undefined ? { reason } : {}), outputFile: r.program.outputFile });
    if (status !== 'pass') return false;
    const first = t.attempts[0];
    t.status = 'flaky';
    t.reason = `passed on retry ${k} after ${first?.status ?? 'fail'}${first?.reason ? `: ${first.reason}` : ''}`;
    return true;
  }
}
