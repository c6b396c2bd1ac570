import { mkdir, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { FaultlineError, UsageError } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { run, tail, type RunResult } from '../util/proc.js';
import { log } from '../util/log.js';

/**
 * A small typed wrapper over the git CLI (through proc.run, so every call has a deadline).
 * One Git instance is bound to one working tree (the user's checkout or a linked worktree).
 * Output is parsed in the C locale; commits made in throwaway worktrees (am, revert,
 * cherry-pick) use a fixed committer so they never depend on the user's git identity.
 */

export interface CommitInfo {
  hash: string;
  parents: string[];
  subject: string;
  authorName: string;
  authorEmail: string;
  authorDate: string;
}

export type BisectTerm = 'good' | 'bad' | 'skip';

export type BisectProgress =
  | { kind: 'next'; rev: string; remaining?: number }
  /** git found the first bad commit. */
  | { kind: 'culprit'; rev: string }
  /** Only skipped commits are left: the first bad commit is one of these. */
  | { kind: 'ambiguous'; candidates: string[] };

export interface GitOptions {
  /** Deadline for ordinary commands (default 120 s; a kernel checkout can be slow). */
  timeoutMs?: number;
  logFile?: string;
  /**
   * Only read: never take index.lock nor refresh the index (GIT_OPTIONAL_LOCKS=0), for the
   * user's own trees, which faultline fingerprints while the user may be working in them.
   */
  readOnly?: boolean;
}

const FIELD = '\x1f';
const RECORD = '\x1e';
const LOG_FORMAT = ['%H', '%P', '%s', '%an', '%ae', '%aI'].join(FIELD) + RECORD;

const BASE_ENV: Record<string, string> = {
  LC_ALL: 'C',
  LANG: 'C',
  GIT_TERMINAL_PROMPT: '0',
  GIT_EDITOR: 'true',
  GIT_PAGER: 'cat',
};

/**
 * am, revert and commit would start `git maintenance run --auto` (a detached gc) in the user's
 * repository: it would outlive faultline and compete with the kernel builds it is timing.
 */
const NO_AUTO_MAINTENANCE = ['-c', 'maintenance.auto=false', '-c', 'gc.auto=0'];

/** Commits created inside faultline's worktrees (am, revert, cherry-pick). */
const COMMITTER_ENV: Record<string, string> = {
  GIT_COMMITTER_NAME: 'faultline',
  GIT_COMMITTER_EMAIL: 'faultline@localhost',
};
/** A revert's author: faultline made it, not whoever's git config the worktree inherits. */
const REVERT_AUTHOR_ENV: Record<string, string> = {
  GIT_AUTHOR_NAME: 'faultline',
  GIT_AUTHOR_EMAIL: 'faultline@localhost',
};

function parseCommits(out: string): CommitInfo[] {
  const commits: CommitInfo[] = [];
  for (const rec of out.split(RECORD)) {
    const t = rec.replace(/^\n/, '');
    if (!t.trim()) continue;
    const [hash, parents, subject, an, ae, ad] = t.split(FIELD);
    if (
      !hash ||
      parents === undefined ||
      subject === undefined ||
      an === undefined ||
      ae === undefined ||
      ad === undefined
    ) {
      throw new FaultlineError(`unexpected git log output: ${t.slice(0, 120)}`);
    }
    commits.push({
      hash,
      parents: parents.split(' ').filter(Boolean),
      subject,
      authorName: an,
      authorEmail: ae,
      authorDate: ad.trim(),
    });
  }
  return commits;
}

/** Parse what `git bisect start/good/bad/skip` printed into the next step. */
export function parseBisectOutput(out: string): BisectProgress | undefined {
  const culprit = /^([0-9a-f]{40}) is the first bad commit/m.exec(out);
  if (culprit?.[1]) return { kind: 'culprit', rev: culprit[1] };
  if (/only 'skip'ped commits left to test/.test(out)) {
    const candidates = [...out.matchAll(/^([0-9a-f]{40})\b/gm)].map((m) => m[1] ?? '').filter(Boolean);
    return { kind: 'ambiguous', candidates };
  }
  const next = /^Bisecting: (\d+) revisions? left to test/m.exec(out);
  const at = /^\[([0-9a-f]{40})\]/m.exec(out);
  if (at?.[1]) return { kind: 'next', rev: at[1], ...(next?.[1] ? { remaining: Number(next[1]) } : {}) };
  return undefined;
}

export class Git {
  readonly dir: string;
  private readonly timeoutMs: number;
  private readonly logFile: string | undefined;
  private readonly env: Record<string, string>;

  constructor(dir: string, opts: GitOptions = {}) {
    this.dir = dir;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.logFile = opts.logFile;
    this.env = opts.readOnly ? { ...BASE_ENV, GIT_OPTIONAL_LOCKS: '0' } : BASE_ENV;
  }

  /** Run git in this tree. Throws on a non-zero exit unless allowFailure. */
  async exec(
    args: readonly string[],
    opts: { allowFailure?: boolean; input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return run('git', ['-C', this.dir, ...NO_AUTO_MAINTENANCE, ...args], {
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
      env: opts.env ? { ...this.env, ...opts.env } : this.env,
      ...(opts.allowFailure ? { allowFailure: true } : {}),
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      ...(this.logFile ? { logFile: this.logFile } : {}),
    });
  }

  private async out(args: readonly string[]): Promise<string> {
    return (await this.exec(args)).stdout.trim();
  }

  /** True when dir is inside a git work tree. */
  async isRepo(): Promise<boolean> {
    const r = await this.exec(['rev-parse', '--is-inside-work-tree'], { allowFailure: true });
    return r.exitCode === 0 && r.stdout.trim() === 'true';
  }

  /** Full hash of a commit; a one-line UsageError naming the revision when it does not exist. */
  async resolveCommit(rev: string): Promise<string> {
    if (rev.startsWith('-'))
      throw new UsageError(`revision '${rev}' looks like an option: pass a commit, branch or tag`);
    const r = await this.exec(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { allowFailure: true });
    const hash = r.stdout.trim();
    if (r.exitCode !== 0 || !/^[0-9a-f]{40,64}$/.test(hash)) {
      throw new UsageError(
        `'${rev}' is not a commit in ${this.dir}: check the name with 'git -C ${this.dir} log --oneline ${rev}'`,
      );
    }
    return hash;
  }

  async head(): Promise<string> {
    return this.out(['rev-parse', 'HEAD']);
  }

  /**
   * The environment of a commit faultline makes on HEAD: its committer, dated as HEAD is. The same
   * patch applied (or commit reverted) on the same commit is then the same commit, whenever and
   * wherever it is made, and its build is a cache hit (artifacts are keyed by commit): a series
   * run again, or a culprit's revert checked again by another bisect or night.
   */
  private async commitEnv(): Promise<Record<string, string>> {
    const date = await this.out(['show', '-s', '--format=%cI', 'HEAD']);
    return { ...COMMITTER_ENV, GIT_COMMITTER_DATE: date };
  }

  /** The symbolic HEAD (branch name) or undefined when detached. */
  async currentBranch(): Promise<string | undefined> {
    const r = await this.exec(['symbolic-ref', '--quiet', 'HEAD'], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const r = await this.exec(['merge-base', '--is-ancestor', ancestor, descendant], { allowFailure: true });
    if (r.exitCode === 0) return true;
    if (r.exitCode === 1) return false;
    throw new FaultlineError(`git merge-base failed: ${r.stderr.trim()}`);
  }

  async commit(rev: string): Promise<CommitInfo> {
    const c = parseCommits(await this.out(['show', '-s', `--format=${LOG_FORMAT}`, rev]))[0];
    if (!c) throw new FaultlineError(`git show printed nothing for ${rev}`);
    return c;
  }

  /** Commits in a range (oldest first by default, like a series applies). */
  async log(
    range: string,
    opts: { reverse?: boolean; noMerges?: boolean; firstParent?: boolean } = {},
  ): Promise<CommitInfo[]> {
    const args = ['log', `--format=${LOG_FORMAT}`];
    if (opts.reverse ?? true) args.push('--reverse');
    if (opts.noMerges) args.push('--no-merges');
    if (opts.firstParent) args.push('--first-parent');
    args.push(range, '--');
    return parseCommits(await this.out(args));
  }

  async countCommits(range: string): Promise<number> {
    return Number(await this.out(['rev-list', '--count', range]));
  }

  /** Files changed between two commits (paths relative to the tree root). */
  async changedFiles(from: string, to: string): Promise<string[]> {
    const o = await this.out(['diff', '--name-only', '--no-renames', from, to]);
    return o ? o.split('\n') : [];
  }

  /** `git patch-id --stable` of one commit: identifies the change independent of where it applies. */
  async patchId(rev: string): Promise<string | undefined> {
    const diff = await this.exec(['show', '--format=', '--no-color', rev]);
    const r = await this.exec(['patch-id', '--stable'], { input: diff.stdout });
    return r.stdout.trim().split(/\s+/)[0] || undefined;
  }

  async checkoutDetached(rev: string): Promise<void> {
    await this.exec(['checkout', '--quiet', '--detach', '--force', rev]);
  }

  // ---- worktrees -------------------------------------------------------------------------

  // faultline never runs `git worktree prune`: that would also drop the stale entries of the
  // user's own worktrees (say, on a removable disk). It cleans up only the paths it created.

  /** A new linked worktree at `path`, detached at rev. Returns a Git bound to it. */
  async worktreeAdd(path: string, rev: string): Promise<Git> {
    await this.forgetStaleWorktree(path);
    await this.exec(['worktree', 'add', '--detach', '--force', path, rev], {
      timeoutMs: Math.max(this.timeoutMs, 600_000),
    });
    return new Git(path, { timeoutMs: this.timeoutMs, ...(this.logFile ? { logFile: this.logFile } : {}) });
  }

  async worktreeRemove(path: string): Promise<void> {
    await this.exec(['worktree', 'remove', '--force', '--force', path], {
      allowFailure: true,
      timeoutMs: Math.max(this.timeoutMs, 600_000),
    });
    // A removal that failed half way leaves the directory or its registration: finish both.
    await rm(path, { recursive: true, force: true });
    await this.forgetStaleWorktree(path);
  }

  /** Drop this repository's registrations of `path` once its directory is gone (a crashed run's). */
  async forgetStaleWorktree(path: string): Promise<void> {
    if (await exists(path)) return;
    const admin = join(await this.commonDir(), 'worktrees');
    const wanted = new Set([join(resolve(path), '.git'), join(await realParent(resolve(path)), '.git')]);
    for (const id of await readdir(admin).catch(() => [] as string[])) {
      const gitdir = (await readFile(join(admin, id, 'gitdir'), 'utf8').catch(() => '')).trim();
      if (wanted.has(gitdir)) await rm(join(admin, id), { recursive: true, force: true });
    }
  }

  /** The repository's common git directory (shared by all its worktrees), absolute. */
  async commonDir(): Promise<string> {
    return this.out(['rev-parse', '--path-format=absolute', '--git-common-dir']);
  }

  /** The repository's git directory, or undefined for a tree that is no git checkout (an unpacked source). */
  async commonDirIfRepo(): Promise<string | undefined> {
    const r = await this.exec(['rev-parse', '--path-format=absolute', '--git-common-dir'], { allowFailure: true });
    return r.exitCode === 0 ? r.stdout.trim() || undefined : undefined;
  }

  /**
   * A worktree kept at `path` across uses (a build cache's), detached at `rev`: checked out in
   * place, so make finds unchanged files unchanged, and cleaned of untracked files except the
   * top-level entries named `keep*` (build dirs). An unusable one is recreated, the kept entries
   * moved aside and back (renames keep files open in them valid).
   */
  async reuseWorktree(path: string, rev: string, keep: string): Promise<void> {
    const long = { timeoutMs: Math.max(this.timeoutMs, 30 * 60_000) };
    const inPlace = new Git(path, { timeoutMs: long.timeoutMs });
    if (await exists(join(path, '.git'))) {
      const r = await inPlace.exec(['checkout', '--quiet', '--force', '--detach', rev], {
        ...long,
        allowFailure: true,
      });
      if (r.exitCode === 0) {
        await inPlace.exec(['clean', '-fdxq', '-e', `/${keep}*`], long);
        return;
      }
      log.warn(`worktree ${path} is unusable (${gitReason(r)}): recreating it`);
    }
    const aside = `${path}.kept-aside`;
    await rm(aside, { recursive: true, force: true });
    const kept = (await readdir(path).catch(() => [] as string[])).filter((n) => n.startsWith(keep));
    if (kept.length) await mkdir(aside, { recursive: true });
    for (const n of kept) await rename(join(path, n), join(aside, n));
    await rm(path, { recursive: true, force: true });
    await this.forgetStaleWorktree(path);
    await mkdir(dirname(path), { recursive: true });
    const r = await this.exec(['worktree', 'add', '--force', '--detach', path, rev], { ...long, allowFailure: true });
    if (r.exitCode !== 0)
      throw new FaultlineError(`git worktree add ${path} failed: ${gitReason(r)}`, { detail: tail(r.all, 20) });
    for (const n of kept) await rename(join(aside, n), join(path, n));
    await rm(aside, { recursive: true, force: true });
  }

  async worktreeList(): Promise<string[]> {
    const o = await this.out(['worktree', 'list', '--porcelain']);
    return o
      .split('\n')
      .filter((l) => l.startsWith('worktree '))
      .map((l) => l.slice('worktree '.length));
  }

  // ---- applying patches ------------------------------------------------------------------

  /** Apply one mail (a patch file) with `git am`; on failure the am is aborted and git's reason returned. */
  async am(
    patchFile: string,
    opts: { threeWay?: boolean } = {},
  ): Promise<{ ok: true; commit: string } | { ok: false; reason: string }> {
    const args = ['am', '--quiet', '--keep-cr'];
    if (opts.threeWay) args.push('--3way');
    args.push(patchFile);
    const r = await this.exec(args, { allowFailure: true, env: await this.commitEnv() });
    if (r.exitCode === 0) return { ok: true, commit: await this.head() };
    await this.exec(['am', '--abort'], { allowFailure: true });
    return { ok: false, reason: gitReason(r) };
  }

  async cherryPick(rev: string): Promise<{ ok: true; commit: string } | { ok: false; reason: string }> {
    const env = await this.commitEnv();
    const r = await this.exec(['cherry-pick', '--allow-empty', rev], { allowFailure: true, env });
    if (r.exitCode === 0) return { ok: true, commit: await this.head() };
    await this.exec(['cherry-pick', '--abort'], { allowFailure: true });
    return { ok: false, reason: gitReason(r) };
  }

  /** Commit a revert of rev on top of HEAD (used to verify a bisect culprit); the same on the same HEAD. */
  async revert(rev: string): Promise<{ ok: true; commit: string } | { ok: false; reason: string }> {
    const committer = await this.commitEnv();
    const env = { ...committer, ...REVERT_AUTHOR_ENV, GIT_AUTHOR_DATE: committer['GIT_COMMITTER_DATE'] ?? '' };
    const r = await this.exec(['revert', '--no-edit', rev], { allowFailure: true, env });
    if (r.exitCode === 0) return { ok: true, commit: await this.head() };
    await this.exec(['revert', '--abort'], { allowFailure: true });
    return { ok: false, reason: gitReason(r) };
  }

  // ---- bisect (state is per-worktree: refs/bisect/* and BISECT_* live in the worktree's git dir) --

  async bisectStart(bad: string, good: string, opts: { firstParent?: boolean } = {}): Promise<BisectProgress> {
    const args = ['bisect', 'start'];
    if (opts.firstParent) args.push('--first-parent');
    args.push(bad, good, '--');
    const r = await this.exec(args);
    return this.progressOf(r);
  }

  async bisectMark(term: BisectTerm, rev?: string): Promise<BisectProgress> {
    const r = await this.exec(['bisect', term, ...(rev ? [rev] : [])], { allowFailure: true });
    // Exit 2 with "only skipped commits left" is an answer, not an error.
    if (r.exitCode !== 0 && !/only 'skip'ped commits left/.test(r.all)) {
      throw new FaultlineError(`git bisect ${term} failed: ${gitReason(r)}`);
    }
    return this.progressOf(r);
  }

  private bisectLogFile: string | undefined;

  /** The bisect log: git's own BISECT_LOG (what `git bisect log` prints), read without a process. */
  async bisectLog(): Promise<string> {
    this.bisectLogFile ??= await this.out(['rev-parse', '--path-format=absolute', '--git-path', 'BISECT_LOG']);
    try {
      return await readFile(this.bisectLogFile, 'utf8');
    } catch {
      return (await this.exec(['bisect', 'log'])).stdout;
    }
  }

  /** True when this worktree is in the middle of a bisect. */
  async bisecting(): Promise<boolean> {
    const r = await this.exec(['bisect', 'log'], { allowFailure: true });
    return r.exitCode === 0;
  }

  async bisectReplay(logFile: string): Promise<BisectProgress> {
    const r = await this.exec(['bisect', 'replay', logFile], { allowFailure: true });
    if (r.exitCode !== 0 && !/only 'skip'ped commits left/.test(r.all)) {
      throw new FaultlineError(`git bisect replay ${logFile} failed: ${gitReason(r)}`);
    }
    return this.progressOf(r);
  }

  async bisectReset(): Promise<void> {
    await this.exec(['bisect', 'reset', '--quiet'], { allowFailure: true });
  }

  private async progressOf(r: RunResult): Promise<BisectProgress> {
    const p = parseBisectOutput(r.all);
    if (p) return p;
    // Output format drifted or git printed nothing parseable: fall back to where HEAD is.
    return { kind: 'next', rev: await this.head() };
  }
}

/** `p` with its nearest existing ancestor resolved through symlinks (git records real paths). */
async function realParent(p: string): Promise<string> {
  const parent = dirname(p);
  if (parent === p) return p;
  const real = await realpath(parent).catch(() => undefined);
  return join(real ?? (await realParent(parent)), basename(p));
}

/** The lines of git's output that say why it failed (error:/fatal:/patch failed), one line. */
/** A tree as a sandbox sees it: its directory and its repository's git directory (none for an unpacked source). */
export async function treeWithGitDir(dir: string): Promise<{ dir: string; gitDir: string | undefined }> {
  return { dir, gitDir: await new Git(dir, { readOnly: true }).commonDirIfRepo() };
}

export function gitReason(r: Pick<RunResult, 'all' | 'stderr'>): string {
  const lines = (r.all || r.stderr)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const why = lines.filter((l) => /^(error|fatal|CONFLICT|Patch failed|warning: .*conflict)/i.test(l));
  const chosen = why.length ? why : lines.slice(-2);
  return chosen.slice(0, 3).join('; ');
}
