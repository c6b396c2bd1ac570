import { appendFile, readFile } from 'node:fs/promises';
import { FaultlineError } from '../util/errors.js';
import { log } from '../util/log.js';
import type { Splat } from '../results/types.js';
import type { SshSession } from '../ssh/transport.js';
import type { Guest } from '../vm/guest.js';
import type { QemuConfig } from '../vm/qemu-args.js';
import { BootFailure, bootGuest } from './boot.js';

/** Where the test binaries go in the guest: a writable cwd (pagemap_ioctl needs one). */
export const GUEST_DIR = '/root/faultline';

export interface SessionOptions {
  consolePath: string;
  bootTimeoutSec: number;
  keys: { clientPrivate: string; hostPublic: string };
  /** Binaries pushed to GUEST_DIR after every boot. */
  push: readonly string[];
  /** Boots one run may take (the first and the reboots after lost guests) before it gives up. */
  maxBoots: number;
}

/** What the first boot measured, for the run record. */
export interface FirstBoot {
  bootMs: number;
  pushMs: number;
  bytes: number;
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
  boots = 0;
  first: FirstBoot | undefined;
  /** Splats of the guests already stopped, with console.log line numbers. */
  private readonly finishedSplats: Splat[] = [];
  private live: LiveGuest | undefined;
  /** console.log lines written by earlier boots: the current guest's line 1 is this + 1. */
  private lineOffset = 0;

  constructor(
    private readonly config: Omit<QemuConfig, 'sshPort'>,
    private readonly opts: SessionOptions,
  ) {}

  get current(): LiveGuest | undefined {
    return this.live;
  }

  /** The running guest, booting one (and pushing the binaries) when there is none. */
  async up(): Promise<LiveGuest> {
    if (this.live) return this.live;
    if (this.boots >= this.opts.maxBoots) {
      throw new FaultlineError(
        `the guest was lost ${this.boots - 1} times in this run: not booting it again (see console.log)`,
      );
    }
    if (this.boots > 0) {
      await appendFile(this.opts.consolePath, `\n===== faultline: boot ${this.boots + 1} of this run =====\n`);
      this.lineOffset = countLines(await readFile(this.opts.consolePath, 'utf8'));
      log.info(`rebooting the guest (boot ${this.boots + 1} of at most ${this.opts.maxBoots})`);
    }
    this.boots++;
    const booted = await bootGuest(this.config, {
      consolePath: this.opts.consolePath,
      bootTimeoutSec: this.opts.bootTimeoutSec,
      keys: this.opts.keys,
      appendConsole: this.boots > 1,
    }).catch((e: unknown) => {
      // A boot that failed still printed a console: its splats (a panic at boot) count.
      if (e instanceof BootFailure)
        for (const s of e.splats) this.finishedSplats.push({ ...s, line: this.consoleLine(s.line) });
      throw e;
    });
    const pushStart = Date.now();
    const bytes = await booted.ssh.push(this.opts.push, GUEST_DIR, 300_000);
    this.first ??= { bootMs: booted.bootMs, pushMs: Date.now() - pushStart, bytes, port: booted.port };
    this.live = { guest: booted.guest, ssh: booted.ssh };
    return this.live;
  }

  /** console.log line number of the current guest's console line `n` (1-based). */
  consoleLine(n: number): number {
    return this.lineOffset + n;
  }

  /** Stop the current guest (lost, or the run is over) and keep its splats. */
  async drop(): Promise<void> {
    const live = this.live;
    this.live = undefined;
    if (!live) return;
    live.ssh.close();
    // Let the last console lines arrive before reading splats.
    if (live.guest.running) await new Promise((r) => setTimeout(r, 300));
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

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
