import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureMinimalKernel } from '../testkit/minimal-kernel.js';
import { KernelBuilder } from '../revision/kernel.js';
import { Git } from '../vcs/git.js';
import { PROJECT_ROOT } from '../util/project.js';
import { ensureKernelTestRepo } from '../testkit/kernel-repo.js';

/**
 * Every build path faultline owns shares its work (issue 19, item 6). A crash bisect built
 * commit C; `run --ref C` with the same config then rebuilt C from cold (ccache 7 hits, 786
 * misses): the --ref key hashed the commit differently from a clean worktree at C, and its obj
 * dir lay outside the worktree, so kbuild passed absolute paths that ccache hashed apart.
 *
 * Time: one forced build of the real 6.12 tree (tinyconfig + minimal + uffd, about 1,430 units)
 * served by ccache, then a cache hit: measured 10 min on this 2-core machine beside two other
 * guest runs (1,404 hits, 26 misses). 30 min covers a cold, loaded CI machine.
 */
t.setTimeout(30 * 60_000);

const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const settings = ['--base', 'tinyconfig', '--kconfig', 'minimal,uffd'];

interface BuildJson {
  bzImage: string;
  cacheHit: boolean;
}

async function buildRef(repo: string, ref: string, extra: string[] = []): Promise<BuildJson> {
  const r = await execa(
    'node',
    [cli, 'build', '--kernel-src', repo, '--ref', ref, ...settings, '--progress', 'off', '--json', ...extra],
    { reject: false, timeout: 30 * 60_000 },
  );
  if (r.exitCode !== 0) throw new Error(`faultline build --ref ${ref} exited ${String(r.exitCode)}: ${r.stderr}`);
  return JSON.parse(r.stdout) as BuildJson;
}

t.test('a bisect worktree build and build --ref share the artifact key and ccache objects', async (t) => {
  await ensureMinimalKernel({ progress: 'off' });
  const { repo, commits } = await ensureKernelTestRepo();
  const scratch = mkdtempSync(join(tmpdir(), 'faultline-build-paths-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const wtPath = join(scratch, 'worktree');
  const user = new Git(repo);
  await user.worktreeAdd(wtPath, commits.tail);
  t.teardown(() => user.worktreeRemove(wtPath));

  // Path 1: the revision builder bisect and series build each step with, in a linked worktree
  // faultline has never built in: a fresh obj dir, forced to compile, so ccache must serve it.
  const step = await new KernelBuilder({
    base: 'tinyconfig',
    kconfig: ['minimal', 'uffd'],
    progress: 'off',
    force: true,
  }).build(commits.tail, wtPath);
  const bzImage = step.artifact?.bzImage;
  t.ok(step.ok && bzImage, 'the bisect-style build of the tail commit succeeded');
  // The build's own record of what ccache did for it (metadata.json beside the bzImage).
  const meta = JSON.parse(await readFile(join(dirname(bzImage ?? ''), 'metadata.json'), 'utf8')) as {
    ccache: { hits: number; misses: number } | null;
  };
  const ccache = meta.ccache;
  t.ok(ccache, 'ccache was used');
  const { hits, misses } = ccache ?? { hits: 0, misses: 0 };
  t.ok(hits + misses > 500, `a whole kernel went through ccache (${hits} hits, ${misses} misses)`);
  // The same sources were compiled before in other directories (the Debian tree's minimal kernel,
  // other worktrees): relative paths and CCACHE_NOHASHDIR let this new directory reuse them.
  t.ok(hits / (hits + misses) >= 0.95, `at least 95% ccache hits in a new worktree (${hits} hits, ${misses} misses)`);

  // Path 2: build --ref of the same commit finds those artifacts: no make at all.
  const same = await buildRef(repo, commits.tail);
  t.equal(same.cacheHit, true, 'build --ref C is a cache hit of what the bisect worktree built at C');
  t.equal(same.bzImage, bzImage, 'the very same artifacts');
});
