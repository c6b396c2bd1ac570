import { createWriteStream, statSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { FaultlineError } from '../util/errors.js';
import { log } from '../util/log.js';
import { requireTool, shellLine, tail } from '../util/proc.js';
import { qemuArgs, type QemuConfig } from './qemu-args.js';
import { SplatDetector } from '../console/splats.js';
import { boundToParent, spawnBound } from './lifetime.js';

/** A port on 127.0.0.1 that is free now (QEMU binds it right after; a lost race is retried by the caller). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', (e) => reject(new FaultlineError(`no free TCP port on 127.0.0.1: ${e.message}`)));
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new FaultlineError('no free TCP port on 127.0.0.1'))));
    });
  });
}

export interface BootOptions {
  consolePath: string;
  /** Hard cap on the guest's life: QEMU is killed by execa at this point whatever happens. */
  lifetimeMs: number;
  /** Append to consolePath (a reboot within one run) instead of starting it afresh. */
  appendConsole?: boolean;
}

/**
 * The most console.log may hold (all guests of a run together): a boot prints ~30 KiB, so
 * 8 MiB holds 20 crashed guests' reboots with their reports many times over. A guest that
 * floods its console (a printk storm, a program writing to /dev/console) must not fill
 * the host's disk or memory.
 */
export const CONSOLE_LOG_LIMIT_BYTES = 8 * 2 ** 20;

/**
 * The console as it streams in: full text kept for the record, lines fed to the splat
 * detector, up to `room` bytes; past it nothing more is kept or read (`cutOffAt` says when).
 */
class ConsoleWatcher {
  readonly detector = new SplatDetector();
  private text = '';
  private partial = '';
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly lineTimes: number[] = [];
  /** When the console reached its bound (epoch ms); undefined while it has room. */
  cutOffAt: number | undefined;

  constructor(private room: number) {}

  /** The part of `chunk` to keep; the marker line instead of the rest once the bound is reached. */
  admit(chunk: string): string {
    if (this.cutOffAt !== undefined) return '';
    const bytes = Buffer.byteLength(chunk);
    if (bytes <= this.room) {
      this.room -= bytes;
      return chunk;
    }
    this.cutOffAt = Date.now();
    const kept = Buffer.from(chunk).subarray(0, Math.max(0, this.room)).toString('utf8');
    this.room = 0;
    return `${kept}\n[faultline] console.log cut off at its bound of ${CONSOLE_LOG_LIMIT_BYTES / 2 ** 20} MiB: the guest printed more, which was dropped\n`;
  }

  feed(chunk: string): void {
    this.text += chunk;
    this.partial += chunk;
    let i: number;
    while ((i = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, i);
      this.partial = this.partial.slice(i + 1);
      this.lineTimes.push(Date.now());
      this.detector.push(line);
    }
    for (const w of [...this.waiters]) {
      const m = w.re.exec(this.text);
      if (m) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(m);
      }
    }
  }

  get all(): string {
    return this.text;
  }

  lastLines(n: number): string {
    return tail(this.text, n);
  }

  /** Resolves when the console matches `re`; undefined at the deadline. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpExecArray | undefined> {
    const m = re.exec(this.text);
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => {
      const w = {
        re,
        resolve: (x: RegExpExecArray) => {
          clearTimeout(t);
          resolve(x);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

export class Guest {
  readonly console: ConsoleWatcher;
  readonly command: string[];
  readonly startedAt = Date.now();
  /** Resolves when QEMU exits, with its exit code (null when killed by a signal). */
  readonly exited: Promise<{ exitCode: number | null; signal?: string }>;
  exitInfo: { exitCode: number | null; signal?: string } | undefined;
  private readonly proc: ReturnType<typeof spawnBound>;
  private readonly consoleFile: WriteStream;

  private constructor(
    readonly config: QemuConfig,
    argv: string[],
    opts: BootOptions,
  ) {
    this.command = argv;
    // A reboot appends to the run's console.log: its bound counts what the earlier guests printed.
    const before = opts.appendConsole ? (statSync(opts.consolePath, { throwIfNoEntry: false })?.size ?? 0) : 0;
    this.console = new ConsoleWatcher(CONSOLE_LOG_LIMIT_BYTES - before);
    this.consoleFile = createWriteStream(opts.consolePath, { flags: opts.appendConsole ? 'a' : 'w' });
    this.proc = spawnBound(argv, opts.lifetimeMs);
    const onData = (chunk: Buffer): void => {
      const s = this.console.admit(chunk.toString('utf8'));
      if (!s) return;
      this.consoleFile.write(s);
      this.console.feed(s);
    };
    this.proc.stdout?.on('data', onData);
    // QEMU's own complaints (bad option, hostfwd bind failure, KVM errors) go to the console log too.
    this.proc.stderr?.on('data', (chunk: Buffer) => onData(Buffer.from(`[qemu] ${chunk.toString('utf8')}`)));
    this.exited = this.proc.then((r) => {
      this.consoleFile.end();
      this.exitInfo = {
        exitCode: typeof r.exitCode === 'number' ? r.exitCode : null,
        ...(r.signal ? { signal: r.signal } : {}),
      };
      return this.exitInfo;
    });
  }

  static async start(config: QemuConfig, opts: BootOptions): Promise<Guest> {
    const wrapped = await boundToParent([config.qemu, ...qemuArgs(config)]);
    log.debug(`$ ${shellLine(wrapped[0] ?? '', wrapped.slice(1))}`);
    return new Guest(config, wrapped, opts);
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Synchronous kill for exit hooks. */
  killNow(): void {
    if (this.running) this.proc.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.killNow();
    await this.exited;
  }
}

export async function requireQemu(): Promise<string> {
  return requireTool('qemu-system-x86_64', 'qemu-system-x86');
}
