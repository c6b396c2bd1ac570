import { mkdtemp, open, readdir, rmdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { Git } from '../vcs/git.js';
import { parseList } from './options.js';

/**
 * The one check of every path a command is given, run before anything is downloaded, built or
 * booted: a bad path is one line naming the flag, what is wrong and what to pass instead (exit 2),
 * never an ENOTDIR stack trace from deep inside a run, nor a hang (Node's recursive mkdir spins
 * forever under /proc).
 *
 * What each role needs:
 *   read-file        an existing file (anything but a directory) that opens for reading
 *   read-dir         an existing directory that can be listed
 *   read-dir-or-none a directory that can be listed, or nothing there (read as empty)
 *   write-dir        a directory the command writes into: existing and writable, or creatable
 *   write-file       a file the command writes (atomically, so its directory must be writable)
 *   git-worktrees    an existing git checkout whose git directory takes a linked worktree
 */
export type PathRole = 'read-file' | 'read-dir' | 'read-dir-or-none' | 'write-dir' | 'write-file' | 'git-worktrees';

export interface PathFlag {
  /** How the user named it: '--results', or the command ('serve', 'merge') for a positional. */
  flag: string;
  /** As given (relative to the cwd); undefined when the flag was not given and has no default. */
  path: string | undefined;
  role: PathRole;
  /** What to pass instead, completing "pass ...": e.g. 'the bzImage to boot'. */
  wants: string;
}

/**
 * --kernel-src: a tree to read, or with --ref and in bisect and series a git checkout that
 * faultline adds a linked worktree to (git writes its entry into the checkout's git directory).
 */
export function kernelSrcFlag(path: string | undefined, o: { addsWorktree: boolean }): PathFlag {
  return o.addsWorktree
    ? {
        flag: '--kernel-src',
        path,
        role: 'git-worktrees',
        wants: 'a git checkout of the kernel whose .git is writable (faultline adds a linked worktree to it)',
      }
    : { flag: '--kernel-src', path, role: 'read-dir', wants: 'the kernel source tree' };
}

/** Each --program FILE.c, read and compiled against the tested tree. */
export function programFlags(given: string | readonly string[] | undefined): PathFlag[] {
  return parseList(given).map((path) => ({
    flag: '--program',
    path,
    role: 'read-file',
    wants: 'your C program (FILE.c)',
  }));
}

/** Each --known-issues FILE (a known-issues YAML file); `false` is --no-known-issues, no path. */
export function knownIssuesFlags(given: readonly (string | boolean)[] | undefined): PathFlag[] {
  return (given ?? [])
    .filter((f): f is string => typeof f === 'string')
    .map((path) => ({ flag: '--known-issues', path, role: 'read-file', wants: 'a known-issues YAML file' }));
}

/** The paths of bisect and series: the mbox, a checkout to add a worktree to, results, worktree, programs. */
export function worktreeCommandPaths(
  command: 'bisect' | 'series',
  a: {
    kernelSrc: string;
    resultsDir: string;
    worktree: string | undefined;
    program: readonly string[] | undefined;
    mbox?: string | undefined;
  },
): PathFlag[] {
  return [
    { flag: '--mbox', path: a.mbox, role: 'read-file', wants: 'the series as an mbox file (b4 am, a lore download)' },
    kernelSrcFlag(a.kernelSrc, { addsWorktree: true }),
    {
      flag: '--results-dir',
      path: a.resultsDir,
      role: 'write-dir',
      wants: `a writable directory for the ${command}'s results (made when missing)`,
    },
    {
      flag: '--worktree',
      path: a.worktree,
      role: 'write-dir',
      wants: `a writable place for the ${command} worktree`,
    },
    ...programFlags(a.program),
  ];
}

/** Check each given path in order; the first bad one is a UsageError. */
export async function checkPaths(flags: readonly PathFlag[]): Promise<void> {
  for (const f of flags) if (f.path !== undefined) await checkPath({ ...f, path: f.path });
}

type Given = PathFlag & { path: string };

async function checkPath(f: Given): Promise<void> {
  const abs = resolve(f.path);
  const bad = (what: string): UsageError => new UsageError(`${f.flag} ${abs}${what}: pass ${f.wants}`);
  const st = await statOrProblem(abs);
  if (typeof st === 'string') {
    if (st !== 'missing') throw bad(st);
    if (f.role === 'read-dir-or-none') return;
    if (f.role === 'write-dir' || f.role === 'write-file') {
      const why = await cannotCreateIn(abs);
      if (why) throw bad(`: cannot be created (${why})`);
      return;
    }
    throw bad(`: no such ${f.role === 'read-file' ? 'file' : 'directory'}`);
  }
  const why = await problemWithExisting(f.role, abs, st);
  if (why) throw bad(why);
}

/** The stat of an existing path, 'missing', or why the path cannot be there at all. */
async function statOrProblem(abs: string): Promise<Stats | string> {
  try {
    return await stat(abs);
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return `: ${reason(code)}`;
    const parent = await nearestExisting(dirname(abs));
    if (!parent.st.isDirectory()) return `: ${parent.path} is a file, not a directory`;
    return 'missing';
  }
}

async function problemWithExisting(role: PathRole, abs: string, st: Stats): Promise<string | undefined> {
  if (role === 'read-file' || role === 'write-file') {
    if (st.isDirectory()) return ' is a directory';
    if (role === 'write-file') {
      const why = await notWritable(dirname(abs));
      return why ? ` cannot be replaced (${dirname(abs)} is not writable: ${why})` : undefined;
    }
    if (!st.isFile()) return undefined; // a FIFO or device: opening it would block or consume it
    const unreadable = await cannotOpen(abs);
    return unreadable ? ` cannot be read (${unreadable})` : undefined;
  }
  if (!st.isDirectory()) return ' is a file, not a directory';
  const listed = await readdir(abs).then(
    () => undefined,
    (e: unknown) => reason(errnoCode(e)),
  );
  if (listed) return ` cannot be read (${listed})`;
  if (role === 'write-dir') {
    const why = await notWritable(abs);
    return why ? ` is not writable (${why})` : undefined;
  }
  if (role === 'git-worktrees') return gitDirProblem(abs);
  return undefined;
}

/** The deepest existing ancestor of a path (the root always exists). */
async function nearestExisting(path: string): Promise<{ path: string; st: Stats }> {
  for (let p = path; ; p = dirname(p)) {
    try {
      return { path: p, st: await stat(p) };
    } catch (e) {
      if (p === dirname(p)) throw e;
    }
  }
}

/** Why a missing path cannot be made: its nearest existing ancestor takes no new entries. */
async function cannotCreateIn(abs: string): Promise<string | undefined> {
  const parent = await nearestExisting(dirname(abs));
  const why = await notWritable(parent.path);
  return why ? `${parent.path}: ${why}` : undefined;
}

/**
 * Why a directory takes no new entries, found by making one there and removing it. access(W_OK)
 * cannot tell: it says yes to root on /proc, where mkdir fails with ENOENT.
 */
async function notWritable(dir: string): Promise<string | undefined> {
  try {
    await rmdir(await mkdtemp(join(dir, '.faultline-write-check-')));
    return undefined;
  } catch (e) {
    return reason(errnoCode(e));
  }
}

async function cannotOpen(file: string): Promise<string | undefined> {
  try {
    await (await open(file, 'r')).close();
    return undefined;
  } catch (e) {
    return reason(errnoCode(e));
  }
}

/** A checkout faultline adds a linked worktree to: git writes the worktree's entry in its git directory. */
async function gitDirProblem(dir: string): Promise<string | undefined> {
  const common = await new Git(dir, { timeoutMs: 30_000 }).commonDirIfRepo();
  if (common === undefined) return ' is not a git checkout';
  const why = await notWritable(common);
  return why
    ? `: its git directory ${common} is not writable (${why}), and a linked worktree is registered there`
    : undefined;
}

function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException | undefined)?.code ?? String(e);
}

const REASONS: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'the file system takes no new entries there',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
};

function reason(code: string): string {
  return REASONS[code] ?? code;
}
