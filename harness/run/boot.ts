import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage, FaultlineError } from '../util/errors.js';
import { log } from '../util/log.js';
import { SshSession } from '../ssh/transport.js';
import { freePort, Guest } from '../vm/guest.js';
import type { QemuConfig } from '../vm/qemu-args.js';
import { Qmp } from '../vm/qmp.js';
import {
  honestyCommand,
  loadSnapshot,
  parseGuestFacts,
  saveSnapshot,
  SnapshotUnusable,
  type SavedStream,
  type SnapshotMeta,
} from '../vm/snapshot.js';
import type { RestorePhases, Splat } from '../results/types.js';

/** What images/init.sh prints once sshd is listening (the rest of its setup overlaps the handshake). */
const INIT_SSHD_UP = /faultline-init: (sshd-up|ready)/;
/** What it prints once its setup is done (/run/faultline-ready exists). */
const INIT_READY = /faultline-init: ready/;
/** A restored guest is up in about a second: past this it is not going to be. */
const RESTORE_DEADLINE_MS = 60_000;

/** Signals QEMU dies of when it crashes itself (nothing faultline or a user sends). */
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE']);

/** How QEMU ended, for messages: its exit code, and the signal when one killed it. */
function qemuExit(guest: Guest): string {
  const info = guest.exitInfo;
  return `exit ${String(info?.exitCode)}${info?.signal ? `, ${info.signal}` : ''}`;
}

/**
 * The guest never became ready; `splats` are what its console showed (a panic at boot is the
 * kernel's failure); `qemuCrash` is the signal QEMU itself crashed with, if it did (the emulator's).
 */
export class BootFailure extends FaultlineError {
  constructor(
    message: string,
    consoleTail: string,
    readonly splats: readonly Splat[],
    readonly qemuCrash?: string,
  ) {
    super(message, { detail: consoleTail });
    this.name = 'BootFailure';
  }
}

export interface BootedGuest {
  guest: Guest;
  ssh: SshSession;
  port: number;
  /** QEMU start to "ready for tests" (init finished its setup; sshd answered, unless the guest was saved first). */
  bootMs: number;
  /** The migration stream saved at ready, when the boot was asked to save one. */
  saved?: SavedStream;
  /** A restored guest's phases (ms from QEMU's start). */
  phases?: RestorePhases;
}

export interface BootOpts {
  consolePath: string;
  bootTimeoutSec: number;
  keys: { clientPrivate: string; hostPublic: string };
  lifetimeMs?: number;
  appendConsole?: boolean;
}

function qmpSocketPath(): string {
  return join(tmpdir(), `faultline-qmp-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
}

/** QMP to a starting guest; the socket file is removed once connected (the connection lives on). */
async function connectQmp(guest: Guest, path: string, deadline: number): Promise<Qmp> {
  try {
    return await Promise.race([
      Qmp.connect(path, deadline),
      guest.exited.then(() => {
        throw new FaultlineError(`QEMU exited (exit ${String(guest.exitInfo?.exitCode)})`);
      }),
    ]);
  } finally {
    await rm(path, { force: true });
  }
}

async function startGuest(config: Omit<QemuConfig, 'sshPort'>, port: number, opts: BootOpts): Promise<Guest> {
  return Guest.start(
    { ...config, sshPort: port },
    {
      consolePath: opts.consolePath,
      lifetimeMs: opts.lifetimeMs ?? 6 * 3600_000,
      appendConsole: opts.appendConsole ?? false,
    },
  );
}

function connectSsh(guest: Guest, port: number, keys: BootOpts['keys'], deadline: number): Promise<SshSession> {
  return SshSession.connect(
    { host: '127.0.0.1', port, username: 'root', privateKey: keys.clientPrivate, hostPublicKey: keys.hostPublic },
    Math.max(deadline, Date.now() + 1000),
    () => (guest.running ? undefined : `QEMU exited during boot (${qemuExit(guest)})`),
  );
}

/** Save the running guest; a failed save costs the snapshot, never the guest. */
async function saveNow(guest: Guest, key: string, socket: string, deadline: number) {
  let qmp: Qmp | undefined;
  try {
    qmp = await connectQmp(guest, socket, deadline);
    return await saveSnapshot(qmp, key, Date.now() + 120_000);
  } catch (e) {
    log.info(`saving a snapshot of the guest failed: ${errorMessage(e)}`);
    return undefined;
  } finally {
    qmp?.close();
  }
}

/** Wait until init has finished its setup: sshd starts before init has reserved hugepages. */
async function untilReady(ssh: SshSession): Promise<void> {
  await ssh.check(
    'i=0; while [ ! -e /run/faultline-ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /run/faultline-ready',
    90_000,
  );
}

/**
 * Boot a guest and wait until it can run tests: sshd answers and init has finished
 * (/run/faultline-ready). With `saveKey`, the guest is saved to that snapshot entry as soon as
 * init prints ready, before any SSH session exists (a saved guest holds none, and the boot pays
 * one handshake, not two); its binaries came in its initramfs. Retried once when QEMU loses the
 * free-port race. On failure QEMU is stopped and the error carries the last 30 console lines.
 */
export async function bootGuest(
  config: Omit<QemuConfig, 'sshPort'>,
  opts: BootOpts,
  saveKey?: string,
): Promise<BootedGuest> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const socket = saveKey ? qmpSocketPath() : undefined;
    const guest = await startGuest(socket ? { ...config, qmpSocket: socket } : config, port, opts);
    const started = guest.startedAt;
    const deadline = started + opts.bootTimeoutSec * 1000;
    let saved: SavedStream | undefined;
    try {
      // Connect only once init says sshd is up: a SYN sent before the guest network
      // exists is lost, and TCP's retransmit backoff then costs seconds after sshd listens.
      // A guest to be saved is waited for until init's ready line instead.
      const line = await Promise.race([
        guest.console.waitFor(saveKey ? INIT_READY : INIT_SSHD_UP, Math.max(0, deadline - Date.now())),
        guest.exited.then(() => undefined),
      ]);
      if (!line && !guest.running) throw new FaultlineError(`QEMU exited during boot (${qemuExit(guest)})`);
      // No ready line by the deadline (init hung): nothing to save, and SSH gets its last chance.
      if (!saveKey || !socket || !line) {
        const ssh = await connectSsh(guest, port, opts.keys, deadline);
        await untilReady(ssh);
        return { guest, ssh, port, bootMs: Date.now() - started };
      }
      const bootMs = Date.now() - started;
      saved = await saveNow(guest, saveKey, socket, deadline);
      const ssh = await connectSsh(guest, port, opts.keys, Math.max(deadline, Date.now() + 60_000));
      return { guest, ssh, port, bootMs, ...(saved ? { saved } : {}) };
    } catch (e) {
      // Read before stop(): a QEMU that crashed on its own has its signal; stop() adds none then.
      const signal = guest.running ? undefined : guest.exitInfo?.signal;
      await guest.stop();
      if (socket) await rm(socket, { force: true });
      // A guest saved then lost (SSH never answered) leaves no stream behind.
      if (saved) await rm(saved.tmp, { force: true });
      if (attempt < 2 && /Could not set up host forwarding rule/.test(guest.console.all)) continue;
      guest.console.detector.close();
      throw new BootFailure(
        `${errorMessage(e)}; guest console (last 30 lines) follows`,
        guest.console.lastLines(30),
        guest.console.detector.splats,
        signal && CRASH_SIGNALS.has(signal) ? signal : undefined,
      );
    }
  }
}

/** A guest started from a snapshot entry and loaded, still paused: no CPU spent until resumed. */
export interface LoadedGuest {
  guest: Guest;
  port: number;
  entry: { meta: SnapshotMeta; path: string };
  /** Open until the guest is resumed. */
  qmp: Qmp;
  /** QEMU start to QMP answering, and to the stream loaded and checked. */
  qmpMs: number;
  loadedMs: number;
}

/**
 * Start QEMU with the same command line (its own SSH port) paused for the stream, and load
 * and check the entry; the guest stays paused. Any failure stops QEMU and throws
 * SnapshotUnusable: the caller boots instead.
 */
export async function loadGuest(
  config: Omit<QemuConfig, 'sshPort'>,
  entry: { meta: SnapshotMeta; path: string },
  opts: BootOpts,
): Promise<LoadedGuest> {
  const port = await freePort();
  const socket = qmpSocketPath();
  const guest = await startGuest({ ...config, qmpSocket: socket, incoming: true }, port, opts);
  const deadline = guest.startedAt + RESTORE_DEADLINE_MS;
  let qmp: Qmp | undefined;
  try {
    qmp = await connectQmp(guest, socket, deadline);
    const qmpMs = Date.now() - guest.startedAt;
    await loadSnapshot(qmp, entry, deadline);
    return { guest, port, entry, qmp, qmpMs, loadedMs: Date.now() - guest.startedAt };
  } catch (e) {
    qmp?.close();
    throw await unusable(guest, e);
  } finally {
    await rm(socket, { force: true });
  }
}

/** Stop a loaded guest that will not be resumed (its run ended before it started). */
export async function stopLoaded(loaded: LoadedGuest): Promise<void> {
  loaded.qmp.close();
  await loaded.guest.stop();
  loaded.guest.console.detector.close();
}

/** Stop a guest that could not be restored; the error as SnapshotUnusable, with the console's last lines. */
async function unusable(guest: Guest, e: unknown): Promise<SnapshotUnusable> {
  await guest.stop();
  guest.console.detector.close();
  if (e instanceof SnapshotUnusable) return e;
  return new SnapshotUnusable(
    `restoring it failed: ${errorMessage(e)} (console: ${guest.console.lastLines(3).trim()})`,
  );
}

/**
 * Resume a loaded guest; then its clock and RNG are refreshed and it must show the saved
 * guest's kernel and boot id. Phases count from `from` (QEMU's start, or when a guest loaded
 * ahead was let go). Any failure stops QEMU and throws SnapshotUnusable.
 */
export async function resumeGuest(loaded: LoadedGuest, opts: BootOpts, from: number): Promise<BootedGuest> {
  const { guest, port, entry, qmp } = loaded;
  const deadline = Math.max(from, guest.startedAt) + RESTORE_DEADLINE_MS;
  try {
    try {
      await qmp.execute('cont');
    } finally {
      qmp.close();
    }
    const ssh = await connectSsh(guest, port, opts.keys, deadline);
    const sshAt = Date.now();
    const facts = parseGuestFacts(await ssh.check(honestyCommand(), 30_000));
    const ahead = from > guest.startedAt;
    const phases = {
      qmpMs: ahead ? 0 : loaded.qmpMs,
      loadedMs: ahead ? 0 : loaded.loadedMs,
      sshMs: sshAt - from,
      checkedMs: Date.now() - from,
    };
    const want = entry.meta.guest;
    if (facts.uname !== want.uname || facts.bootId !== want.bootId) {
      ssh.close();
      throw new SnapshotUnusable(
        `the restored guest is not the saved one (uname ${facts.uname}, boot id ${facts.bootId}; saved ${want.uname}, ${want.bootId})`,
      );
    }
    return { guest, ssh, port, bootMs: Date.now() - from, phases };
  } catch (e) {
    throw await unusable(guest, e);
  }
}

/** Start a guest from a snapshot entry instead of booting: loadGuest, then resumeGuest at once. */
export async function restoreGuest(
  config: Omit<QemuConfig, 'sshPort'>,
  entry: { meta: SnapshotMeta; path: string },
  opts: BootOpts,
): Promise<BootedGuest> {
  const loaded = await loadGuest(config, entry, opts);
  return resumeGuest(loaded, opts, loaded.guest.startedAt);
}
