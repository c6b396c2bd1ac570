/**
 * A kernel's configuration: the base config (a make target or a file), the fragments merged with
 * merge_config.sh, olddefconfig, then the check that every fragment request took effect.
 */
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { BuildBrokenError, FaultlineError, UsageError } from '../util/errors.js';
import { exists, sha256 } from '../util/fsutil.js';
import { tail } from '../util/proc.js';
import { classifyBuildFailure } from '../toolchain/diagnostics.js';
import { progressOf } from './build-progress.js';
import { ARCH, SRCARCH, commandLine, makeArgs, step, type ConfigureCommand, type Ctx } from './build-step.js';
import { configHash } from './cache-key.js';
import {
  KconfigCheckError,
  checkFragments,
  parseFragment,
  parseFragmentText,
  resolveFragments,
  type Fragment,
} from './kconfig.js';

const BASES = ['defconfig', 'tinyconfig', 'allnoconfig'] as const;
/** kconfig runs ~100 gcc probes per pass: 20 s idle, but over 10 min was seen on an oversubscribed 2-core host. */
const CONFIG_TIMEOUT_MS = 60 * 60_000;

export async function checkKernelTree(tree: string): Promise<void> {
  const need = ['Makefile', 'Kconfig', 'scripts/kconfig/merge_config.sh', `arch/${SRCARCH}/Kconfig`];
  for (const n of need) {
    if (!(await exists(join(tree, n)))) {
      throw new UsageError(
        `${tree} is not a Linux kernel tree (no ${n}): pass --kernel-src pointing at a kernel source checkout`,
      );
    }
  }
  // Kbuild refuses O= builds from a tree that was configured in place.
  for (const n of ['.config', 'include/config/auto.conf']) {
    if (await exists(join(tree, n))) {
      throw new UsageError(
        `${tree} has in-tree build output (${n}): run 'make mrproper' there, or build a commit with --ref (a clean worktree)`,
      );
    }
  }
}

export interface ResolvedBase {
  /** What goes into the input key. */
  id: string;
  target?: string;
  file?: string;
}

export async function resolveBase(base: string | undefined, cwd: string): Promise<ResolvedBase> {
  const b = base ?? 'defconfig';
  if ((BASES as readonly string[]).includes(b)) return { id: b, target: b };
  const file = isAbsolute(b) ? b : resolve(cwd, b);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UsageError(`--base '${b}' is neither ${BASES.join(', ')} nor a readable config file`);
  }
  parseFragmentText(text, file); // syntax check, with file:line
  return { id: `file:${sha256(text)}`, file };
}

export interface ConfigureOptions {
  tree: string;
  obj: string;
  base: ResolvedBase;
  fragments: Fragment[];
}

/** The configure recipe: base config, merge_config.sh -m, olddefconfig. */
export function configureCommands(ctx: Ctx, c: ConfigureOptions): ConfigureCommand[] {
  const { tree, obj } = c;
  const cmds: ConfigureCommand[] = [];
  if (c.base.target)
    cmds.push({ what: `make ${c.base.target}`, cmd: 'make', args: makeArgs(ctx, tree, obj, [c.base.target]) });
  else if (c.base.file) cmds.push({ what: 'cp', copy: { from: c.base.file, to: join(obj, '.config') } });
  if (c.fragments.length > 0) {
    const merge = join(tree, 'scripts/kconfig/merge_config.sh');
    const args = [merge, '-m', '-O', obj, join(obj, '.config'), ...c.fragments.map((f) => f.path)];
    cmds.push({ what: 'merge_config.sh', cmd: 'bash', args, cwd: obj });
  }
  cmds.push({ what: 'make olddefconfig', cmd: 'make', args: makeArgs(ctx, tree, obj, ['olddefconfig']) });
  return cmds;
}

/** Runs the configure recipe, then the fragment check. Returns the final .config text. */
export async function configure(ctx: Ctx, c: ConfigureOptions): Promise<string> {
  const { tree, obj } = c;
  await mkdir(obj, { recursive: true });
  for (const command of configureCommands(ctx, c)) {
    if ('copy' in command) {
      ctx.reproduce.push(commandLine(command));
      await copyFile(command.copy.from, command.copy.to);
      continue;
    }
    const { cmd, args, cwd } = command;
    const r = await step(ctx, cmd, args, {
      timeoutMs: CONFIG_TIMEOUT_MS,
      sandboxed: true,
      ...(cwd !== undefined ? { cwd } : {}),
    });
    if (r.exitCode === 0) continue;
    const f = classifyBuildFailure(r.all, tree);
    const msg = `${command.what} failed in ${tree}: ${f.firstError}`;
    if (f.kind === 'broken') throw new BuildBrokenError(msg, f.firstError, tail(r.all, 30));
    throw new FaultlineError(msg, { detail: tail(r.all, 30) });
  }
  const text = await readFile(join(obj, '.config'), 'utf8');
  const mismatches = await checkFragments(c.fragments, text, tree, SRCARCH);
  if (mismatches.length > 0) throw new KconfigCheckError(mismatches, join(obj, '.config'));
  return text;
}

/**
 * Only the configuration half of a build (no compile): base, fragments, olddefconfig
 * and the checked contract: what kconfig-check.test.ts runs against a real tree.
 */
export async function configureKernel(o: {
  tree: string;
  obj: string;
  base?: string;
  kconfig: readonly string[];
  cwd?: string;
  logFile?: string;
}): Promise<{ config: string; configHash: string }> {
  await checkKernelTree(o.tree);
  const cwd = o.cwd ?? process.cwd();
  const fragments = await Promise.all((await resolveFragments(o.kconfig, { cwd })).map((p) => parseFragment(p)));
  const base = await resolveBase(o.base, cwd);
  const ctx: Ctx = {
    root: '',
    logStream: o.logFile ? createWriteStream(o.logFile, { flags: 'a' }) : undefined,
    progress: progressOf('off', 0),
    makeVars: [`ARCH=${ARCH}`],
    env: { LC_ALL: 'C' },
    reproduce: [],
    sandbox: undefined,
  };
  try {
    const text = await configure(ctx, { tree: o.tree, obj: o.obj, base, fragments });
    return { config: join(o.obj, '.config'), configHash: configHash(text) };
  } finally {
    await new Promise<void>((r) => (ctx.logStream ? ctx.logStream.end(r) : r()));
  }
}
