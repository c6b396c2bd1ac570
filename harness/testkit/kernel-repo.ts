import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDebianSource } from '../kernel/debian.js';
import { cacheDir, cacheRoot, exists } from '../util/fsutil.js';
import { run } from '../util/proc.js';

/**
 * A real kernel git repository for the series and bisect end-to-end tests: Debian's 6.12 tree
 * as the base commit, then seven small commits on top that exercise what those commands must
 * handle (a no-op, a new compiler warning, a build break and its fix, a uffd regression, a
 * kernel WARN on the UFFDIO_ZEROPAGE path, a no-op).
 * Built once and cached under $FAULTLINE_CACHE/test-repos; the work tree is a hard-link copy
 * of the cached source (edits replace files, never write through a link).
 */

/** A one-file test commit: its subject, the file from the tree root, and the edit. */
export interface TestPatch {
  /** Short name used by the tests. */
  name: string;
  subject: string;
  file: string;
  /** Edit the file's text (must change it). */
  edit: (text: string) => string;
}

interface KernelPatch extends TestPatch {
  name: 'comment' | 'warning' | 'broken' | 'fix' | 'culprit' | 'splat' | 'tail';
}

export function replaceOnce(text: string, from: string, to: string): string {
  const i = text.indexOf(from);
  if (i < 0 || text.indexOf(from, i + 1) >= 0)
    throw new Error(`test patch: '${from.slice(0, 60)}' is not unique in the file`);
  return text.slice(0, i) + to + text.slice(i + from.length);
}

const BROKEN = '\nstatic int __maybe_unused uffd_move_budget(void)\n{\n\treturn uffd_move_budget_pages;\n}\n';

const KERNEL_PATCHES: KernelPatch[] = [
  {
    name: 'comment',
    subject: 'mm/userfaultfd: note why mfill retries after dropping the lock',
    file: 'mm/userfaultfd.c',
    edit: (t) => `${t}\n/* mfill_atomic() retries from the top after -ENOENT: the vma may have changed. */\n`,
  },
  {
    name: 'warning',
    subject: 'userfaultfd: count zeropage retries',
    file: 'fs/userfaultfd.c',
    edit: (t) =>
      replaceOnce(
        t,
        '\tstruct uffdio_zeropage uffdio_zeropage;\n',
        '\tstruct uffdio_zeropage uffdio_zeropage;\n\tint zeropage_retries;\n',
      ),
  },
  {
    name: 'broken',
    subject: 'mm/userfaultfd: add a move budget helper',
    file: 'mm/userfaultfd.c',
    edit: (t) => `${t}${BROKEN}`,
  },
  {
    name: 'fix',
    subject: 'mm/userfaultfd: drop the move budget helper again',
    file: 'mm/userfaultfd.c',
    edit: (t) => replaceOnce(t, BROKEN, ''),
  },
  {
    // Looks like a tightening, but mode 0 (wake) is valid: UFFDIO_ZEROPAGE now fails with -EINVAL.
    name: 'culprit',
    subject: 'userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly',
    file: 'fs/userfaultfd.c',
    edit: (t) =>
      replaceOnce(
        t,
        'if (uffdio_zeropage.mode & ~UFFDIO_ZEROPAGE_MODE_DONTWAKE)',
        'if (uffdio_zeropage.mode != UFFDIO_ZEROPAGE_MODE_DONTWAKE)',
      ),
  },
  {
    // Meant as WARN_ON_ONCE(released), inverted: every UFFDIO_ZEROPAGE warns (once per boot), before
    // the mode check, so it fires with the culprit too. It comes after the culprit: verifying it
    // tests the culprit (zeropage fails, no splat) as its parent, which a --splat bisect must call good.
    name: 'splat',
    subject: 'userfaultfd: catch UFFDIO_ZEROPAGE on a released context',
    file: 'fs/userfaultfd.c',
    edit: (t) =>
      replaceOnce(
        t,
        '\tuser_uffdio_zeropage = (struct uffdio_zeropage __user *) arg;\n',
        '\tuser_uffdio_zeropage = (struct uffdio_zeropage __user *) arg;\n\n\tWARN_ON_ONCE(!READ_ONCE(ctx->released));\n',
      ),
  },
  {
    name: 'tail',
    subject: 'mm/userfaultfd: spelling',
    file: 'mm/userfaultfd.c',
    edit: (t) => `${t}/* Callers hold the mmap read lock or the per-vma lock. */\n`,
  },
];

export interface KernelTestRepo {
  repo: string;
  /** The base commit (the tree as Debian ships it). */
  base: string;
  /** Commit of each patch, in order. */
  commits: Record<KernelPatch['name'], string>;
  tip: string;
}

/** The test repository's fixed identity and dates: reproducible commits, no global git config needed. */
const TEST_GIT_ENV = {
  GIT_AUTHOR_NAME: 'faultline test',
  GIT_AUTHOR_EMAIL: 'test@faultline.invalid',
  GIT_COMMITTER_NAME: 'faultline test',
  GIT_COMMITTER_EMAIL: 'test@faultline.invalid',
  GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z',
  LC_ALL: 'C',
};

/** git in the test repository as the test identity (commits, format-patch); stdout trimmed. */
export async function testRepoGit(
  repo: string,
  args: string[],
  o: { env?: Record<string, string>; input?: string } = {},
): Promise<string> {
  const env = { ...TEST_GIT_ENV, ...o.env };
  const r = await run('git', ['-C', repo, '-c', 'commit.gpgsign=false', ...args], {
    timeoutMs: 20 * 60_000,
    env,
    ...(o.input !== undefined ? { input: o.input } : {}),
  });
  return r.stdout.trim();
}

/** The commit message of a test patch. */
function patchMessage(p: TestPatch): string {
  return `${p.subject}\n\nTest patch '${p.name}' of faultline's kernel series/bisect end-to-end test.`;
}

/**
 * Commit `patches` on top of `parent` in `repo` without a checkout (a scratch index: the kernel
 * tree is never written), as the test identity on the fixed date, so the hashes are the same on
 * every machine and a build cached by tree state is found again. Returns the commits in order.
 */
export async function commitOnto(repo: string, parent: string, patches: readonly TestPatch[]): Promise<string[]> {
  const d = await mkdtemp(join(await cacheDir('tmp'), 'test-index-'));
  const env = { GIT_INDEX_FILE: join(d, 'index') };
  try {
    await testRepoGit(repo, ['read-tree', parent], { env });
    const out: string[] = [];
    let head = parent;
    for (const p of patches) {
      const before = (await run('git', ['-C', repo, 'cat-file', 'blob', `${head}:${p.file}`], { timeoutMs: 60_000 }))
        .stdout;
      const after = p.edit(before);
      if (after === before) throw new Error(`test patch '${p.name}' changes nothing`);
      const blob = await testRepoGit(repo, ['hash-object', '-w', '--stdin'], { input: after });
      await testRepoGit(repo, ['update-index', '--cacheinfo', `100644,${blob},${p.file}`], { env });
      const tree = await testRepoGit(repo, ['write-tree'], { env });
      head = await testRepoGit(repo, ['commit-tree', tree, '-p', head, '-m', patchMessage(p)]);
      out.push(head);
    }
    return out;
  } finally {
    await rm(d, { recursive: true, force: true });
  }
}

/** Replace a file (a new inode) so the hard-linked original in the source cache is never written. */
async function replaceFile(path: string, text: string): Promise<void> {
  await writeFile(`${path}.faultline-new`, text);
  await rename(`${path}.faultline-new`, path);
}

/**
 * A scratch copy of Debian's 6.12 tree (for a test that needs a tree with a file changed) whose
 * files are hard links to the cached tree's, so no second 1.3 GB, with `edits` (path from the
 * tree root -> new text from the old) applied by replacing each file: the cached tree is never
 * written through a link. Returns the copy's root; the scratch dir goes at the test's end.
 */
export async function debianTreeWith(
  t: { teardown(fn: () => unknown): void },
  name: string,
  edits: Record<string, (text: string) => string>,
): Promise<string> {
  const { tree } = await ensureDebianSource('6.12');
  const d = await mkdtemp(join(await cacheDir('tmp'), `${name}-`));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const copy = join(d, 'tree');
  await run('cp', ['-al', tree, copy], { timeoutMs: 10 * 60_000 });
  for (const [file, edit] of Object.entries(edits)) {
    const path = join(copy, file);
    const text = edit(await readFile(path, 'utf8'));
    await rm(path);
    await writeFile(path, text);
  }
  return copy;
}

export async function ensureKernelTestRepo(): Promise<KernelTestRepo> {
  const { tree, version } = await ensureDebianSource('6.12');
  const root = join(cacheRoot(), 'test-repos');
  // Bump the suffix whenever KERNEL_PATCHES change: the cached repository is reused as is.
  const repo = join(root, `linux-${version}-uffd-series-v2`);
  if (!(await exists(join(repo, '.faultline-complete')))) {
    const tmp = `${repo}.tmp-${process.pid}`;
    await mkdir(root, { recursive: true });
    await rm(tmp, { recursive: true, force: true });
    // Hard links: no second copy of 1.3 GB; git reads the files and writes its own objects.
    await run('cp', ['-al', tree, tmp], { timeoutMs: 20 * 60_000 });
    for (const junk of ['.complete', '.tree-complete']) await rm(join(tmp, junk), { force: true });
    await run('bash', ['-c', `find . -maxdepth 1 -name '.faultline-obj-*' -exec rm -rf {} +`], {
      cwd: tmp,
      timeoutMs: 10 * 60_000,
    });
    // Debian's packaged .gitignore ends by ignoring everything at the top level (its packaging
    // repository tracks only debian/): drop that block so the tree itself is tracked.
    const ignore = join(tmp, '.gitignore');
    const rules = await readFile(ignore, 'utf8');
    const cut = rules.indexOf('\n# Debian packaging');
    if (cut >= 0) await replaceFile(ignore, `${rules.slice(0, rules.lastIndexOf('\n#', cut - 1) + 1)}`);
    await testRepoGit(tmp, ['init', '-q', '-b', 'master']);
    // No detached gc in the background of the tests (the first commit leaves ~90k loose objects):
    // it would race the tests' checks of the repository and compete with their builds.
    await testRepoGit(tmp, ['config', 'maintenance.auto', 'false']);
    await testRepoGit(tmp, ['config', 'gc.auto', '0']);
    await testRepoGit(tmp, ['add', '-A']);
    const tracked = (await testRepoGit(tmp, ['ls-files'])).split('\n').length;
    if (tracked < 50_000) throw new Error(`only ${tracked} files of the kernel tree were added: check ${ignore}`);
    await testRepoGit(tmp, ['commit', '-q', '-m', `Linux ${version} (Debian linux-source-6.12)`]);
    for (const p of KERNEL_PATCHES) {
      const path = join(tmp, p.file);
      const before = await readFile(path, 'utf8');
      const after = p.edit(before);
      if (after === before) throw new Error(`test patch '${p.name}' changes nothing`);
      await replaceFile(path, after);
      await testRepoGit(tmp, ['commit', '-q', '-a', '-m', patchMessage(p)]);
    }
    await writeFile(join(tmp, '.git', 'info', 'exclude'), '/.faultline-complete\n', { flag: 'a' });
    await writeFile(join(tmp, '.faultline-complete'), '');
    await rm(repo, { recursive: true, force: true });
    await rename(tmp, repo);
  }
  const log = (
    await testRepoGit(repo, ['log', '--format=%H', '--reverse', '-n', String(KERNEL_PATCHES.length + 1), 'HEAD'])
  ).split('\n');
  const base = log[0] ?? '';
  const commits = Object.fromEntries(KERNEL_PATCHES.map((p, i) => [p.name, log[i + 1] ?? ''])) as Record<
    KernelPatch['name'],
    string
  >;
  return { repo, base, commits, tip: commits.tail };
}
