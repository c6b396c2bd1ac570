import { mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { errorMessage, FaultlineError, UsageError, type ExitCodeValue } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { buildInitramfs } from '../image/initramfs.js';
import { bootImage } from '../image/payload.js';
import { acquireKernel, type AcquireOptions, type BootableKernel } from '../kernel/bootable.js';
import { buildSelftests, readSelftestManifest } from '../selftests/build.js';
import type { SelftestProgram } from '../results/selftests.js';
import { buildUserProgram } from '../selftests/user-program.js';
import { programSuite } from '../suites/program.js';
import { suiteByName } from '../suites/registry.js';
import type { Suite, SuiteContext } from '../suites/types.js';
import { exitCodeOf, newRunRecord, summarize, verdictOf, writeRunRecord } from '../results/record.js';
import {
  applyKnownIssues,
  overdueKnownIssues,
  programOutputs,
  readKnownIssues,
  type KnownIssue,
} from '../results/known-issues.js';
import type { GuestRunRecord, StagedBinaries } from '../results/types.js';
import type { SshSession } from '../ssh/transport.js';
import { chooseAccel, type AccelChoice } from '../vm/accel.js';
import { requireQemu } from '../vm/guest.js';
import { PlanRunner, type PlanOutcome } from './execute.js';
import type { RunRequest, RunViewWriter } from './request.js';
import type { ProgressMode } from '../kernel/build-progress.js';
import { GUEST_DIR, GuestSession } from './session.js';

export interface RunOutcome {
  record: GuestRunRecord;
  dir: string;
  exitCode: ExitCodeValue;
}

/** Boots one run may take: the first and up to four reboots after programs that took the guest down. */
/**
 * Guests one run may boot when they are lost with no sign from the kernel, and kernel crashes it
 * survives (each costs a restore, ~2 s with a snapshot; panic_on_warn makes every WARN one).
 */
const GUEST_LIMITS = { maxBoots: 5, maxKernelCrashes: 20 };

/** Guest RAM on host hugetlb: check the host has the pages instead of letting QEMU fail obscurely. */
export async function checkHostHugepages(memMiB: number, meminfo?: string): Promise<void> {
  const text = meminfo ?? (await readFile('/proc/meminfo', 'utf8'));
  const free = Number(/^HugePages_Free:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  const sizeKb = Number(/^Hugepagesize:\s+(\d+) kB/m.exec(text)?.[1] ?? 2048);
  const needed = Math.ceil((memMiB * 1024) / sizeKb);
  if (free < needed) {
    const total = Number(/^HugePages_Total:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    throw new UsageError(
      `--guest-ram hugetlb needs ${needed} free ${sizeKb / 1024} MiB host hugepages for --mem ${memMiB}, the host has ${free}: ` +
        `${needed - free} missing; run 'echo ${total + needed - free} > /proc/sys/vm/nr_hugepages' as root`,
    );
  }
}

function newRunId(now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

async function loadSelftests(
  req: RunRequest,
  sourceTree: string | undefined,
  kernelSelftests: string | undefined,
): Promise<{ dir: string; programs: SelftestProgram[]; source: string; tree?: string }> {
  const prebuilt = req.selftestsDir ?? kernelSelftests;
  if (prebuilt) {
    const manifest = join(prebuilt, 'manifest.json');
    if (!(await exists(manifest)))
      throw new FaultlineError(`${prebuilt} has no manifest.json: not a faultline selftest build`);
    return {
      dir: prebuilt,
      programs: await readSelftestManifest(manifest),
      source: req.selftestsDir ? 'prebuilt' : 'kernel-build',
      // The tree they came from (its uapi headers build --program), when the caller names it.
      ...((req.selftestsTree ?? sourceTree) ? { tree: req.selftestsTree ?? sourceTree } : {}),
    };
  }
  const tree = req.selftestsTree ?? sourceTree;
  if (!tree) throw new FaultlineError('no kernel tree to build the selftests from: pass --kernel-src DIR');
  const b = await buildSelftests({ tree });
  return { dir: b.dir, programs: b.programs, source: req.selftestsTree ? 'kernel-src' : 'debian-linux-source', tree };
}

/** The user's --program files, built against the tested tree; they join the selftests' program list. */
async function buildOwnPrograms(
  req: RunRequest,
  selftests: { programs: SelftestProgram[]; tree?: string },
): Promise<{ suite: Suite } | undefined> {
  if (!req.programs?.length) return undefined;
  if (!selftests.tree)
    throw new UsageError('--program needs the tested kernel tree for its uapi headers: pass --kernel-src DIR');
  const taken = new Set(selftests.programs.map((p) => p.name));
  const names: string[] = [];
  for (const path of req.programs) {
    const built = await buildUserProgram(path, selftests.tree);
    if (taken.has(built.name))
      throw new UsageError(`--program ${path}: the name '${built.name}' is taken by another program: rename the file`);
    taken.add(built.name);
    selftests.programs.push(built);
    names.push(built.name);
  }
  return { suite: programSuite(names, req.timeoutSec) };
}

/** Programs suites build from the tested tree on demand (suite mm): they join the list and are pushed. */
export async function buildSuitePrograms(
  suites: readonly Suite[],
  selftests: { programs: SelftestProgram[]; tree?: string },
): Promise<string[]> {
  const names: string[] = [];
  for (const suite of suites) {
    if (!suite.buildPrograms) continue;
    if (!selftests.tree)
      throw new UsageError(`suite ${suite.name} builds its programs from the tested tree: pass --kernel-src DIR`);
    for (const p of await suite.buildPrograms(selftests.tree)) {
      if (selftests.programs.some((q) => q.name === p.name)) continue;
      selftests.programs.push(p);
      names.push(p.name);
    }
  }
  return names;
}

/**
 * Refuse requests that cannot work before anything is downloaded or booted; the known issues
 * they name, read (a bad file is refused here too).
 */
async function checkRequest(req: RunRequest, suites: readonly Suite[]): Promise<KnownIssue[]> {
  if (suites.length === 0 && !req.programs?.length)
    throw new UsageError('nothing to run: name a --suite or a --program');
  if (req.guestRam === 'hugetlb') await checkHostHugepages(req.memMiB);
  if (req.backings.includes('hugetlb-1g') && req.hugepages1g === 0) {
    throw new UsageError(
      '--backing hugetlb-1g needs 1 GiB pages in the guest: add --hugepages-1g N (and --mem large enough)',
    );
  }
  return readKnownIssues(req.knownIssues ?? []);
}

/** The run's record before any test ran: what was booted, how, and how long preparing it took. */
function newGuestRecord(
  req: RunRequest,
  runId: string,
  t0: number,
  parts: { kernel: BootableKernel; selftests: { source: string; tree?: string }; accel: AccelChoice; suites: Suite[] },
): GuestRunRecord {
  const { kernel, selftests, accel, suites } = parts;
  return newRunRecord({
    runId,
    startedAt: new Date(t0).toISOString(),
    kernel: kernel.info,
    selftests: { source: selftests.source, ...(selftests.tree ? { tree: selftests.tree } : {}) },
    qemu: {
      command: [],
      accel: accel.accel,
      accelNote: accel.note,
      memMiB: req.memMiB,
      smp: req.smp,
      guestRam: req.guestRam,
      ...(req.numaNodes !== undefined && req.numaNodes > 1 ? { numaNodes: req.numaNodes } : {}),
    },
    suites: suites.map((s) => s.name),
    backings: [...req.backings],
    timing: { prepareMs: Date.now() - t0 },
  });
}

/**
 * One run: kernel -> selftests -> image -> guest -> tests -> results. Always writes
 * a results directory (an infrastructure failure after the boot is recorded in it): the
 * caller's `views` of the run, then results.json. `buildProgress`: how a kernel built for the
 * run shows its progress (the CLI's terminal line; plain log lines by default). `startGate`:
 * resolves when the run may start its guest (waitForTurn).
 */
export async function runTests(
  req: RunRequest,
  o: { views?: RunViewWriter; buildProgress?: ProgressMode; startGate?: () => Promise<boolean> } = {},
): Promise<RunOutcome> {
  const t0 = Date.now();
  const suites: Suite[] = req.suites.map(suiteByName);
  const known = await checkRequest(req, suites);
  const qemu = await requireQemu();
  const runId = req.runId ?? newRunId(new Date(t0));
  const dir = resolve(req.resultsRoot, runId);
  await mkdir(join(dir, 'output'), { recursive: true });
  log.attachFile(join(dir, 'run.log'));
  log.info(`run ${runId}: results in ${dir}`);

  const acquire = acquireOptionsOf(req);
  const progress = o.buildProgress ? { progress: o.buildProgress } : {};
  const kernel = await acquireKernel(req.kernel, { ...acquire, build: { ...acquire.build, ...progress } });
  const selftests = await loadSelftests(req, kernel.sourceTree, kernel.selftestsDir);
  const suiteBuilt = await buildSuitePrograms(suites, selftests);
  const own = await buildOwnPrograms(req, selftests);
  if (own) suites.push(own.suite);
  const image = await buildInitramfs(kernel.modulesDir ? { modulesDir: kernel.modulesDir } : {});
  const accel = await chooseAccel(req.accel, { qemu, kernel: kernel.bzImage, initrd: image.path });
  if (accel.accel === 'tcg') log.info(accel.note);
  const extraCmdline = [...new Set(suites.flatMap((s) => s.guestCmdline ?? []))]
    .concat(req.cmdline ? [req.cmdline] : [])
    .join(' ');
  const wanted = new Set([...suites.flatMap((s) => s.programs), ...suiteBuilt]);
  const push = selftests.programs
    .filter((p) => wanted.has(p.name) && p.status === 'built' && p.path)
    .map((p) => p.path ?? '');
  const session = new GuestSession(
    {
      qemu,
      kernel: kernel.bzImage,
      initrd: image.path,
      accel: accel.accel,
      memMiB: req.memMiB,
      smp: req.smp,
      guestRam: req.guestRam,
      hugepages2m: req.hugepages2m,
      hugepages1g: req.hugepages1g,
      ...(extraCmdline ? { extraCmdline } : {}),
      ...(req.numaNodes !== undefined && req.numaNodes > 1 ? { numaNodes: req.numaNodes } : {}),
    },
    {
      consolePath: join(dir, 'console.log'),
      bootTimeoutSec: req.bootTimeoutSec,
      keys: image.keys,
      ...GUEST_LIMITS,
      snapshot: req.noSnapshot !== true,
      push,
      ...(req.pushBinaries ? {} : { bootInitrd: () => bootImage(image, push, GUEST_DIR) }),
    },
  );
  const turn = await waitForTurn(session, o.startGate, t0);
  const record = newGuestRecord(req, runId, turn.at, { kernel, selftests, accel, suites });
  if (turn.aheadMs !== undefined) record.timing.aheadMs = turn.aheadMs;
  const ctx = suiteContext(req, selftests.programs);
  await runOnGuest(
    record,
    session,
    req,
    () => new PlanRunner(session, ctx, dir, selftests.programs, req.timeoutSec).run(suites, req.retries),
    image.keys.clientPrivatePath,
  );
  finishRecord(record, session, turn.at, known, await programOutputs(record, dir, known));
  await o.views?.(dir, record);
  await writeRunRecord(dir, record);
  await log.close();
  return { record, dir, exitCode: exitCodeOf(record, req.flakyIsFailure ?? false, req.knownIsFailure ?? false) };
}

/** How often a run waiting for its turn looks for the snapshot it could load. */
const PRELOAD_RETRY_MS = 500;

/**
 * A run told to wait for its turn (`startGate`: a nightly job whose lane is busy) loads its
 * guest from the snapshot, paused, and waits; its record then counts from the go (`at`), and
 * the work done before it is `aheadMs`. A gate that says stop ends the run before any test.
 */
async function waitForTurn(
  session: GuestSession,
  gate: (() => Promise<boolean>) | undefined,
  t0: number,
): Promise<{ at: number; aheadMs?: number }> {
  if (!gate) return { at: t0 };
  let go: boolean | undefined;
  const word = gate().then((v) => (go = v));
  // The job before may be the one saving the snapshot: look again until it is there or the turn comes.
  for (let state = 'none yet'; go === undefined && state === 'none yet';) {
    state = await session.preload().catch((e: unknown) => {
      log.info(`loading the guest ahead failed: ${errorMessage(e)}`);
      return 'never';
    });
    if (state === 'none yet') await Promise.race([word, new Promise((r) => setTimeout(r, PRELOAD_RETRY_MS))]);
  }
  if (!(await word)) {
    await session.drop();
    throw new FaultlineError('stopped before its turn came: no test ran');
  }
  const at = Date.now();
  log.info(`let go: ${((at - t0) / 1000).toFixed(1)} s after the run started`);
  return { at, aheadMs: at - t0 };
}

/** How the request's kernel is acquired: its apt options and resolution policy. */
export function acquireOptionsOf(req: RunRequest): AcquireOptions {
  return {
    // A kernel built from a tree comes with that tree's selftests, linked into its artifacts.
    build: { selftests: buildSelftests },
    ...(req.aptOptions ? { aptOptions: req.aptOptions } : {}),
    ...(req.refresh ? { refresh: true } : {}),
    ...(req.offline ? { offline: true } : {}),
  };
}

/** What the suites plan their programs from: the request's guest and filters, the programs built. */
export function suiteContext(req: RunRequest, programs: SelftestProgram[]): SuiteContext {
  return {
    backings: req.backings,
    smp: req.smp,
    memMiB: req.memMiB,
    hugepages2m: req.hugepages2m,
    quick: req.quick,
    programs,
    ...(req.filter ? { filter: req.filter } : {}),
    ...(req.categories?.length ? { categories: req.categories } : {}),
  };
}

/** Boot, check the guest, run the plan; whatever happens, the guest is stopped and the record says why. */
async function runOnGuest(
  record: GuestRunRecord,
  session: GuestSession,
  req: RunRequest,
  plan: () => Promise<PlanOutcome>,
  keyPath: string,
): Promise<void> {
  try {
    log.info(
      `booting ${record.kernel.release ?? record.kernel.path} (${record.qemu.accel}, ${req.smp} vCPU, ${req.memMiB} MiB, guest RAM ${req.guestRam})`,
    );
    const { guest } = await session.up((ssh) => checkGuestFacts(record, ssh, req));
    recordFirstBoot(record, session, guest.command);
    const outcome = await plan();
    record.programs.push(...outcome.programs);
    record.subtests.push(...outcome.subtests);
    if (outcome.infraErrors.length) record.infraError = outcome.infraErrors.join('; ');
  } catch (e) {
    if (!(e instanceof FaultlineError)) throw e;
    record.infraError = e.message;
    if (e.detail) log.info(e.detail);
  } finally {
    const live = session.current;
    if (req.keepVm && live?.guest.running && !record.infraError) {
      process.stderr.write(
        `\nguest left running: ssh -i ${keyPath} -p ${live.guest.config.sshPort} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1\n(Ctrl-C to stop it)\n`,
      );
      await live.guest.exited;
    }
    await session.drop();
  }
}

function finishRecord(
  record: GuestRunRecord,
  session: GuestSession,
  t0: number,
  known: KnownIssue[],
  outputs: ReadonlyMap<string, string>,
): void {
  record.splats = session.splats;
  applyKnownIssues(record, known, outputs);
  for (const k of overdueKnownIssues(known, new Date().toISOString().slice(0, 10)))
    log.warn(`known issue ${k.id} was due for review on ${k.review_by ?? ''}: is it still there? (${k.report})`);
  record.guest.boots = session.boots;
  if (session.starts.length) record.guest.starts = session.starts;
  const finished = Date.now();
  record.finishedAt = new Date(finished).toISOString();
  record.durationMs = finished - t0;
  record.timing.totalMs = record.durationMs;
  record.timing.testsMs = record.programs.reduce((a, p) => a + p.durationMs, 0);
  record.summary = summarize(record.subtests);
  record.verdict = verdictOf(record);
}

function recordFirstBoot(record: GuestRunRecord, session: GuestSession, command: string[]): void {
  const first = session.first;
  record.qemu.command = command;
  if (!first) return;
  record.timing.bootMs = first.bootMs;
  record.guest.bootMs = first.bootMs;
  record.timing.pushMs = first.pushMs;
  log.info(
    `guest up: ssh ready in ${(first.bootMs / 1000).toFixed(1)} s (port ${first.port}); ${stagedLine(first.staged)}`,
  );
}

/** What staging the test binaries did, for the log. */
function stagedLine(s: StagedBinaries): string {
  const pushed = `pushed ${s.pushed} (${(s.bytes / 1048576).toFixed(1)} MiB)`;
  const removed = s.removed > 0 ? `, removed ${s.removed} the run does not use` : '';
  return `test binaries: ${s.kept} already in the guest (SHA-256 checked), ${pushed}${removed}, in ${(s.ms / 1000).toFixed(1)} s`;
}

async function checkGuestFacts(record: GuestRunRecord, ssh: SshSession, req: RunRequest): Promise<void> {
  const facts = await ssh.check(
    [
      'uname -r',
      'cat /sys/devices/system/clocksource/clocksource0/current_clocksource',
      'cat /proc/sys/vm/nr_hugepages',
      'grep HugePages_Free /proc/meminfo',
      'ls -d /sys/devices/system/node/node* | wc -l',
      'cat /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages 2>/dev/null || echo 0',
    ].join('; '),
    60_000,
  );
  const [uname, clocksource, , freeLine, nodes, pages1g] = facts.trim().split('\n');
  record.guest.uname = uname?.trim() ?? '';
  if (clocksource) record.guest.clocksource = clocksource.trim();
  // A kernel built without CONFIG_NUMA has no node directories: that is one node.
  const nodeCount = Number(nodes?.trim());
  if (Number.isInteger(nodeCount) && nodeCount >= 1) record.guest.numaNodes = nodeCount;
  const reserved1g = Number(pages1g?.trim());
  record.guest.hugepages1g = Number.isInteger(reserved1g) ? reserved1g : 0;
  record.kernel.release ??= record.guest.uname;
  const freeHuge = Number(/(\d+)/.exec(freeLine ?? '')?.[1] ?? 0);
  if (freeHuge < 32)
    log.warn(`guest has only ${freeHuge} free 2 MiB hugepages (the uffd tests want >= 32): raise --mem or --hugepages`);
  if (record.guest.hugepages1g < req.hugepages1g) {
    log.warn(
      `the guest reserved ${record.guest.hugepages1g} of ${req.hugepages1g} 1 GiB pages (its console says why): hugetlb-1g tests will skip; raise --mem`,
    );
  }
}
