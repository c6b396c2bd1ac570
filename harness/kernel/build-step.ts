/**
 * One step of a kernel build: a command run (in the build sandbox when it is the tree's own code)
 * with its output streamed to build.log and the progress line, and its shell line kept for the
 * recipe that reproduces the build.
 */
import type { WriteStream } from 'node:fs';
import { errorMessage } from '../util/errors.js';
import { shellLine, type RunResult } from '../util/proc.js';
import { runMaybeSandboxed, type SandboxSpec } from '../util/sandbox.js';
import type { Progress } from './build-progress.js';

export const ARCH = 'x86_64';
export const SRCARCH = 'x86';

/** One build's running state: its log, progress line, make variables, environment and recipe. */
export interface Ctx {
  root: string;
  logStream: WriteStream | undefined;
  progress: Progress;
  makeVars: string[];
  env: Record<string, string>;
  reproduce: string[];
  /** Where the tree's own code (make, merge_config.sh) runs; undefined: on the host. */
  sandbox: SandboxSpec | undefined;
}

export async function logLine(ctx: Ctx, text: string): Promise<void> {
  ctx.logStream?.write(text.endsWith('\n') ? text : text + '\n');
}

/** Run one command, its output streamed to build.log and to the progress line. */
export async function step(
  ctx: Ctx,
  cmd: string,
  args: string[],
  o: { cwd?: string; timeoutMs: number; record?: boolean; sandboxed?: boolean },
): Promise<RunResult> {
  const line = commandLine({ what: cmd, cmd, args, ...(o.cwd !== undefined ? { cwd: o.cwd } : {}) });
  if (o.record !== false) ctx.reproduce.push(line);
  await logLine(ctx, `$ ${line}`);
  let r: RunResult;
  try {
    const runOpts = {
      timeoutMs: o.timeoutMs,
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
      env: ctx.env,
      allowFailure: true,
      onLine: (l: string) => {
        ctx.logStream?.write(l + '\n');
        ctx.progress.line(l);
      },
    };
    r = await runMaybeSandboxed(cmd, args, runOpts, o.sandboxed === true ? ctx.sandbox : undefined);
  } catch (e) {
    await logLine(ctx, `[${errorMessage(e)}]`);
    throw e;
  }
  await logLine(ctx, `[exit ${r.exitCode}, ${r.durationMs} ms]`);
  return r;
}

export function makeArgs(ctx: Ctx, tree: string, obj: string, targets: string[], jobs?: number): string[] {
  return ['-C', tree, `O=${obj}`, ...ctx.makeVars, ...(jobs ? [`-j${jobs}`] : []), ...targets];
}

/** One command of the configure recipe; `copy` is a plain file copy done in-process. */
export type ConfigureCommand =
  { what: string; cmd: string; args: string[]; cwd?: string } | { what: string; copy: { from: string; to: string } };

/** A recipe command as the shell line that reproduces it. */
export function commandLine(c: ConfigureCommand): string {
  if ('copy' in c) return shellLine('cp', [c.copy.from, c.copy.to]);
  const line = shellLine(c.cmd, c.args);
  return c.cwd !== undefined ? `(cd ${shellLine(c.cwd, []).trim()} && ${line})` : line;
}

/** build.log written out to here (before a step that reads it, or the copy into the artifacts). */
export async function flush(ctx: Ctx): Promise<void> {
  const s = ctx.logStream;
  if (!s) return;
  await new Promise<void>((r) => s.write('', () => r()));
}
