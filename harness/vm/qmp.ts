import { createConnection, type Socket } from 'node:net';
import { FaultlineError } from '../util/errors.js';

/** One QMP reply: a command's return value or its error. */
interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
}

/**
 * A QMP client on QEMU's unix socket (-qmp unix:PATH,server=on,wait=off): one command at a
 * time, each with a deadline. Events are read and ignored; a dead QEMU fails the pending
 * command at once instead of at its deadline.
 */
export class Qmp {
  private buf = '';
  private pending: { resolve: (r: QmpReply) => void; reject: (e: Error) => void } | undefined;
  private closedWhy: string | undefined;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.feed(chunk));
    const fail = (why: string): void => {
      this.closedWhy ??= why;
      this.pending?.reject(new FaultlineError(`QMP: ${this.closedWhy}`));
      this.pending = undefined;
    };
    sock.on('error', (e) => fail(e.message));
    sock.on('close', () => fail('QEMU closed the QMP socket'));
  }

  /** Connect (QEMU creates the socket a moment after it starts: retried until `deadline`) and negotiate capabilities. */
  static async connect(path: string, deadline: number): Promise<Qmp> {
    for (;;) {
      const sock = await new Promise<Socket | Error>((resolve) => {
        const s = createConnection(path);
        s.once('connect', () => resolve(s));
        s.once('error', (e) => resolve(e));
      });
      if (!(sock instanceof Error)) {
        const qmp = new Qmp(sock);
        // The greeting counts as the reply to a first, empty request.
        await qmp.reply(Math.max(1000, deadline - Date.now()));
        await qmp.execute('qmp_capabilities', {}, Math.max(1000, deadline - Date.now()));
        return qmp;
      }
      if (Date.now() > deadline) throw new FaultlineError(`QMP socket ${path} did not accept: ${sock.message}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private feed(chunk: string): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).trim();
      this.buf = this.buf.slice(i + 1);
      if (!line) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof msg !== 'object' || msg === null || 'event' in msg) continue;
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(msg);
    }
  }

  private reply(timeoutMs: number): Promise<QmpReply> {
    if (this.closedWhy) return Promise.reject(new FaultlineError(`QMP: ${this.closedWhy}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending = undefined;
        reject(new FaultlineError(`QMP: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        resolve: (r) => {
          clearTimeout(t);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      };
    });
  }

  /** Run one command; its `return` value, or a FaultlineError naming QEMU's error. */
  async execute(command: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<unknown> {
    if (this.pending) throw new Error(`QMP: ${command} issued while another command is pending`);
    const answer = this.reply(timeoutMs);
    this.sock.write(JSON.stringify({ execute: command, arguments: args }) + '\n');
    const r = await answer;
    if (r.error) throw new FaultlineError(`QMP ${command}: ${r.error.desc}`);
    return r.return;
  }

  /** Poll `command` until `done` accepts its answer; throws at `deadline`. */
  async until<T>(command: string, done: (r: unknown) => T | undefined, deadline: number): Promise<T> {
    for (;;) {
      const answer = await this.execute(command);
      const v = done(answer);
      if (v !== undefined) return v;
      if (Date.now() > deadline)
        throw new FaultlineError(
          `QMP: ${command} did not reach the awaited state in time (last: ${JSON.stringify(answer)})`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.closedWhy ??= 'closed';
    this.sock.destroy();
  }
}
