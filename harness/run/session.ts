import { randomBytes } from 'node:crypto';
import { appendFile, readFile, rm } from 'node:fs/promises';
import { FaultlineError } from '../util/errors.js';
import { log } from '../util/log.js';
import { secs } from '../util/format.js';
import type { GuestStart, Splat, StagedBinaries } from '../results/types.js';
import type { SshSession } from '../ssh/transport.js';
import type { Guest } from '../vm/guest.js';
import type { QemuConfig } from '../vm/qemu-args.js';
import {
  commitSnapshot,
  savedBootConsole,
  discardSnapshot,
  factsCommand,
  findSnapshot,
  parseGuestFacts,
  snapshotKey,
  snapshotUnsupported,
  SnapshotUnusable,
  type SavedStream,
} from '../vm/snapshot.js';
import {
  BootFailure,
  bootGuest,
  loadGuest,
  restoreGuest,
  resumeGuest,
  stopLoaded,
  type BootedGuest,
  type LoadedGuest,
} from './boot.js';
import { stageBinaries } from './stage.js';
import { tcgStaleInt3 } from '../console/emulator.js';

/** Where the test binaries go in the guest: a writable cwd (pagemap_ioctl needs one). */
export const GUEST_DIR = '/root/faultline';

export interface SessionOptions {
  consolePath: string;
  bootTimeoutSec: number;
  keys: { clientPrivate: string; hostPublic: string };
  /** Binaries GUEST_DIR must hold in every guest (pushed where the guest lacks them). */
  push: readonly string[];
  /** The initramfs a booted guest loads, with `push` in GUEST_DIR (image/payload.ts); made at the first boot. */
  bootInitrd?: () => Promise<string>;
  /** Boots one run may take (the first and the reboots after guests lost with no sign from the kernel). */
  maxBoots: number;
  /**
   * Guests a run may lose to kernel crashes (a panic on the console): the kernel failing, not the
   * harness, so counted apart and with a larger bound (panic_on_warn turns every WARN into one).
   */
  maxKernelCrashes: number;
  /** Start guests from a snapshot of the first ready one (false: --no-snapshot). */
  snapshot: boolean;
}

/**
 * The kernel crashed more often than one run boots guests for: the rest of the run does not run.
 * Not an infrastructure error: every crash is a failure with its report.
 */
export class KernelCrashLimit extends FaultlineError {
  constructor(crashes: number) {
    super(`the kernel crashed ${crashes} times in this run: not booting it again`);
    this.name = 'KernelCrashLimit';
  }
}

/** The session's snapshot entry: its key, or why guests are not restored. */
type SnapshotKey = Awaited<ReturnType<typeof snapshotKey>>;
type SnapshotPlan = SnapshotKey | { off: string };

/** What the first boot measured, for the run record. */
export interface FirstBoot {
  bootMs: number;
  pushMs: number;
  staged: StagedBinaries;
  port: number;
}

export interface LiveGuest {
  guest: Guest;
  ssh: SshSession;
}

/**
 * The guest a run's programs execute in, across reboots: a program that kills the
 * kernel (or the guest's sshd) must not end the run, so a lost guest is stopped and the
 * next program gets a freshly booted one. Every boot appends to the one console.log,
 * and splats keep their line numbers in that file.
 */
export class GuestSession {
  /** Guests started (booted or restored), and how each started. */
  boots = 0;
  readonly starts: GuestStart[] = [];
  first: FirstBoot | undefined;
  /** Guests stopped on purpose to give the next program a pristine one: not lost, not counted against maxBoots. */
  private recycled = 0;
  /** Guests lost to a kernel crash: counted against maxKernelCrashes, not maxBoots. */
  private kernelCrashes = 0;
  private plan: SnapshotPlan | undefined;
  /** console.log already holds a saved guest's boot: the next guest appends to it. */
  private bootReplayed = false;
  /** A snapshot entry of this session's guest is known to exist (restored from, or saved). */
  private haveSnapshot = false;
  /** Splats of the guests already stopped, with console.log line numbers. */
  private readonly finishedSplats: Splat[] = [];
  private live: LiveGuest | undefined;
  /** console.log lines written by earlier boots: the current guest's line 1 is this + 1. */
  private lineOffset = 0;
  /** A boot died of TCG's stale-int3 race and was done again (once per run). */
  private bootedAgain = false;
  /** Why the guest being started is a second boot, for its start record. */
  private bootAgainWhy: string | undefined;
  /** A guest loaded from the snapshot ahead of the run by preload(), resumed by the first start(). */
  private loaded: { guest: LoadedGuest; key: string } | undefined;
  /** Why preload() found the snapshot unusable (it was deleted): the boot's reason. */
  private preloadWhy: string | undefined;
  /** The new guest's snapshot being committed (started by start(), awaited by up()). */
  private committing: Promise<void> | undefined;

  constructor(
    private readonly config: Omit<QemuConfig, 'sshPort'>,
    private readonly opts: SessionOptions,
  ) {}

  get current(): LiveGuest | undefined {
    return this.live;
  }

  /** GUEST_DIR of this guest made to hold the run's binaries, and nothing else. */
  private stage(ssh: SshSession): Promise<StagedBinaries> {
    return stageBinaries(ssh, this.opts.push, GUEST_DIR, 300_000);
  }

  /**
   * The running guest, booting or restoring one (and staging the binaries) when there is none;
   * `alongside` runs on a new guest while its binaries are checked (its own SSH channel).
   */
  async up(alongside?: (ssh: SshSession) => Promise<void>): Promise<LiveGuest> {
    if (this.live) return this.live;
    const unexplained = this.boots - this.recycled - this.kernelCrashes - 1;
    if (unexplained >= this.opts.maxBoots - 1) {
      throw new FaultlineError(
        `the guest was lost ${unexplained} times in this run with no sign from the kernel: not booting it again (see console.log)`,
      );
    }
    if (this.kernelCrashes >= this.opts.maxKernelCrashes) throw new KernelCrashLimit(this.kernelCrashes);
    if (this.boots > 0) {
      await this.consoleMark(`guest ${this.boots + 1} of this run`);
      log.info(`starting a new guest (guest ${this.boots + 1} of this run)`);
    }
    this.boots++;
    const started = await this.startOrBootAgain();
    const committing = this.committing;
    this.committing = undefined;
    const [staged] = await Promise.all([this.stage(started.ssh), alongside?.(started.ssh), committing]).catch(
      async (e: unknown) => {
        // A guest that could not be staged is stopped like any other (its splats kept), not leaked.
        this.live = { guest: started.guest, ssh: started.ssh };
        await this.drop();
        throw e;
      },
    );
    const start = this.starts.at(-1);
    if (start) start.binaries = staged;
    this.first ??= { bootMs: started.bootMs, pushMs: staged.ms, staged, port: started.port };
    this.live = { guest: started.guest, ssh: started.ssh };
    return this.live;
  }

  /**
   * Whether a new guest would come from a snapshot (cheap): then a retry can have a
   * pristine guest instead of one a failed attempt may have left in a bad state.
   */
  get restorable(): boolean {
    return this.haveSnapshot;
  }

  /**
   * start(); when that boot died of the emulator (QEMU crashed, or TCG's stale-int3 race:
   * console/emulator.ts), once more. A report stays in console.log, the reason goes in the next
   * start's `why`. Any other failed boot's reports count (a panic at boot is the kernel's).
   */
  private async startOrBootAgain(): Promise<BootedGuest> {
    try {
      const started = await this.start();
      const start = this.starts.at(-1);
      if (this.bootAgainWhy && start) start.why = [this.bootAgainWhy, start.why].filter(Boolean).join('; ');
      this.bootAgainWhy = undefined;
      return started;
    } catch (e) {
      if (!(e instanceof BootFailure)) throw e;
      const why = emulatorFailure(e, this.config.accel);
      if (why && !this.bootedAgain) {
        this.bootedAgain = true;
        this.bootAgainWhy = why;
        log.warn(`${this.bootAgainWhy}; booting again`);
        this.boots++;
        await this.consoleMark(`${this.bootAgainWhy}; booting again`);
        return this.startOrBootAgain();
      }
      // A boot that failed still printed a console: its splats (a panic at boot) count.
      for (const s of e.splats) this.finishedSplats.push({ ...s, line: this.consoleLine(s.line) });
      throw e;
    }
  }

  /** The guest was lost with a kernel report on its console: the kernel's failure, not the harness's. */
  noteKernelCrash(): void {
    this.kernelCrashes++;
  }

  /** Stop a healthy guest so that the next up() starts a pristine one. */
  async recycle(): Promise<void> {
    if (!this.live) return;
    this.recycled++;
    await this.drop();
  }

  /**
   * A restored guest printed no boot: console.log gets the saved guest's boot (the kernel
   * banner, its command line, what it found), marked as such, before the restored console.
   */
  private async replayBoot(key: string): Promise<void> {
    const boot = await savedBootConsole(key);
    if (!boot) return;
    await this.consoleMark(`the boot of the saved guest (snapshot ${key}); this guest was restored from it`);
    await appendFile(this.opts.consolePath, boot.endsWith('\n') ? boot : `${boot}\n`);
    this.bootReplayed = true;
    await this.consoleMark('restored guest');
  }

  private async consoleMark(what: string): Promise<void> {
    await appendFile(this.opts.consolePath, `\n===== faultline: ${what} =====\n`);
    this.lineOffset = countLines(await readFile(this.opts.consolePath, 'utf8'));
  }

  private bootOpts() {
    return {
      consolePath: this.opts.consolePath,
      bootTimeoutSec: this.opts.bootTimeoutSec,
      keys: this.opts.keys,
      // Later guests, and a restored first one after its saved boot, add to the run's console.log.
      appendConsole: this.boots > 1 || this.bootReplayed,
    };
  }

  private async snapshotPlan(): Promise<SnapshotPlan> {
    if (!this.plan) {
      const unsupported = this.opts.snapshot ? snapshotUnsupported(this.config) : '--no-snapshot';
      this.plan = unsupported ? { off: unsupported } : await snapshotKey(this.config);
    }
    return this.plan;
  }

  /**
   * Ahead of the run (a nightly job waiting for its lane): start QEMU from the snapshot and load
   * it, paused, so that the first up() only resumes it. Without a usable snapshot nothing is
   * started: a boot would take CPU from the job still running, so it waits for up(). Says
   * whether a guest is loaded, or none is yet (the caller may look again), or none will be.
   */
  async preload(): Promise<'loaded' | 'none yet' | 'never'> {
    const plan = await this.snapshotPlan();
    if ('off' in plan || this.live) return 'never';
    if (this.loaded) return 'loaded';
    const found = await findSnapshot(plan.key);
    if (!('meta' in found)) return 'none yet';
    await this.replayBoot(plan.key);
    try {
      this.loaded = { guest: await loadGuest(this.config, found, this.bootOpts()), key: plan.key };
      log.info(`guest loaded from snapshot ${plan.key} ahead of its run, paused`);
      return 'loaded';
    } catch (e) {
      if (!(e instanceof SnapshotUnusable)) throw e;
      this.preloadWhy = await this.refuseSnapshot(plan.key, e);
      return 'never';
    }
  }

  /** A snapshot that failed to restore is deleted; why, for the boot that replaces it. */
  private async refuseSnapshot(key: string, e: SnapshotUnusable): Promise<string> {
    const why = `snapshot ${key} unusable: ${e.message}`;
    this.haveSnapshot = false;
    await discardSnapshot(key, e.message);
    await this.consoleMark(`${why}; booting instead`);
    return why;
  }

  /** A restored guest's start record and log line; `ahead`: it was loaded before the run was let go. */
  private restored(restored: BootedGuest, key: string, ahead: boolean): BootedGuest {
    this.starts.push({
      how: 'restored',
      readyMs: restored.bootMs,
      snapshot: key,
      ...(restored.phases ? { phases: restored.phases } : {}),
      ...(ahead ? { ahead: true } : {}),
    });
    this.haveSnapshot = true;
    const ph = restored.phases;
    const phases = ph
      ? ` (QMP ${secs(ph.qmpMs)}, loaded ${secs(ph.loadedMs)}, SSH ${secs(ph.sshMs)}, checked ${secs(ph.checkedMs)})`
      : '';
    const how = ahead ? 'resumed (loaded ahead of the run)' : 'restored from snapshot';
    log.info(`guest ${how} ${key} in ${(restored.bootMs / 1000).toFixed(1)} s${phases}`);
    return restored;
  }

  /** Restore from the snapshot when there is a good one; boot otherwise (saving one when there is none). */
  private async start(): Promise<BootedGuest> {
    const plan = await this.snapshotPlan();
    let why = 'off' in plan ? plan.off : this.preloadWhy;
    this.preloadWhy = undefined;
    const loaded = this.loaded;
    this.loaded = undefined;
    if (loaded) {
      try {
        return this.restored(await resumeGuest(loaded.guest, this.bootOpts(), Date.now()), loaded.key, true);
      } catch (e) {
        if (!(e instanceof SnapshotUnusable)) throw e;
        why = await this.refuseSnapshot(loaded.key, e);
      }
    } else if (!('off' in plan) && !why) {
      const found = await findSnapshot(plan.key);
      if ('meta' in found) {
        try {
          await this.replayBoot(plan.key);
          return this.restored(await restoreGuest(this.config, found, this.bootOpts()), plan.key, false);
        } catch (e) {
          if (!(e instanceof SnapshotUnusable)) throw e;
          why = await this.refuseSnapshot(plan.key, e);
        }
      } else why = found.none;
    }
    if (why) log.info(`booting the guest: ${why}`);
    const initrd = (await this.opts.bootInitrd?.()) ?? this.config.initrd;
    const booted = await bootGuest({ ...this.config, initrd }, this.bootOpts(), 'off' in plan ? undefined : plan.key);
    const start: GuestStart = { how: 'booted', readyMs: booted.bootMs, ...(why ? { why } : {}) };
    this.starts.push(start);
    if (booted.saved && !('off' in plan)) this.committing = this.commit(booted, booted.saved, plan, start);
    return booted;
  }

  /**
   * Make a boot's saved stream the snapshot entry (its facts read over SSH, the stream's checksum
   * already under way), while the binaries are checked. A boot that printed a kernel report is
   * not saved: every guest must show its own.
   */
  private async commit(booted: BootedGuest, saved: SavedStream, plan: SnapshotKey, start: GuestStart): Promise<void> {
    const bootSplats = booted.guest.console.detector.splats.length;
    if (bootSplats > 0) {
      log.info(`keeping no snapshot of this guest: its boot printed ${bootSplats} kernel report(s)`);
      await rm(saved.tmp, { force: true });
      return;
    }
    try {
      const guest = parseGuestFacts(await booted.ssh.check(factsCommand, 30_000));
      const { key, inputs, qemuVersion } = plan;
      const meta = await commitSnapshot(
        key,
        saved,
        { bootMs: booted.bootMs, qemuVersion, inputs, guest },
        booted.guest.console.all,
      );
      this.haveSnapshot = true;
      start.snapshot = key;
      log.info(`saved snapshot ${key} (${(meta.bytes / 1048576).toFixed(0)} MiB in ${meta.saveMs} ms)`);
    } catch (e) {
      await rm(saved.tmp, { force: true });
      log.info(`keeping no snapshot of this guest: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** console.log line number of the current guest's console line `n` (1-based). */
  consoleLine(n: number): number {
    return this.lineOffset + n;
  }

  /** Stop the current guest (lost, or the run is over) and keep its splats. */
  async drop(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = undefined;
    if (loaded) await stopLoaded(loaded.guest);
    const live = this.live;
    this.live = undefined;
    if (!live) return;
    if (live.guest.running) await settleConsole(live);
    live.ssh.close();
    await live.guest.stop();
    live.guest.console.detector.close();
    for (const s of live.guest.console.detector.splats)
      this.finishedSplats.push({ ...s, line: this.consoleLine(s.line) });
  }

  /** Every splat of the run so far, with console.log line numbers (call after drop() for the last guest's). */
  get splats(): Splat[] {
    return this.finishedSplats;
  }
}

/** How long a guest being stopped may take to show its last console lines. */
const SETTLE_MS = 1000;

/**
 * Let the guest's last console lines arrive before its splats are read: a line written to
 * /dev/kmsg now is printed after every earlier kernel message, so once the console shows it
 * nothing is missing. A guest that cannot write one (sshd gone) gets 300 ms.
 */
async function settleConsole(live: LiveGuest): Promise<void> {
  const mark = `faultline: guest stopping ${randomBytes(4).toString('hex')}`;
  const t0 = Date.now();
  const logged = await live.ssh.check(`echo '${mark}' > /dev/kmsg`, SETTLE_MS).then(
    () => true,
    () => false,
  );
  if (!logged) {
    await new Promise((r) => setTimeout(r, 300));
    return;
  }
  await live.guest.console.waitFor(new RegExp(mark), Math.max(0, SETTLE_MS - (Date.now() - t0)));
}

/** Why a failed boot is QEMU's failure rather than the kernel's, if it is. */
function emulatorFailure(e: BootFailure, accel: QemuConfig['accel']): string | undefined {
  if (e.qemuCrash && e.splats.length === 0) return `the boot before ended with QEMU itself crashing (${e.qemuCrash})`;
  if (accel === 'tcg' && tcgStaleInt3(e.splats))
    return `the boot before died of an int3 trap at code that holds no int3 (${e.splats[0]?.title ?? ''}): QEMU TCG racing the kernel's text patching, not the kernel`;
  return undefined;
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
