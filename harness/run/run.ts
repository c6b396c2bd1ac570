import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { ExitCode, FaultlineError, UsageError, type ExitCodeValue } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { buildInitramfs } from '../image/initramfs.js';
import { buildSelftests, type SelftestProgram } from '../selftests/build.js';
import { suiteByName } from '../suites/registry.js';
import type { GuestCommand, Suite, SuiteContext } from '../suites/types.js';
import { summarize, verdictOf } from '../results/record.js';
import type { ProgramRun, RunRecord, SubtestResult } from '../results/types.js';
import { writeRunOutputs } from '../results/writers.js';
import { writeLatencyReport } from '../results/latency.js';
import { SshSession } from '../ssh/transport.js';
import { chooseAccel } from '../vm/accel.js';
import { Guest, requireQemu } from '../vm/guest.js';
import { bootGuest } from './boot.js';
import { prepareKernel } from './kernel.js';
import type { RunRequest } from './request.js';

export interface RunOutcome {
  record: RunRecord;
  dir: string;
  exitCode: ExitCodeValue;
}

/** Where the test binaries go in the guest: a writable cwd (pagemap_ioctl needs one). */
const GUEST_DIR = '/root/faultline';
/** Host-side grace beyond a test's own (guest-side) timeout before the guest is declared hung. */
const HANG_GRACE_MS = 60_000;

/** Guest RAM on host hugetlb: check the host has the pages instead of letting QEMU fail obscurely. */
export async function checkHostHugepages(memMiB: number, meminfo?: string): Promise<void> {
  const text = meminfo ?? (await readFile('/proc/meminfo', 'utf8'));
  const free = Number(/^HugePages_Free:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  const sizeKb = Number(/^Hugepagesize:\s+(\d+) kB/m.exec(text)?.[1] ?? 2048);
  const needed = Math.ceil((memMiB * 1024) / sizeKb);
  if (free < needed) {
    const total = Number(/^HugePages_Total:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    throw new UsageError(`--guest-ram hugetlb needs ${needed} free ${sizeKb / 1024} MiB host hugepages for --mem ${memMiB}, the host has ${free}: ` +
      `${needed - free} missing; run 'echo ${total + needed - free} > /proc/sys/vm/nr_hugepages' as root`);
  }
}

export function newRunId(now = new Date()): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

function exitCodeOf(verdict: RunRecord['verdict']): ExitCodeValue {
  return verdict === 'pass' ? ExitCode.ok : verdict === 'fail' ? ExitCode.testFailure : ExitCode.infra;
}

/** Shell-quote for the guest's busybox sh. */
function sq(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function loadSelftests(req: RunRequest, sourceTree: string | undefined, kernelSelftests: string | undefined): Promise<{ dir: string; programs: SelftestProgram[]; source: string; tree?: string }> {
  const prebuilt = req.selftestsDir ?? kernelSelftests;
  if (prebuilt) {
    const manifest = join(prebuilt, 'manifest.json');
    if (!(await exists(manifest))) throw new FaultlineError(`${prebuilt} has no manifest.json: not a faultline selftest build`);
    return { dir: prebuilt, programs: JSON.parse(await readFile(manifest, 'utf8')) as SelftestProgram[], source: req.selftestsDir ? 'prebuilt' : 'kernel-build', ...(sourceTree ? { tree: sourceTree } : {}) };
  }
  const tree = req.selftestsTree ?? sourceTree;
  if (!tree) throw new FaultlineError('no kernel tree to build the selftests from: pass --kernel-src DIR');
  const b = await buildSelftests({ tree });
  return { dir: b.dir, programs: b.programs, source: req.selftestsTree ? 'kernel-src' : 'debian-linux-source', tree };
}

/**
 * One run: kernel -> selftests -> image -> guest -> tests -> results. Always writes
 * a results directory (an infrastructure failure after the boot is recorded in it).
 */
export async function runTests(req: RunRequest): Promise<RunOutcome> {
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const suites: Suite[] = req.suites.map(suiteByName);
  const qemu = await requireQemu();
  if (req.guestRam === 'hugetlb') await checkHostHugepages(req.memMiB);
  if (req.backings.includes('hugetlb-1g') && req.hugepages1g === 0) {
    throw new UsageError('--backing hugetlb-1g needs 1 GiB pages in the guest: add --hugepages-1g N (and --mem large enough)');
  }
  const runId = req.runId ?? newRunId(new Date(t0));
  const dir = resolve(req.resultsRoot, runId);
  await mkdir(join(dir, 'output'), { recursive: true });
  log.attachFile(join(dir, 'run.log'));
  log.info(`run ${runId}: results in ${dir}`);

  const kernel = await prepareKernel(req.kernel, req.aptOptions);
  const selftests = await loadSelftests(req, kernel.sourceTree, kernel.selftestsDir);
  const image = await buildInitramfs(kernel.modulesDir ? { modulesDir: kernel.modulesDir } : {});
  const accel = await chooseAccel(req.accel, { qemu, kernel: kernel.bzImage, initrd: image.path });
  if (accel.accel === 'tcg') log.info(accel.note);
  const prepareMs = Date.now() - t0;

  const ctx: SuiteContext = {
    backings: req.backings, smp: req.smp, memMiB: req.memMiB, hugepages2m: req.hugepages2m, quick: req.quick, programs: selftests.programs,
    ...(req.filter ? { filter: req.filter } : {}),
  };
  const programs: ProgramRun[] = [];
  const subtests: SubtestResult[] = [];
  const record: RunRecord = {
    schema: 'faultline.run/1', runId, startedAt, finishedAt: startedAt, durationMs: 0,
    kernel: kernel.info,
    selftests: { source: selftests.source, ...(selftests.tree ? { tree: selftests.tree } : {}) },
    qemu: { command: [], accel: accel.accel, accelNote: accel.note, memMiB: req.memMiB, smp: req.smp, guestRam: req.guestRam },
    guest: {}, suites: suites.map((s) => s.name), backings: [...req.backings],
    programs, subtests, splats: [], summary: summarize([]), verdict: 'error',
    timing: { totalMs: 0, testsMs: 0, bootMs: 0, pushMs: 0, prepareMs },
  };

  let guest: Guest | undefined;
  let ssh: SshSession | undefined;
  try {
    log.info(`booting ${kernel.info.release ?? kernel.bzImage} (${accel.accel}, ${req.smp} vCPU, ${req.memMiB} MiB, guest RAM ${req.guestRam})`);
    const extraCmdline = [...new Set(suites.flatMap((s) => s.guestCmdline ?? []))].concat(req.cmdline ? [req.cmdline] : []).join(' ');
    const booted = await bootGuest({
      qemu, kernel: kernel.bzImage, initrd: image.path, accel: accel.accel, memMiB: req.memMiB, smp: req.smp, guestRam: req.guestRam,
      hugepages2m: req.hugepages2m, hugepages1g: req.hugepages1g, ...(extraCmdline ? { extraCmdline } : {}),
    }, { consolePath: join(dir, 'console.log'), bootTimeoutSec: req.bootTimeoutSec, keys: image.keys });
    ({ guest, ssh } = booted);
    record.qemu.command = guest.command;
    record.timing.bootMs = booted.bootMs;
    record.guest.bootMs = booted.bootMs;
    log.info(`guest up: ssh ready in ${(booted.bootMs / 1000).toFixed(1)} s (port ${booted.port})`);

    const facts = await ssh.check('uname -r; cat /sys/devices/system/clocksource/clocksource0/current_clocksource; cat /proc/sys/vm/nr_hugepages; grep HugePages_Free /proc/meminfo', 60_000);
    const [uname, clocksource, , freeLine] = facts.trim().split('\n');
    record.guest.uname = uname?.trim() ?? '';
    if (clocksource) record.guest.clocksource = clocksource.trim();
    record.kernel.release ??= record.guest.uname;
    const freeHuge = Number(/(\d+)/.exec(freeLine ?? '')?.[1] ?? 0);
    if (freeHuge < 32) log.warn(`guest has only ${freeHuge} free 2 MiB hugepages (the uffd tests want >= 32): raise --mem or --hugepages`);

    // Push what the chosen suites need and the tree could build.
    const wanted = new Set(suites.flatMap((s) => s.programs));
    const built = selftests.programs.filter((p) => wanted.has(p.name) && p.status === 'built' && p.path);
    const pushStart = Date.now();
    const bytes = await ssh.push(built.map((p) => p.path ?? ''), GUEST_DIR, 300_000);
    record.timing.pushMs = Date.now() - pushStart;
    log.info(`pushed ${built.length} test binaries (${(bytes / 1048576).toFixed(1)} MiB) in ${(record.timing.pushMs / 1000).toFixed(1)} s`);

    for (const suite of suites) {
      // --timeout caps every program; a suite may ask for less.
      for (const cmd of suite.plan(ctx).map((c) => ({ ...c, timeoutSec: Math.min(c.timeoutSec, req.timeoutSec) }))) {
        const prog = selftests.programs.find((p) => p.name === cmd.program);
        if (!prog || prog.status !== 'built') {
          const status = prog?.status === 'failed' ? 'error' : 'skip';
          const reason = prog?.reason ?? `${cmd.program} was not built`;
          programs.push({ program: cmd.program, command: `./${cmd.program} ${cmd.args.join(' ')}`.trim(), ...(cmd.backing ? { backing: cmd.backing } : {}), exitCode: null, timedOut: false, durationMs: 0, status, reason, outputFile: '' });
          subtests.push({ id: `${cmd.program}/${cmd.label}`, suite: suite.name, program: cmd.program, name: cmd.label, ...(cmd.backing ? { backing: cmd.backing } : {}), status, reason });
          continue;
        }
        const alive = await runOne(ssh, guest, suite, cmd, ctx, dir, programs, subtests);
        if (!alive) {
          record.infraError = `guest stopped answering during ${cmd.label}${guest.running ? '' : ` (QEMU exited ${String(guest.exitInfo?.exitCode)})`}`;
          break;
        }
      }
      if (record.infraError) break;
    }
  } catch (e) {
    if (!(e instanceof FaultlineError)) throw e;
    record.infraError = e.message;
    if (e.detail) log.info(e.detail);
  } finally {
    if (req.keepVm && guest?.running && !record.infraError) {
      process.stderr.write(`\nguest left running: ssh -i ${image.keys.clientPrivatePath} -p ${guest.config.sshPort} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1\n(Ctrl-C to stop it)\n`);
      await guest.exited;
    }
    ssh?.close();
    // Let the last console lines arrive before reading splats.
    if (guest?.running) await new Promise((r) => setTimeout(r, 300));
    await guest?.stop();
  }

  if (guest) {
    guest.console.detector.close();
    record.splats = guest.console.detector.splats;
  }
  const finished = Date.now();
  record.finishedAt = new Date(finished).toISOString();
  record.durationMs = finished - t0;
  record.timing.totalMs = record.durationMs;
  record.timing.testsMs = programs.reduce((a, p) => a + p.durationMs, 0);
  record.summary = summarize(subtests);
  record.verdict = verdictOf(record);
  await writeLatencyReport(dir, record);
  await writeRunOutputs(dir, record);
  await log.close();
  return { record, dir, exitCode: exitCodeOf(record.verdict) };
}

/** Run one program in the guest between kmsg markers; returns false when the guest is gone. */
async function runOne(
  ssh: SshSession, guest: Guest, suite: Suite, cmd: GuestCommand, ctx: SuiteContext, dir: string,
  programs: ProgramRun[], subtests: SubtestResult[],
): Promise<boolean> {
  const line = `./${cmd.program}${cmd.args.length ? ' ' + cmd.args.map(sq).join(' ') : ''}`;
  const outputFile = join('output', `${cmd.label}.txt`);
  log.info(`[${suite.name}] ${cmd.label}: ${line}`);
  await ssh.exec(`echo 'faultline: begin ${cmd.label}' > /dev/kmsg`, { timeoutMs: 30_000 });
  // The guest kills the test at its timeout; the host waits a grace period longer before declaring a hang.
  const r = await ssh.exec(`cd ${GUEST_DIR} && exec timeout -s KILL ${cmd.timeoutSec} ${line}`, {
    timeoutMs: cmd.timeoutSec * 1000 + HANG_GRACE_MS, pty: true,
  });
  await writeFile(join(dir, outputFile), r.output);
  // busybox timeout's KILL shows up as exit 137, or as exit-signal KILL (ssh2 names it SIGKILL).
  const killedByTimeout = r.exitCode === 137 || r.signal === 'SIGKILL';
  const out = {
    output: r.output, exitCode: killedByTimeout ? null : r.exitCode,
    timedOut: r.timedOut || (killedByTimeout && r.durationMs >= cmd.timeoutSec * 1000 - 1000), durationMs: r.durationMs,
  };
  const parsed = suite.parse(cmd, out, ctx);
  programs.push({
    program: cmd.program, command: line, ...(cmd.backing ? { backing: cmd.backing } : {}), exitCode: r.exitCode, timedOut: out.timedOut,
    durationMs: r.durationMs, status: parsed.status, ...(parsed.reason ? { reason: parsed.reason } : {}), outputFile,
  });
  subtests.push(...parsed.subtests);
  log.info(`[${suite.name}] ${cmd.label}: ${parsed.status}${parsed.reason ? ` (${parsed.reason})` : ''} in ${(r.durationMs / 1000).toFixed(1)} s`);
  if (r.timedOut || !guest.running) {
    if (!guest.running) return false;
    const ping = await ssh.exec('echo alive', { timeoutMs: 30_000 }).catch(() => undefined);
    if (!ping || ping.timedOut || !/alive/.test(ping.output)) return false;
  }
  await ssh.exec(`echo 'faultline: end ${cmd.label}' > /dev/kmsg`, { timeoutMs: 30_000 });
  return true;
}

