import { execa, type Options } from 'execa';
import { appendFile } from 'node:fs/promises';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { FaultlineError, UsageError } from './errors.js';
import { log } from './log.js';

export interface RunOptions {
  /** Every host process has a deadline: nothing faultline starts may hang it forever. */
  timeoutMs: number;
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  /** Feed this file to stdin byte for byte (`input` is text). */
  inputFile?: string;
  /** Append the command line and its combined output here (the run's log). */
  logFile?: string;
  /** Do not throw on a non-zero exit; the caller inspects exitCode. */
  allowFailure?: boolean;
  /** Stream each output line to this callback as it arrives (long builds). */
  onLine?: (line: string) => void;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  all: string;
  durationMs: number;
  timedOut: boolean;
}

/** Quote one word for a POSIX shell (the host's and the guest's busybox sh alike). */
export function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

export function shellLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(shellQuote).join(' ');
}

/** Run a host process through execa with a timeout; its output is kept for the log. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const command = shellLine(cmd, args);
  log.debug(`$ ${command}`);
  const started = Date.now();
  const execaOpts: Options = {
    timeout: opts.timeoutMs,
    killSignal: 'SIGKILL',
    reject: false,
    all: true,
    stripFinalNewline: false,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.env !== undefined ? { env: opts.env, extendEnv: true } : {}),
    ...(opts.input !== undefined
      ? { input: opts.input }
      : opts.inputFile !== undefined
        ? { inputFile: opts.inputFile }
        : { stdin: 'ignore' as const }),
  };
  const child = execa(cmd, args, execaOpts);
  if (opts.onLine && child.all) {
    let buf = '';
    child.all.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        opts.onLine?.(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  const r = await child;
  // execaOpts asks for neither `lines` nor `encoding: 'buffer'`: output is a string, or undefined when not captured.
  const asText = (v: unknown): string =>
    typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : '';
  const result: RunResult = {
    command,
    exitCode: typeof r.exitCode === 'number' ? r.exitCode : -1,
    stdout: asText(r.stdout),
    stderr: asText(r.stderr),
    all: asText(r.all),
    durationMs: Date.now() - started,
    timedOut: r.timedOut === true,
  };
  if (opts.logFile) {
    await appendFile(
      opts.logFile,
      `$ ${command}\n${result.all}${result.all.endsWith('\n') || !result.all ? '' : '\n'}[exit ${result.exitCode}${result.timedOut ? ', timed out' : ''}, ${result.durationMs} ms]\n`,
    );
  }
  if (r.failed && r.exitCode === undefined && !r.timedOut && !opts.allowFailure) {
    // The program could not be started at all (ENOENT and friends).
    throw new FaultlineError(`could not start ${cmd}: ${(r.message ?? '').split('\n')[0] ?? ''}`);
  }
  if (result.timedOut) {
    throw new FaultlineError(`${cmd} timed out after ${Math.round(opts.timeoutMs / 1000)} s: ${command}`, {
      detail: tail(result.all, 20),
    });
  }
  if (result.exitCode !== 0 && !opts.allowFailure) {
    throw new FaultlineError(`${cmd} failed with exit ${result.exitCode}: ${command}`, {
      detail: tail(result.all, 20),
    });
  }
  return result;
}

export function tail(text: string, lines: number): string {
  const all = text.split('\n');
  if (all.length && all[all.length - 1] === '') all.pop();
  return all.slice(-lines).join('\n');
}

/** Find an executable on PATH (plus sbin dirs, where Debian keeps sshd). */
export async function which(name: string): Promise<string | undefined> {
  if (name.includes('/')) {
    try {
      await access(name, constants.X_OK);
      return name;
    } catch {
      return undefined;
    }
  }
  const dirs = (process.env['PATH'] ?? '').split(delimiter).concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** A host tool faultline needs: missing means a one-line error naming the Debian package. */
export async function requireTool(name: string, debianPackage: string): Promise<string> {
  const p = await which(name);
  if (!p) {
    throw new UsageError(
      `${name} not found: install it with 'apt-get install ${debianPackage}' (or run 'npm run setup')`,
    );
  }
  return p;
}
