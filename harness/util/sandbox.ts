import { realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { sep } from 'node:path';
import { cacheRoot } from './fsutil.js';
import { requireTool, run, type RunOptions, type RunResult } from './proc.js';

/**
 * The build sandbox: code from a tree faultline does not own (a series from a list, a bisect
 * revision, a user's --program) is compiled under bubblewrap with
 *   - no network (a new, empty network namespace),
 *   - the host read-only, its own /tmp, new /dev, /proc and PID namespace (no other process
 *     is visible, and a timeout's SIGKILL of bwrap takes every process of the build with it),
 *   - the user's home and faultline's cache hidden under empty tmpfs mounts, with only the
 *     dirs the build reads (the tree, its git directory, headers) back read-only and the dirs
 *     it fills (object dir, cache entry, ccache) back writable,
 *   - a clean environment: only PATH, the locale and what the caller passes (no CI tokens),
 *   - an address-space limit per process (prlimit --as): no cgroup is needed, so it works for an
 *     unprivileged user and in containers without systemd or cgroup delegation; it bounds each
 *     compiler and linker, and the build's total by make -j times it.
 * The time limit is the caller's execa timeout.
 */

export interface SandboxSpec {
  /** Dirs (or files) the build writes: bound read-write. Created by the caller beforehand. */
  writable: readonly string[];
  /** Dirs (or files) the build reads that may sit under a hidden dir: bound read-only. */
  readable: readonly string[];
  /** Address-space limit of every process in the sandbox; default MEMORY_LIMIT_BYTES. */
  memoryLimitBytes?: number;
}

/**
 * Per process: linking vmlinux takes ~1 GiB and a kernel compile unit under 300 MiB; 4 GiB
 * leaves room and still stops a runaway (a `$(shell)` that allocates forever) well below the host.
 */
const MEMORY_LIMIT_BYTES = 4 * 1024 ** 3;

/** Environment variables kept from the caller's environment (all others are dropped). */
const KEPT_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'SOURCE_DATE_EPOCH', 'TERM'];

async function real(p: string): Promise<string> {
  return realpath(p).catch(() => p);
}

/** The bwrap command line that runs `cmd args` in the sandbox (env: the caller's additions). */
export async function sandboxCommand(
  cmd: string,
  args: readonly string[],
  spec: SandboxSpec,
  env: Record<string, string> = {},
): Promise<{ cmd: string; args: string[] }> {
  // Never run unsandboxed for want of bwrap: a missing tool is one line naming its package, exit 2.
  const bwrap = await requireTool('bwrap', 'bubblewrap');
  const hidden = [...new Set([await real(homedir()), await real(cacheRoot())])].filter((d) => d !== '/');
  // Each dir at the path the build names it by and at its real path (kbuild realpaths the tree
  // and obj dir; CCACHE_DIR and O= keep a path through a symlink such as ~/.cache -> /data).
  const bindsOf = async (paths: readonly string[], flag: string) =>
    (
      await Promise.all(
        paths.map(async (p) => [...new Set([p, await real(p)])].map((dest) => ({ src: p, dest, flag }))),
      )
    ).flat();
  const binds = [...(await bindsOf(spec.readable, '--ro-bind')), ...(await bindsOf(spec.writable, '--bind'))];
  // Parents before children: a writable obj dir inside a read-only tree stays writable.
  binds.sort((a, b) => depth(a.dest) - depth(b.dest) || (a.flag === '--bind' ? 1 : -1));
  const keptEnv = KEPT_ENV.flatMap((k) => {
    const v = process.env[k];
    return v !== undefined ? [[k, v] as const] : [];
  });
  const envArgs = [...new Map([...keptEnv, ...Object.entries(env), ['HOME', homedir()]])].flatMap(([k, v]) => [
    '--setenv',
    k,
    v,
  ]);
  const limit = String(spec.memoryLimitBytes ?? MEMORY_LIMIT_BYTES);
  return {
    cmd: bwrap,
    args: [
      ...['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'],
      ...['--unshare-net', '--unshare-pid', '--unshare-ipc', '--die-with-parent', '--new-session'],
      ...hidden.flatMap((d) => ['--tmpfs', d]),
      ...binds.flatMap((b) => [b.flag, b.src, b.dest]),
      '--clearenv',
      ...envArgs,
      '--',
      ...['prlimit', `--as=${limit}`, '--', cmd, ...args],
    ],
  };
}

function depth(p: string): number {
  return p.split(sep).filter((x) => x !== '').length;
}

/**
 * Run `cmd args` in the sandbox (spec), or on the host when spec is undefined (a build the user
 * chose to leave unsandboxed). The working directory must be one the sandbox can see.
 */
export async function runMaybeSandboxed(
  cmd: string,
  args: readonly string[],
  opts: RunOptions,
  spec: SandboxSpec | undefined,
): Promise<RunResult> {
  if (!spec) return run(cmd, args, opts);
  const { env, ...rest } = opts;
  const wrapped = await sandboxCommand(cmd, args, spec, env);
  return run(wrapped.cmd, wrapped.args, rest);
}

/**
 * The sandbox of a build of `tree`: it reads the tree and its git directory, when it has one
 * (kbuild's setlocalversion asks git for the release string; a worktree's lives in its
 * repository: vcs/ finds it), and writes only `writable`.
 */
export function treeSandbox(
  tree: { dir: string; gitDir: string | undefined },
  writable: readonly string[],
  readable: readonly string[] = [],
): SandboxSpec {
  return { writable, readable: [tree.dir, ...(tree.gitDir !== undefined ? [tree.gitDir] : []), ...readable] };
}
