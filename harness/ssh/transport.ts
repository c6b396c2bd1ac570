import { Client, type ClientChannel, type ExecOptions as ExecOptionsSsh2, type SFTPWrapper } from 'ssh2';
import { basename } from 'node:path';
import { FaultlineError } from '../util/errors.js';
import { log } from '../util/log.js';

/**
 * The one SSH client faultline uses (ssh2): connect with retries until a deadline,
 * push files over SFTP, run commands with streamed output and a deadline each.
 */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string;
  /** The guest's host key (OpenSSH public key line); the connection is refused on mismatch. */
  hostPublicKey: string;
}

export interface ExecResult {
  output: string;
  exitCode: number | null;
  signal?: string;
  timedOut: boolean;
  /** The connection broke while the command ran (guest died or stopped answering keepalives): why. */
  lost?: string;
  /** Set when the command printed more than ExecOptions.maxOutputBytes: it was killed there, the rest dropped. */
  outputCutOffBytes?: number;
  durationMs: number;
}

export interface ExecOptions {
  timeoutMs: number;
  onData?: (chunk: string) => void;
  /** Allocate a pty: line-buffered stdout from the test, stdout/stderr interleaved as printed. */
  pty?: boolean;
  /** Keep at most this many bytes of output; past it the command is killed (a flood must not fill the host). */
  maxOutputBytes?: number;
}

function hostKeyBlob(publicKeyLine: string): Buffer {
  const b64 = publicKeyLine.trim().split(/\s+/)[1];
  if (!b64) throw new FaultlineError('malformed guest host public key');
  return Buffer.from(b64, 'base64');
}

/**
 * A command's stdout and stderr as they arrive, up to opts.maxOutputBytes: the first byte
 * past it kills the command (KILL, then the channel is closed, which hangs up its pty).
 */
function collectOutput(ch: ClientChannel, opts: ExecOptions): { output: () => string; cutOff: () => boolean } {
  const max = opts.maxOutputBytes ?? Infinity;
  const chunks: string[] = [];
  let bytes = 0;
  let cutOff = false;
  const onData = (d: Buffer): void => {
    if (cutOff) return;
    const room = max - bytes;
    const kept = d.length > room ? d.subarray(0, room) : d;
    bytes += kept.length;
    const s = kept.toString('utf8');
    chunks.push(s);
    opts.onData?.(s);
    if (d.length > room) {
      cutOff = true;
      ch.signal('KILL');
      ch.close();
    }
  };
  ch.on('data', onData);
  ch.stderr.on('data', onData);
  return { output: () => chunks.join(''), cutOff: () => cutOff };
}

export class SshSession {
  /** Set when the connection broke after it was established (guest died, network lost). */
  lostReason: string | undefined;
  /** Resolves with the reason when the connection breaks: every exec ends then, not at its own deadline. */
  readonly lost: Promise<string>;
  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {
    let markLost: (why: string) => void = () => undefined;
    this.lost = new Promise((resolve) => {
      markLost = resolve;
    });
    // Without a listener a late 'error' (ECONNRESET when the guest dies) would crash the process.
    client.on('error', (e: Error) => {
      this.lostReason ??= e.message;
      markLost(this.lostReason);
    });
    client.on('close', () => {
      this.lostReason ??= 'connection closed';
      markLost(this.lostReason);
    });
  }

  private static attempt(t: SshTarget, readyTimeoutMs: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const c = new Client();
      const expected = hostKeyBlob(t.hostPublicKey);
      let settled = false;
      c.once('ready', () => {
        settled = true;
        resolve(c);
      });
      // 'on', not 'once': a failing handshake can emit several errors, and an unheard one kills the process.
      c.on('error', (e) => {
        if (settled) return;
        settled = true;
        c.end();
        reject(e);
      });
      c.connect({
        host: t.host,
        port: t.port,
        username: t.username,
        privateKey: t.privateKey,
        readyTimeout: readyTimeoutMs,
        keepaliveInterval: 5_000,
        keepaliveCountMax: 6,
        hostVerifier: (key: Buffer) => key.equals(expected),
      });
    });
  }

  /** Retry until the guest's sshd answers or `deadline` (epoch ms) passes; `abort` ends the wait early (guest died). */
  static async connect(t: SshTarget, deadline: number, abort?: () => string | undefined): Promise<SshSession> {
    let last = 'no attempt';
    let attempts = 0;
    while (Date.now() < deadline) {
      const why = abort?.();
      if (why) throw new FaultlineError(why);
      attempts++;
      try {
        const remaining = Math.max(1_000, deadline - Date.now());
        const c = await SshSession.attempt(t, Math.min(20_000, remaining));
        log.debug(`ssh ready after ${attempts} attempt(s)`);
        return new SshSession(c, t);
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new FaultlineError(`SSH to the guest never came up (${attempts} attempts, last: ${last})`);
  }

  exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    const started = Date.now();
    if (this.lostReason !== undefined)
      return Promise.reject(new FaultlineError(`SSH connection to the guest lost: ${this.lostReason}`));
    return new Promise((resolve, reject) => {
      const execOpts: ExecOptionsSsh2 = opts.pty
        ? { pty: { term: 'dumb', cols: 512, rows: 50, modes: { ECHO: 0, ONLCR: 0 } } }
        : {};
      this.client.exec(command, execOpts, (err: Error | undefined, ch: ClientChannel) => {
        if (err) return reject(new FaultlineError(`ssh exec failed: ${err.message}`));
        const collected = collectOutput(ch, opts);
        let timedOut = false;
        let exitCode: number | null = null;
        let signal: string | undefined;
        ch.on('exit', (code: number | null, sig?: string) => {
          exitCode = code;
          if (sig) signal = sig;
        });
        let lost: string | undefined;
        const finish = (): void => {
          clearTimeout(timer);
          resolve({
            output: collected.output(),
            exitCode,
            ...(signal ? { signal } : {}),
            timedOut,
            ...(lost !== undefined ? { lost } : {}),
            ...(collected.cutOff() ? { outputCutOffBytes: opts.maxOutputBytes } : {}),
            durationMs: Date.now() - started,
          });
        };
        const timer = setTimeout(() => {
          timedOut = true;
          ch.signal('KILL');
          ch.close();
        }, opts.timeoutMs);
        ch.on('close', finish);
        // A dead guest never closes the channel: the connection's end does.
        void this.lost.then((why) => {
          lost = why;
          finish();
        });
      });
    });
  }

  /** Run a command that must succeed (setup steps); throws with its output otherwise. */
  async check(command: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.exec(command, { timeoutMs });
    if (r.timedOut || r.exitCode !== 0) {
      throw new FaultlineError(
        `guest command failed (${r.timedOut ? 'timed out' : `exit ${String(r.exitCode)}`}): ${command}`,
        { detail: r.output },
      );
    }
    return r.output;
  }

  private sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) =>
      this.client.sftp((e, s) => (e ? reject(new FaultlineError(`SFTP: ${e.message}`)) : resolve(s))),
    );
  }

  /** Push files to `remoteDir` (created first) over one SFTP session, in parallel; returns bytes sent. */
  async push(files: readonly string[], remoteDir: string, timeoutMs: number): Promise<number> {
    await this.check(`mkdir -p '${remoteDir}'`);
    const sftp = await this.sftp();
    const { stat } = await import('node:fs/promises');
    let bytes = 0;
    const one = (local: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const remote = `${remoteDir}/${basename(local)}`;
        sftp.fastPut(local, remote, { concurrency: 64, chunkSize: 32768, mode: 0o755 }, (e) =>
          e ? reject(new FaultlineError(`SFTP push of ${local} failed: ${e.message}`)) : resolve(),
        );
      });
    // Sizes first: `bytes += await ...` inside the parallel map would read bytes before the await and lose updates.
    for (const f of files) bytes += (await stat(f)).size;
    const all = Promise.all(files.map(one));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FaultlineError(`SFTP push did not finish within ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([all, deadline]);
    } finally {
      clearTimeout(timer);
      sftp.end();
    }
    return bytes;
  }

  close(): void {
    this.client.end();
  }
}
