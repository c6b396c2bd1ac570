import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { explainsDeadGuest } from '../console/severity.js';
import { errorMessage } from '../util/errors.js';
import { log } from '../util/log.js';
import { shellQuote } from '../util/proc.js';
import type { ProgramRun, Splat, SubtestResult } from '../results/types.js';
import { SshSession, type ExecResult } from '../ssh/transport.js';
import type { GuestCommand, ParsedProgram, ProgramOutput, Suite, SuiteContext } from '../suites/types.js';
import { CONSOLE_LOG_LIMIT_BYTES, type Guest } from '../vm/guest.js';
import { GUEST_DIR, type GuestSession, type LiveGuest } from './session.js';
import type { GuestSysctl } from '../selftests/mm-programs.js';
import { killedProgram, oomKill } from '../console/oom.js';

/** Host-side grace beyond a test's own (guest-side) timeout before the guest is declared hung. */
const HANG_GRACE_MS = 60_000;
/** A guest that dies takes its sshd with it; QEMU may take a moment longer to exit. */
const EXIT_GRACE_MS = 3_000;
/**
 * The most output a program may print (about 100 times the largest a suite prints, the mm
 * suite's 140 KiB): past it the program is killed, a test that floods gigabytes must not
 * fill the host.
 */
export const PROGRAM_OUTPUT_LIMIT_BYTES = 16 * 2 ** 20;

/** One invocation of a program in the guest, as recorded. */
export interface ProgramResult {
  program: ProgramRun;
  subtests: SubtestResult[];
  /** The guest was lost while it ran: it died or stopped answering. */
  lostGuest?: { reason: string; kernelSign: boolean };
  /** The program did not run to its end (crash, signal, timeout, lost guest): its unreached subtests need a resume. */
  died: boolean;
  timedOut: boolean;
  /** Ids of subtests that failed because of a kernel splat: never retried into `flaky`. */
  splatFailed: string[];
}

function envPrefix(cmd: GuestCommand): string {
  return Object.entries(cmd.env ?? {})
    .map(([k, v]) => `${k}=${shellQuote(v)} `)
    .join('');
}

function argvLine(cmd: GuestCommand): string {
  const run = cmd.interpreter ? `./${cmd.interpreter} ./${cmd.program}` : `./${cmd.program}`;
  return `${run}${cmd.args.length ? ' ' + cmd.args.map(shellQuote).join(' ') : ''}`;
}

/** Where the settings a program changed are written back from, after it. */
const RESTORE = `${GUEST_DIR}/.faultline-restore`;

/**
 * Shell that makes the guest settings `cmd` needs, writing the old values to RESTORE first;
 * errors (a sysctl this kernel lacks) stay out of the program's output.
 */
/** Shell steps that make each setting, first appending the line that puts it back to `restore`. */
export function sysctlSteps(sysctls: readonly GuestSysctl[], restore: string): string[] {
  return sysctls.map(({ path, value, atLeast }) => {
    const p = shellQuote(path);
    const set = `echo "echo $(cat ${p}) > ${p}" >> ${shellQuote(restore)}; echo ${value} > ${p}`;
    return atLeast ? `[ "$(cat ${p})" -ge ${value} ] || { ${set}; }` : set;
  });
}

function prepareLine(cmd: GuestCommand): string {
  const steps: string[] = [];
  if (cmd.hugetlbfsDir) {
    const d = shellQuote(cmd.hugetlbfsDir);
    steps.push(`mkdir -p ${d}`, `mountpoint -q ${d} || mount -t hugetlbfs none ${d}`);
  }
  if (cmd.settle) steps.push('echo 3 > /proc/sys/vm/drop_caches', 'echo 1 > /proc/sys/vm/compact_memory');
  steps.push(...sysctlSteps(cmd.sysctls ?? [], RESTORE));
  // Scripts call `bash other.sh` and start others by their #!/bin/bash line: the pushed
  // interpreter must be on PATH and at /bin (the guest's busybox has no bash).
  if (cmd.interpreter) {
    const bin = shellQuote(`/bin/${cmd.interpreter}`);
    steps.push(`[ -e ${bin} ] || ln -s ${shellQuote(`${GUEST_DIR}/${cmd.interpreter}`)} ${bin}`);
  }
  const path = cmd.interpreter ? `PATH=${GUEST_DIR}:/usr/sbin:/usr/bin:/sbin:/bin ` : '';
  return steps.length ? `{ ${steps.join('; ')}; true; } 2>/dev/null && ${path}` : path;
}

/** The command as a user would type it in the guest's work directory. */
export function guestCommandLine(cmd: GuestCommand): string {
  return `${envPrefix(cmd)}${argvLine(cmd)}`;
}

/** The subtest a lost guest or a splat is charged to when the suite cannot name one. */
function programSubtestId(cmd: GuestCommand): string {
  return `${cmd.program}/program${cmd.backing ? `/${cmd.backing}` : ''}`;
}

interface Streamed {
  chunks: { at: number; text: string }[];
}

function outputUntil(s: Streamed, at: number): string {
  return s.chunks
    .filter((c) => c.at <= at)
    .map((c) => c.text)
    .join('');
}

/**
 * Run one program between kmsg markers on the session's guest (booted first if the last
 * one was lost). A guest that dies or stops answering is dropped, and the running subtest
 * fails with the kernel's splat title when the console explains the loss; otherwise it
 * errors, naming what happened and after how long.
 */
export async function runProgram(
  session: GuestSession,
  suite: Suite,
  cmd: GuestCommand,
  ctx: SuiteContext,
  dir: string,
  purpose?: 'resume' | 'retry',
): Promise<ProgramResult> {
  const line = guestCommandLine(cmd);
  const outputFile = join('output', `${cmd.label}.txt`);
  log.info(`[${suite.name}] ${cmd.label}: ${line}`);
  const live = await guestForNextProgram(session, cmd);
  const consoleStart = live.guest.console.lineTimes.length;
  const consoleHadRoom = live.guest.console.cutOffAt === undefined;
  const streamed: Streamed = { chunks: [] };
  // The guest kills the test at its timeout; the host waits a grace period longer before declaring a hang.
  const r = await live.ssh.exec(
    `cd ${GUEST_DIR} && ${prepareLine(cmd)}${envPrefix(cmd)}exec timeout -s KILL ${cmd.timeoutSec} ${argvLine(cmd)}`,
    {
      timeoutMs: cmd.timeoutSec * 1000 + HANG_GRACE_MS,
      pty: true,
      maxOutputBytes: PROGRAM_OUTPUT_LIMIT_BYTES,
      onData: (text) => streamed.chunks.push({ at: Date.now(), text }),
    },
  );
  await writeFile(join(dir, outputFile), r.output);
  const lost = await guestLoss(live, r);
  // busybox timeout's KILL shows up as exit 137, or as exit-signal KILL (ssh2 names it SIGKILL).
  const killed = r.exitCode === 137 || r.signal === 'SIGKILL';
  const out: ProgramOutput = {
    output: r.output,
    exitCode: killed || lost ? null : r.exitCode,
    ...(r.signal && SSH_SIGNAL_NAME.test(r.signal) && !killed && !lost ? { signal: r.signal } : {}),
    timedOut: !lost && (r.timedOut || (killed && r.durationMs >= cmd.timeoutSec * 1000 - 1000)),
    durationMs: r.durationMs,
  };
  const parsed = suite.parse(cmd, out, ctx);
  const during = live.guest.console.detector.splats.filter((s) => s.line > consoleStart);
  attributeSplats(during, live.guest, streamed, parsed, suite, cmd, ctx);
  const result: ProgramResult = {
    program: {
      program: cmd.program,
      command: line,
      ...(cmd.backing ? { backing: cmd.backing } : {}),
      exitCode: r.exitCode,
      timedOut: out.timedOut,
      durationMs: r.durationMs,
      status: parsed.status,
      ...(parsed.reason ? { reason: parsed.reason } : {}),
      outputFile,
      ...(purpose ? { purpose } : {}),
    },
    subtests: parsed.subtests,
    died: lost !== undefined || parsed.status === 'error',
    timedOut: out.timedOut,
    splatFailed: [],
  };
  if (lost !== undefined) {
    chargeLoss(result, lost, during, r.output, suite, cmd, ctx);
    await session.drop();
  } else {
    if (killed && !out.timedOut)
      explainOomKill(
        result,
        live.guest.console.all.split('\n').slice(consoleStart).join('\n'),
        suite,
        cmd,
        ctx,
        r.output,
      );
    if (consoleHadRoom) explainFlood(result, r, live.guest.console.cutOffAt, suite, cmd, ctx);
    await endProgram(live, cmd);
  }
  log.info(
    `[${suite.name}] ${cmd.label}: ${result.program.status}${result.program.reason ? ` (${result.program.reason})` : ''} in ${(r.durationMs / 1000).toFixed(1)} s`,
  );
  return result;
}

/** Undo what the program's command set up and mark its end on the console. */
async function endProgram(live: LiveGuest, cmd: GuestCommand): Promise<void> {
  const rm = cmd.leaves?.length ? `rm -f ${cmd.leaves.map(shellQuote).join(' ')}; ` : '';
  const restore = cmd.sysctls?.length ? `[ -f ${RESTORE} ] && sh ${RESTORE}; rm -f ${RESTORE}; ` : '';
  // A guest that dies right after the program is the next program's to find (and reboot).
  await live.ssh
    .exec(`cd ${GUEST_DIR}; ${rm}${restore}echo 'faultline: end ${cmd.label}' > /dev/kmsg`, { timeoutMs: 30_000 })
    .catch((e: unknown) => log.info(`end marker not written: ${errorMessage(e)}`));
}

/**
 * The guest with this program's begin marker written: a guest lost between programs (a
 * panic after the last one ended, a dropped connection) is replaced by a fresh boot.
 */
async function guestForNextProgram(session: GuestSession, cmd: GuestCommand): Promise<LiveGuest> {
  for (let attempt = 1; ; attempt++) {
    const live = await session.up();
    try {
      await live.ssh.exec(`echo 'faultline: begin ${cmd.label}' > /dev/kmsg`, { timeoutMs: 30_000 });
      return live;
    } catch (e) {
      if (attempt >= 2) throw e;
      log.info(`the guest was lost between programs (${errorMessage(e)}): booting a new one`);
      await session.drop();
    }
  }
}

/**
 * A signal as SSH names it: OpenSSH's sshd names only the 13 signals of RFC 4254 (SEGV, ABRT, ...)
 * and sends "SIG@openssh.com" for any other (SIGBUS among them), which names nothing.
 */
const SSH_SIGNAL_NAME = /^SIG[A-Z0-9]+$/;

/**
 * Why the guest is gone, or undefined when it still answers. A broken connection is
 * checked with a fresh one: the guest may be fine and only this connection lost.
 */
async function guestLoss(
  live: LiveGuest,
  r: Pick<ExecResult, 'lost' | 'timedOut' | 'durationMs' | 'exitCode' | 'signal' | 'outputCutOffBytes'>,
): Promise<string | undefined> {
  const { guest } = live;
  const secs = `${Math.round(r.durationMs / 1000)} s`;
  // A channel that closed with neither exit status nor signal: the connection broke under it.
  const noStatus = r.exitCode === null && r.signal === undefined && !r.timedOut && r.outputCutOffBytes === undefined;
  if (r.lost !== undefined || noStatus || !guest.running) {
    await Promise.race([guest.exited, new Promise((res) => setTimeout(res, EXIT_GRACE_MS))]);
    if (!guest.running) {
      const how = guest.exitInfo?.signal
        ? `QEMU was killed by ${guest.exitInfo.signal}`
        : `QEMU exited with code ${String(guest.exitInfo?.exitCode)}`;
      return `the guest died ${secs} into the program (${how})`;
    }
    const again = await SshSession.connect(live.ssh.target, Date.now() + 20_000, () =>
      guest.running ? undefined : 'QEMU exited',
    ).catch((e: unknown) => errorMessage(e));
    if (typeof again === 'string') {
      const was = `SSH connection lost: ${r.lost ?? live.ssh.lostReason ?? 'closed without an exit status'}; a new connection failed: ${again}`;
      // A reset or a close before the banner: the guest's network stack answered, so the kernel
      // runs and its sshd is gone (a hung guest lets the handshake time out instead).
      return /ECONNRESET|ECONNREFUSED|Connection lost before handshake/.test(again)
        ? `the guest's sshd no longer answers ${secs} into the program though the guest runs (${was})`
        : `the guest stopped responding ${secs} into the program (${was})`;
    }
    live.ssh = again;
    return undefined;
  }
  if (r.timedOut) {
    const ping = await live.ssh.exec('echo alive', { timeoutMs: 30_000 }).catch(() => undefined);
    if (!ping || ping.timedOut || !/alive/.test(ping.output))
      return `the guest stopped responding ${secs} into the program (no answer to SSH for 30 s after the program's deadline)`;
  }
  return undefined;
}

/**
 * Splats that appeared while `cmd` ran: each charged to the subtest the program had
 * reached when the report's first line arrived, or to the program's only subtest.
 */
function attributeSplats(
  splats: readonly Splat[],
  guest: Guest,
  streamed: Streamed,
  parsed: ParsedProgram,
  suite: Suite,
  cmd: GuestCommand,
  ctx: SuiteContext,
): void {
  for (const s of splats) {
    const at = guest.console.lineTimes[s.line - 1] ?? Date.now();
    const id = subtestAt(outputUntil(streamed, at), parsed.subtests, suite, cmd, ctx);
    if (id !== undefined) s.subtest = id;
  }
}

/** The subtest the program was in once it had printed `output`: the one the suite names, else the program's only one. */
function subtestAt(
  output: string,
  subtests: readonly SubtestResult[],
  suite: Suite,
  cmd: GuestCommand,
  ctx: SuiteContext,
): string | undefined {
  return suite.runningSubtest?.(cmd, output, ctx) ?? (subtests.length === 1 ? subtests[0]?.id : undefined);
}

function upsert(
  result: ProgramResult,
  id: string,
  suite: Suite,
  cmd: GuestCommand,
  patch: Pick<SubtestResult, 'status' | 'reason'>,
): void {
  const existing = result.subtests.find((t) => t.id === id);
  if (existing) Object.assign(existing, patch);
  else {
    const name = id.split('/')[1] ?? 'program';
    result.subtests.push({
      id,
      suite: suite.name,
      program: cmd.program,
      name,
      ...(cmd.backing ? { backing: cmd.backing } : {}),
      ...patch,
    });
  }
}

function chargeLoss(
  result: ProgramResult,
  lost: string,
  during: readonly Splat[],
  output: string,
  suite: Suite,
  cmd: GuestCommand,
  ctx: SuiteContext,
): void {
  const fatal = during.find(explainsDeadGuest);
  const id = fatal?.subtest ?? subtestAt(output, result.subtests, suite, cmd, ctx) ?? programSubtestId(cmd);
  if (fatal) {
    fatal.subtest = id;
    const reason = `kernel ${fatal.kind}: ${fatal.title}`;
    upsert(result, id, suite, cmd, { status: 'fail', reason });
    result.splatFailed.push(id);
    Object.assign(result.program, { status: 'fail', reason: `${lost}: ${reason}` });
    result.lostGuest = { reason: `${lost}: ${reason}`, kernelSign: true };
  } else {
    const reason = `${lost}; no kernel message on the console`;
    upsert(result, id, suite, cmd, { status: 'error', reason });
    Object.assign(result.program, { status: 'error', reason });
    result.lostGuest = { reason: `${reason} (during ${cmd.label})`, kernelSign: false };
  }
}

/**
 * A program that flooded its output (killed at the bound) or the guest's console (cut off
 * at its bound while the program ran) fails, saying which and at what bound.
 */
function explainFlood(
  result: ProgramResult,
  r: Pick<ExecResult, 'output' | 'outputCutOffBytes'>,
  consoleCutOffAt: number | undefined,
  suite: Suite,
  cmd: GuestCommand,
  ctx: SuiteContext,
): void {
  const mib = (b: number): string => `${b / 2 ** 20} MiB`;
  const why = [
    r.outputCutOffBytes !== undefined
      ? `output flood: killed when its output reached the bound of ${mib(r.outputCutOffBytes)}, the rest dropped`
      : '',
    consoleCutOffAt !== undefined
      ? `console flood: console.log cut off at its bound of ${mib(CONSOLE_LOG_LIMIT_BYTES)} while it ran`
      : '',
  ].filter(Boolean);
  if (!why.length) return;
  const reason = why.join('; ');
  const id = subtestAt(r.output, result.subtests, suite, cmd, ctx) ?? programSubtestId(cmd);
  upsert(result, id, suite, cmd, { status: 'fail', reason });
  Object.assign(result.program, { status: 'fail', reason });
}

/** A program SIGKILLed before its deadline: when the guest's OOM killer did it, say so. */
function explainOomKill(
  result: ProgramResult,
  consoleSince: string,
  suite: Suite,
  cmd: GuestCommand,
  ctx: SuiteContext,
  output: string,
): void {
  const kill = oomKill(consoleSince);
  if (!kill || !killedProgram(kill, cmd.program)) return;
  const reason = `killed by the guest's OOM killer (${kill.line})`;
  const id = subtestAt(output, result.subtests, suite, cmd, ctx) ?? programSubtestId(cmd);
  upsert(result, id, suite, cmd, { status: 'error', reason });
  Object.assign(result.program, { status: 'error', reason });
}
