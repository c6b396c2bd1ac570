import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cp, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureMinimalKernel } from '../testkit/minimal-kernel.js';
import { OWNED_OBJ_PREFIX } from '../kernel/cache-key.js';
import { KernelBuilder } from '../revision/kernel.js';
import { cacheRoot } from '../util/fsutil.js';
import { run } from '../util/proc.js';
import { ensureKernelTestRepo, testRepoGit } from '../testkit/kernel-repo.js';

/**
 * Issue 24: a hostile commit cannot reach the host from its kernel build. A commit on Debian's
 * 6.12 tree (the cached series/bisect test repository) adds to mm/Makefile a `$(shell ...)`
 * that writes a file in the user's home and in the host's /tmp and connects to a listener this
 * test opens on 127.0.0.1: kbuild runs it when `make bzImage` descends into mm/, the longest
 * step and the one that runs most of a tree's code. The revision builder that series and bisect use builds it (the
 * minimal config, ccache) in a worktree whose files are hard links to the Debian tree's beside a
 * copy of that tree's obj dir: every object is a ccache hit (a fresh obj dir took over 20 min
 * here). It builds, the probe ran (its line is in the build log), neither file exists and the
 * listener saw no connection; the build's metadata says it was sandboxed. Without the sandbox
 * (buildSettings sandbox: false, checked by hand) both files are written and the listener sees
 * the connection.
 */
// Time: 3.6 min here at load average 4 (worktree 35 s, configure 21 s, make 146 s: every object
// a ccache hit, recompiled for the git tree's release string). With the probe in the top-level
// Makefile, an input of kconfig and of the selftests, it took 7.5 min at load 6-10. 20 min
// leaves room for a loaded machine.
t.setTimeout(20 * 60_000);

const scratch = mkdtempSync(join(tmpdir(), 'faultline-e2e-sandbox-'));
const homeCanary = join(homedir(), `.faultline-sandbox-canary-${process.pid}`);
const tmpCanary = join(scratch, 'canary');
/** An object the hostile build would plant in the shared ccache, for other builds to link. */
const ccachePoison = join(cacheRoot(), 'ccache', `faultline-poison-${process.pid}`);
const worktree = join(cacheRoot(), 'tmp', `sandbox-e2e-${process.pid}`);
const { repo, base } = await ensureKernelTestRepo();
// The Debian tree with the obj dir of its minimal kernel: the commit's base is that tree.
const debianTree = (await ensureMinimalKernel({ selftests: false, progress: 'off' })).tree;

let connections = 0;
const server = createServer((s) => {
  connections++;
  s.destroy();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const address = server.address();
const port = typeof address === 'object' && address ? address.port : 0;

t.teardown(async () => {
  server.close();
  rmSync(homeCanary, { force: true });
  rmSync(ccachePoison, { force: true });
  rmSync(scratch, { recursive: true, force: true });
  await run('git', ['-C', repo, 'worktree', 'remove', '--force', worktree], { timeoutMs: 600_000, allowFailure: true });
  rmSync(worktree, { recursive: true, force: true });
});

/** A patch from a list: the Makefile runs a shell when kbuild reads it, in every build of the tree. */
const probe = [
  `echo leaked > ${homeCanary} && echo home-write-done`,
  `echo leaked > ${tmpCanary} && echo tmp-write-done`,
  `echo leaked > /dev/tcp/127.0.0.1/${port} && echo connect-done`,
  `echo poison > ${ccachePoison} && echo ccache-write-done`,
].join('; ');
const hostileMakefile = (text: string): string =>
  `faultline_probe := $(shell bash -c '${probe}' 2>&1)\n$(info faultline-probe: $(faultline_probe))\n${text}`;

/**
 * A worktree at the base commit whose files are hard links to the Debian tree's (same content,
 * same mtimes) beside a real copy of its obj dir: make finds everything up to date but what the
 * commit changes. Files are only ever replaced (rename), never written through the links.
 */
async function worktreeOnBuiltBase(): Promise<void> {
  await run('git', ['-C', repo, 'worktree', 'add', '--no-checkout', '--detach', worktree, base], {
    timeoutMs: 600_000,
  });
  const skip = (n: string): boolean => n.startsWith(OWNED_OBJ_PREFIX) || ['.complete', '.tree-complete'].includes(n);
  const names = (await readdir(debianTree)).filter((n) => !skip(n));
  await run('cp', ['-al', ...names.map((n) => join(debianTree, n)), worktree], { timeoutMs: 20 * 60_000 });
  for (const n of (await readdir(debianTree)).filter((n) => n.startsWith(OWNED_OBJ_PREFIX)))
    await cp(join(debianTree, n), join(worktree, n), { recursive: true, preserveTimestamps: true });
  // The index of the base commit, for the stat data of the linked files.
  await testRepoGit(worktree, ['reset', '-q']);
}

t.test(
  'a Makefile $(shell) of a hostile commit writes neither the home nor the ccache, nor reaches the network',
  async (t) => {
    await worktreeOnBuiltBase();
    const makefile = join(worktree, 'mm', 'Makefile');
    await writeFile(`${makefile}.new`, hostileMakefile(await readFile(makefile, 'utf8')));
    await rename(`${makefile}.new`, makefile);
    await testRepoGit(worktree, ['commit', '-q', '-a', '-m', 'kbuild: probe the host']);
    const rev = await testRepoGit(worktree, ['rev-parse', 'HEAD']);

    const builder = new KernelBuilder({ base: 'tinyconfig', kconfig: ['minimal', 'uffd'], progress: 'plain' });
    // As series builds a patch: a stranger's code, which may read the shared ccache but not write it.
    const b = await builder.build(rev, worktree, { untrusted: true });
    t.ok(b.ok, `the commit builds: ${b.ok ? '' : b.firstError}`);
    if (!b.ok || !b.artifact) return;
    t.match(b.log ?? '', /faultline-probe: /, "the Makefile's $(shell) ran");
    t.notMatch(b.log ?? '', /connect-done/, 'the probe could not connect');
    await new Promise((r) => setTimeout(r, 500));
    t.equal(connections, 0, 'the listener on 127.0.0.1 saw no connection');
    t.notOk(existsSync(homeCanary), `nothing written in the home (${homeCanary})`);
    t.notOk(existsSync(tmpCanary), `nothing written in the host's /tmp (${tmpCanary})`);
    t.notMatch(b.log ?? '', /ccache-write-done/, 'the probe could not write into the shared ccache');
    t.notOk(existsSync(ccachePoison), `nothing planted in the shared ccache (${ccachePoison})`);
    const metadata: unknown = JSON.parse(readFileSync(join(dirname(b.artifact.bzImage), 'metadata.json'), 'utf8'));
    t.match(metadata, { sandboxed: true }, 'the build records that it was sandboxed');
  },
);
