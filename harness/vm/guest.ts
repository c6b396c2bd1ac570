import { execa, type ResultPromise } from 'execa';
import { createWriteStream, type WriteStream } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { createServer } from 'node:net';
import { FaultlineError } from '../util/errors.js';
import { log } from '../util/log.js';
import { requireTool, shellLine, tail, which } from '../util/proc.js';
import type { Accel } from '../results/types.js';
import { qemuArgs, type QemuConfig } from './qemu-args.js';
import { SplatDetector } from './splats.js';

/** Every QEMU we started, so every exit path (including Ctrl-C) can kill them. */
const live = new Set<Guest>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const g of live) g.killNow();
  });
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(sig, () => {
      if (live.size) process.stderr.write(`\nfaultline: ${sig}: stopping ${live.size} guest(s)\n`);
      for (const g of live) g.killNow();
      process.exit(code);
    });
  }
}

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
}

/** The console as it streams in: full text kept for the record, lines fed to the splat detector. */
export class ConsoleWatcher {
  readonly detector = new SplatDetector();
  private text = '';
  private partial = '';
  private waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly lineTimes: number[] = [];

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
      const w = { re, resolve: (x: RegExpExecArray) => { clearTimeout(t); resolve(x); } };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

export class Guest {
  readonly console = new ConsoleWatcher();
  readonly command: string[];
  readonly startedAt = Date.now();
  /** Resolves when QEMU exits, with its exit code (null when killed by a signal). */
  readonly exited: Promise<{ exitCode: number | null; signal?: string }>;
  exitInfo: { exitCode: number | null; signal?: string } | undefined;
  private readonly proc: ResultPromise;
  private readonly consoleFile: WriteStream;

  private constructor(readonly config: QemuConfig, argv: string[], opts: BootOptions) {
    this.command = argv;
    this.consoleFile = createWriteStream(opts.consolePath);
    const [cmd, ...args] = argv;
    this.proc = execa(cmd ?? config.qemu, args, {
      timeout: opts.lifetimeMs,
      killSignal: 'SIGKILL',
      reject: false,
      stdin: 'ignore',
      buffer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const onData = (chunk: Buffer): void => {
      const s = chunk.toString('utf8');
      this.consoleFile.write(s);
      this.console.feed(s);
    };
    this.proc.stdout?.on('data', onData);
    // QEMU's own complaints (bad option, hostfwd bind failure, KVM errors) go to the console log too.
    this.proc.stderr?.on('data', (chunk: Buffer) => onData(Buffer.from(`[qemu] ${chunk.toString('utf8')}`)));
    this.exited = this.proc.then((r) => {
      live.delete(this);
      this.consoleFile.end();
      this.exitInfo = { exitCode: typeof r.exitCode === 'number' ? r.exitCode : null, ...(r.signal ? { signal: r.signal } : {}) };
      return this.exitInfo;
    });
    live.add(this);
  }

  static async start(config: QemuConfig, opts: BootOptions): Promise<Guest> {
    installExitHooks();
    const argv = [config.qemu, ...qemuArgs(config)];
    // PR_SET_PDEATHSIG via setpriv: if faultline itself is SIGKILLed, the kernel kills QEMU too.
    const setpriv = await which('setpriv');
    const wrapped = setpriv ? [setpriv, '--pdeathsig', 'SIGKILL', ...argv] : argv;
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

/** Accel decision for one faultline process: probing KVM costs a boot, so do it once. */
let probed: { accel: Accel; note: string } | undefined;

/**
 * `auto`: KVM only when a guest really runs under it. On some hosts /dev/kvm exists
 * but every guest dies with "KVM internal error"; so boot the kernel briefly under
 * KVM (it panics for want of an init and QEMU exits thanks to -no-reboot) and look.
 */
export async function chooseAccel(
  requested: 'auto' | 'kvm' | 'tcg',
  probe: { qemu: string; kernel: string; initrd: string },
): Promise<{ accel: Accel; note: string }> {
  if (requested === 'tcg') return { accel: 'tcg', note: 'TCG requested' };
  const kvmUsable = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(() => true, () => false);
  if (!kvmUsable) {
    if (requested === 'kvm') throw new FaultlineError('--accel kvm: /dev/kvm is missing or not accessible: load kvm_intel/kvm_amd or use --accel tcg');
    return { accel: 'tcg', note: '/dev/kvm not available: using TCG (software emulation)' };
  }
  if (probed) return probed;
  const r = await execa(probe.qemu, [
    '-machine', 'q35', '-accel', 'kvm', '-cpu', 'host', '-m', '256M', '-nodefaults', '-display', 'none', '-no-reboot',
    '-kernel', probe.kernel, '-initrd', probe.initrd, '-append', 'console=ttyS0 panic=-1 rdinit=/faultline-kvm-probe',
    '-serial', 'stdio',
  ], { timeout: 60_000, killSignal: 'SIGKILL', reject: false, stdin: 'ignore', all: true });
  const out = typeof r.all === 'string' ? r.all : '';
  const ok = /Linux version/.test(out) && !/KVM internal error|kvm run failed|failed to initialize kvm/i.test(out);
  if (ok) probed = { accel: 'kvm', note: 'KVM probe booted a guest' };
  else {
    const why = (/KVM internal error[^\n]*/.exec(out)?.[0] ?? tail(out, 1)).trim() || `exit ${String(r.exitCode)}`;
    if (requested === 'kvm') throw new FaultlineError(`--accel kvm: a guest does not run under KVM here (${why}): use --accel tcg`);
    probed = { accel: 'tcg', note: `KVM probe failed (${why}): falling back to TCG` };
  }
  return probed;
}

export async function requireQemu(): Promise<string> {
  return requireTool('qemu-system-x86_64', 'qemu-system-x86');
}
