import { realpath, lstat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { sha256, sha256File } from '../util/fsutil.js';
import { run } from '../util/proc.js';
import { FaultlineError } from '../util/errors.js';
import { Git } from '../vcs/git.js';

/** What a tree state fingerprints: a git checkout, plain files, or a resolved commit. */
export const TREE_STATE_KINDS = ['git', 'files', 'commit'] as const;

/**
 * The build cache key: (source tree state, final .config hash, compiler version).
 * Tree state must be cheap on an 80k-file tree: git trees use git's own index
 * (HEAD + `git diff HEAD` + untracked files); other trees hash one `find`
 * listing of path, size and mtime.
 */

/** Bump when the build recipe changes in a way that makes old artifacts wrong. */
export const RECIPE_VERSION = 1;

export interface TreeState {
  kind: (typeof TREE_STATE_KINDS)[number];
  /** HEAD (git) or the commit a --ref resolved to. */
  head?: string;
  /** True when a git tree has uncommitted changes or untracked files. */
  dirty?: boolean;
  /** sha256 over everything that identifies the tree's content. */
  digest: string;
  /** How the digest was computed, for metadata.json. */
  summary: string;
}

/** Build dirs faultline puts inside its own worktrees (BuildKernelOptions.ownedTree): never part of the tree state. */
export const OWNED_OBJ_PREFIX = '.faultline-obj-';

/** git in the user's tree, reading only (vcs/git.ts: no index.lock, no index refresh). */
const readGit = (tree: string, args: string[], timeoutMs = 5 * 60_000) =>
  new Git(tree, { readOnly: true, timeoutMs }).exec(args, { allowFailure: true });

/** Is `dir` the top of a git work tree (not merely somewhere inside another repository)? */
export async function isGitTop(dir: string): Promise<boolean> {
  const r = await readGit(dir, ['rev-parse', '--show-toplevel'], 30_000);
  if (r.exitCode !== 0) return false;
  try {
    return (await realpath(r.stdout.trim())) === (await realpath(dir));
  } catch {
    return false;
  }
}

/**
 * A clean checkout of a commit (a --ref build): the commit is the whole state. Its digest is a
 * clean worktree's at that commit, so `run --ref C` finds what a bisect or series step built at C.
 */
export function commitState(commit: string): TreeState {
  return { ...cleanCheckoutState(commit), kind: 'commit', summary: `commit ${commit}` };
}

/**
 * What gitState() computes for a clean checkout of head, without asking git. Only for trees
 * whose state the caller has just set itself (faultline's worktrees after a checkout, am or
 * revert: nothing else writes there), where the scan would cost ~1 s per build of a series.
 */
export function cleanCheckoutState(head: string): TreeState {
  return { kind: 'git', head, dirty: false, digest: sha256(`git\0${head}\0`), summary: `git ${head} (clean)` };
}

async function gitState(tree: string): Promise<TreeState> {
  const git = (args: string[]) => readGit(tree, args);
  const headR = await git(['rev-parse', '--verify', '-q', 'HEAD^{commit}']);
  const head = headR.exitCode === 0 ? headR.stdout.trim() : 'no-commits';
  // Staged + unstaged changes to tracked files, binary-safe.
  const diff = await git(['diff', 'HEAD', '--binary', '--no-ext-diff', '--no-textconv', '--no-color', '--full-index']);
  if (diff.exitCode !== 0 && head !== 'no-commits') {
    throw new FaultlineError(`git diff HEAD failed in ${tree}: ${diff.stderr.trim().split('\n')[0] ?? ''}`);
  }
  const untrackedR = await git(['ls-files', '-z', '--others', '--exclude-standard', `--exclude=/${OWNED_OBJ_PREFIX}*`]);
  const untracked = untrackedR.stdout
    .split('\0')
    .filter((p) => p !== '')
    .sort();
  // One definition of a clean tree's state: the known-state shortcut can never drift from the scan.
  if (diff.stdout.length === 0 && untracked.length === 0) return cleanCheckoutState(head);
  const h = createHash('sha256');
  h.update(`git\0${head}\0`);
  h.update(diff.stdout);
  for (const p of untracked) {
    h.update(`\0untracked\0${p}\0`);
    const st = await lstat(join(tree, p));
    h.update(st.isFile() ? await sha256File(join(tree, p)) : `${st.mode}:${st.size}`);
  }
  return {
    kind: 'git',
    head,
    dirty: true,
    digest: h.digest('hex'),
    summary: `git ${head} + ${diff.stdout.length} bytes of diff, ${untracked.length} untracked files`,
  };
}

/**
 * Non-git trees: path, size and mtime (ns) of every file, from one `find` piped
 * straight into sha256sum (~0.5 s on an 86k-file kernel tree; buffering the
 * listing in node doubled that). find's order is the directory order, stable
 * for an unchanged tree; a reordered copy only costs a cache miss, never a false hit.
 */
async function filesState(tree: string): Promise<TreeState> {
  const script = `set -o pipefail; find . \\( -path ./.git -o -path './${OWNED_OBJ_PREFIX}*' \\) -prune -o \\( -type f -o -type l \\) -printf '%P\\t%s\\t%T@\\n' | sha256sum`;
  const r = await run('bash', ['-c', script], { cwd: tree, timeoutMs: 5 * 60_000, env: { LC_ALL: 'C' } });
  const hex = /^[0-9a-f]{64}/.exec(r.stdout)?.[0];
  if (!hex) throw new FaultlineError(`could not fingerprint ${tree}: ${r.stdout.slice(0, 200)}`);
  return { kind: 'files', digest: sha256(`files\0${hex}`), summary: 'every file (path, size, mtime)' };
}

/** The state of a source tree as used by the build cache. */
export async function treeState(tree: string): Promise<TreeState> {
  return (await isGitTop(tree)) ? gitState(tree) : filesState(tree);
}

/** First line of `$CC --version`: compiler upgrades invalidate builds. */
export async function compilerVersion(cc = 'gcc'): Promise<string> {
  const r = await run(cc, ['--version'], { timeoutMs: 30_000 });
  return r.stdout.split('\n')[0]?.trim() ?? '';
}

/** sha256 of a .config as written by kconfig (deterministic: no timestamps in it). */
export function configHash(dotConfig: string): string {
  return sha256(dotConfig);
}

export interface KeyParts {
  tree: TreeState;
  configHash: string;
  compiler: string;
  arch: string;
}

/** The artifact key: what the kernel binary is a function of. */
export function buildKey(p: KeyParts): string {
  return sha256(
    JSON.stringify({ v: RECIPE_VERSION, tree: p.tree.digest, config: p.configHash, cc: p.compiler, arch: p.arch }),
  ).slice(0, 24);
}

export interface InputParts {
  tree: TreeState;
  /** 'defconfig' | 'tinyconfig' | 'file:<sha256>' */
  base: string;
  /** sha256 of each fragment's content, in order. */
  fragments: string[];
  compiler: string;
  arch: string;
}

/**
 * The input key: same tree, same base, same fragments, same compiler always
 * give the same .config, so a repeat build can find its artifacts without
 * running even `make olddefconfig`.
 */
export function inputKey(p: InputParts): string {
  return sha256(
    JSON.stringify({
      v: RECIPE_VERSION,
      tree: p.tree.digest,
      base: p.base,
      frags: p.fragments,
      cc: p.compiler,
      arch: p.arch,
    }),
  ).slice(0, 24);
}

/** What kconfig reads besides the fragments: Kconfig files, kconfig itself, the base configs, the version. */
const KCONFIG_INPUTS_GIT = [':(glob)**/Kconfig*', 'scripts/kconfig', 'arch/x86/configs', 'kernel/configs', 'Makefile'];

/**
 * A digest of everything `make <base>; merge_config.sh; make olddefconfig` reads
 * from the tree, so a rebuild after editing a .c file can skip kconfig entirely
 * (dozens of gcc probes: 20 s idle, minutes on a loaded machine).
 */
export async function kconfigInputsDigest(tree: string, state: TreeState): Promise<string> {
  if (state.kind === 'commit') return sha256(`kconfig\0${state.digest}`);
  if (state.kind === 'git') {
    const git = (args: string[]) => readGit(tree, args);
    // A clean tree has neither unstaged changes nor untracked files: the same digest without the scans.
    const none = { stdout: '' };
    const [staged, unstaged, untracked] = await Promise.all([
      git(['ls-files', '-s', '-z', '--', ...KCONFIG_INPUTS_GIT]),
      state.dirty ? git(['diff', '--binary', '--no-ext-diff', '--no-textconv', '--', ...KCONFIG_INPUTS_GIT]) : none,
      state.dirty
        ? git([
            'ls-files',
            '-z',
            '--others',
            '--exclude-standard',
            `--exclude=/${OWNED_OBJ_PREFIX}*`,
            '--',
            ...KCONFIG_INPUTS_GIT,
          ])
        : none,
    ]);
    const h = createHash('sha256');
    h.update(staged.stdout).update('\0').update(unstaged.stdout).update('\0');
    for (const p of untracked.stdout
      .split('\0')
      .filter((x) => x !== '')
      .sort())
      h.update(p).update(await sha256File(join(tree, p)).catch(() => 'unreadable'));
    return h.digest('hex');
  }
  const script = `set -o pipefail; find . \\( -path ./.git -o -path './${OWNED_OBJ_PREFIX}*' \\) -prune -o \\( -name 'Kconfig*' -o -path './scripts/kconfig/*' -o -path './arch/x86/configs/*' -o -path './kernel/configs/*' -o -path ./Makefile \\) -printf '%P\\t%s\\t%T@\\n' | sha256sum`;
  const r = await run('bash', ['-c', script], { cwd: tree, timeoutMs: 5 * 60_000, env: { LC_ALL: 'C' } });
  return sha256(`kconfig-files\0${r.stdout.slice(0, 64)}`);
}
