import t from 'tap';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BuildBrokenError, ExitCode, UsageError } from '../util/errors.js';
import { run } from '../util/proc.js';
import { ensureDebianSource } from './debian.js';
import { buildKernel } from './build.js';
import { ensureMinimalKernel } from '../testkit/minimal-kernel.js';
import { classifyBuildFailure } from '../toolchain/diagnostics.js';
import { debianTreeWith } from '../testkit/kernel-repo.js';

// A cold minimal build on a busy 2-core machine can take a while.
t.setTimeout(3 * 3600_000);
const fixtures = join(import.meta.dirname, 'fixtures');

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'faultline-build-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function usageError(p: Promise<unknown>): Promise<UsageError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof UsageError)) throw new Error(`expected a UsageError, got ${String(e)}`);
  return e;
}

t.test('bad input: one clear line each, exit 2, before any make', async (t) => {
  const d = await scratch(t);
  const cache = join(d, 'cache');
  let e = await usageError(buildKernel({ kernelSrc: d, cacheDir: cache, kconfig: ['minimal'] }));
  t.equal(e.exitCode, ExitCode.infra);
  t.match(e.message, /is not a Linux kernel tree \(no Makefile\): pass --kernel-src/);
  t.notOk(e.message.includes('\n'), 'one line');

  const { tree } = await ensureDebianSource('6.12');
  e = await usageError(buildKernel({ kernelSrc: tree, cacheDir: cache, kconfig: ['base,nosuch'] }));
  t.match(e.message, /^unknown kconfig fragment 'nosuch'/);

  e = await usageError(
    buildKernel({ kernelSrc: tree, cacheDir: cache, kconfig: [join(fixtures, 'bad-syntax.config')] }),
  );
  t.match(e.message, /bad-syntax\.config:4: not a kconfig line/);

  e = await usageError(buildKernel({ kernelSrc: tree, cacheDir: cache, base: join(d, 'nope.config') }));
  t.match(
    e.message,
    /--base '.*nope\.config' is neither defconfig, tinyconfig, allnoconfig nor a readable config file/,
  );

  e = await usageError(buildKernel({ kernelSrc: tree, cacheDir: cache, ref: 'v6.12' }));
  t.match(e.message, /--ref needs a git checkout, and .* is not one/);

  const repo = join(d, 'repo');
  await run('git', ['init', '-q', repo], { timeoutMs: 60_000 });
  await writeFile(join(repo, 'README'), 'x\n');
  await run('git', ['-C', repo, 'add', 'README'], { timeoutMs: 60_000 });
  await run('git', ['-C', repo, '-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-qm', 'x'], {
    timeoutMs: 60_000,
  });
  e = await usageError(buildKernel({ kernelSrc: repo, cacheDir: cache, ref: 'no-such-branch' }));
  t.match(e.message, /^unknown ref 'no-such-branch' in /);

  // A known ref is checked out in a worktree in the cache, never in the user's checkout.
  const head = (await run('git', ['-C', repo, 'rev-parse', 'HEAD'], { timeoutMs: 60_000 })).stdout.trim();
  for (let i = 0; i < 2; i++) {
    e = await usageError(buildKernel({ kernelSrc: repo, cacheDir: cache, ref: 'HEAD', progress: 'off' }));
    t.match(e.message, new RegExp(`^HEAD \\(${head.slice(0, 12)}\\) is not a Linux kernel tree \\(no Makefile\\)`));
  }
  const worktrees = (await run('git', ['-C', repo, 'worktree', 'list', '--porcelain'], { timeoutMs: 60_000 })).stdout;
  t.match(
    worktrees,
    new RegExp(`worktree ${join(cache, 'worktrees').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/[0-9a-f]{16}\\n`),
    'one worktree, in the cache',
  );
  t.equal(
    (await run('git', ['-C', repo, 'status', '--porcelain'], { timeoutMs: 60_000 })).stdout,
    '',
    "the user's checkout is untouched",
  );
});

t.test('build failures: compiler errors mean "does not build" (exit 3), the rest is infrastructure', async (t) => {
  const broken = await readFile(join(fixtures, 'build-broken.log'), 'utf8');
  const f = classifyBuildFailure(broken);
  t.equal(f.kind, 'broken');
  t.match(f.firstError, /scripts\/kconfig\/expr\.c:1184:16: error: .*undeclared_symbol.* undeclared/);
  // Captured from a series patch built in faultline's worktree (O= inside the tree: ../ paths, UTF-8 quotes).
  const owned = classifyBuildFailure(await readFile(join(fixtures, 'build-broken-owned-tree.log'), 'utf8'));
  t.equal(owned.kind, 'broken');
  t.equal(
    owned.firstError,
    "mm/userfaultfd.c:2065:16: error: 'uffd_move_budget_pages' undeclared (first use in this function); did you mean 'uffd_move_budget'?",
    'path from the tree root, ASCII quotes',
  );
  t.equal(
    classifyBuildFailure('/src/linux/mm/a.c:1:2: error: x\n', '/src/linux').firstError,
    'mm/a.c:1:2: error: x',
    'absolute paths under the tree are made relative',
  );
  const infra = await readFile(join(fixtures, 'build-no-flex.log'), 'utf8');
  const g = classifyBuildFailure(infra);
  t.equal(g.kind, 'infra');
  t.match(g.firstError, /flex: not found/);
});

/** A C file that no longer compiles: a function returning an undeclared name appended. */
const brokenC = (text: string): string => `${text}\nint faultline_broken(void)\n{\n\treturn undeclared_symbol;\n}\n`;

t.test('a tree whose code does not compile fails with BuildBrokenError (exit 3) and the first error', async (t) => {
  // A hard-link copy (cheap); the one file we break is replaced, never written through the link.
  const copy = await debianTreeWith(t, 'broken-tree', { 'scripts/kconfig/expr.c': brokenC });
  const d = dirname(copy);
  const e = await buildKernel({
    kernelSrc: copy,
    cacheDir: join(d, 'cache'),
    base: 'tinyconfig',
    kconfig: ['minimal'],
    progress: 'off',
  }).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(e instanceof BuildBrokenError, 'BuildBrokenError');
  t.equal((e as BuildBrokenError).exitCode, ExitCode.buildBroken);
  t.match((e as BuildBrokenError).firstError, /expr\.c:\d+:\d+: error: .*undeclared_symbol/);
  t.match((e as BuildBrokenError).message, /make tinyconfig failed in .*: .*error: .*undeclared_symbol/);
  t.match((e as BuildBrokenError).detail ?? '', /Error 1/);
});

t.test('a tree that does not build is remembered: the same inputs fail at once, --force builds again', async (t) => {
  // kernel/bounds.c is the first file make bzImage compiles for the target: the failure comes early.
  const copy = await debianTreeWith(t, 'broken-make', { 'kernel/bounds.c': brokenC });
  const d = dirname(copy);
  const opts = { kernelSrc: copy, cacheDir: join(d, 'cache'), base: 'tinyconfig', kconfig: ['minimal'] };
  const fail = (o: Parameters<typeof buildKernel>[0]) =>
    buildKernel(o).then(
      () => new Error('it built'),
      (err: unknown) => err,
    );
  const first = await fail({ ...opts, progress: 'off' });
  if (!(first instanceof BuildBrokenError)) throw first;
  t.match(first.firstError, /^kernel\/bounds\.c:\d+:\d+: error: .*undeclared_symbol/, 'make found it');
  const objLogs = async () =>
    (await run('sh', ['-c', `ls -l --time-style=full-iso ${d}/cache/obj/*/faultline-build.log`], { timeoutMs: 10_000 }))
      .stdout;
  const before = await objLogs();
  const again = await fail({ ...opts, progress: 'off' });
  if (!(again instanceof BuildBrokenError)) throw again;
  t.equal(again.firstError, first.firstError, 'the same first error');
  t.equal(again.exitCode, ExitCode.buildBroken);
  t.match(
    again.message,
    /^kernel does not build at .*: kernel\/bounds\.c.* \(remembered from the build of .*; --force builds again\)$/,
  );
  t.equal(again.detail, first.detail, 'and the same log tail');
  t.equal(await objLogs(), before, 'no make ran: the build log is untouched');
  const forced = await fail({ ...opts, progress: 'off', force: true });
  if (!(forced instanceof BuildBrokenError)) throw forced;
  t.notMatch(forced.message, /remembered/, '--force ran make again');
  t.not(await objLogs(), before, 'and wrote a new build log');
});

t.test('the minimal kernel (tinyconfig + minimal + uffd) builds, and a rebuild is a cache hit', async (t) => {
  const b = await ensureMinimalKernel({ progress: 'plain' });
  t.ok((await stat(b.bzImage)).size > 500_000, 'bzImage exists');
  t.ok((await stat(b.systemMap)).size > 0, 'System.map exists');
  t.match(b.release, /^6\.12\./);
  const cfg = (await readFile(b.config, 'utf8')).split('\n');
  t.ok(cfg.includes('CONFIG_USERFAULTFD=y'));
  t.ok(cfg.includes('CONFIG_VIRTIO_NET=y'));
  const meta = JSON.parse(await readFile(b.metadataFile, 'utf8')) as {
    key: string;
    reproduce: string[];
    durationsMs: Record<string, number>;
  };
  t.equal(meta.key, b.key);
  t.ok(
    meta.reproduce.some(
      (l) => l.includes('merge_config.sh') && l.includes('minimal.config') && l.includes('uffd.config'),
    ),
    'reproduce has the merge',
  );
  t.ok(
    meta.reproduce.some((l) => /make .*bzImage/.test(l)),
    'reproduce has the make',
  );
  t.ok(
    b.selftests && b.selftests.programs.some((p) => p.name === 'uffd-unit-tests' && p.status === 'built'),
    'uffd-unit-tests built from the same tree',
  );

  const again = await ensureMinimalKernel({ progress: 'off' });
  t.equal(again.cacheHit, true, 'second build is a cache hit');
  t.equal(again.key, b.key);
  t.equal(again.bzImage, b.bzImage);
  t.equal(again.durationsMs['kernel'], undefined, 'no make on a hit');
});

t.test("a build that reuses the obj dir's checked .config still records the whole configure recipe", async (t) => {
  // The obj dir lives in the tree: a new artifact cache finds it configured, skips kconfig and
  // makes. The first build leaves the obj dir configured by these inputs, whatever other tests
  // (or an edit of the tree) did to it before; the second must then reuse its .config.
  const minimal = await ensureMinimalKernel({ progress: 'off' });
  const d = await scratch(t);
  const inCache = (name: string) =>
    buildKernel({
      kernelSrc: minimal.tree,
      cacheDir: join(d, name),
      base: 'tinyconfig',
      kconfig: ['minimal', 'uffd'],
      progress: 'off',
    });
  t.equal((await inCache('first')).cacheHit, false, 'a new artifact cache: built, not found');
  const b = await inCache('second');
  t.equal(b.cacheHit, false, 'another new artifact cache: built again');
  t.match(await readFile(join(b.dir, 'build.log'), 'utf8'), /reusing its checked \.config/, 'kconfig was skipped');
  const meta = JSON.parse(await readFile(b.metadataFile, 'utf8')) as { reproduce: string[] };
  const steps = meta.reproduce.map(
    (l) => (/[ /](tinyconfig|merge_config\.sh|olddefconfig|bzImage)\b/.exec(l) ?? [])[1],
  );
  t.same(
    steps.filter((x) => x !== undefined),
    ['tinyconfig', 'merge_config.sh', 'olddefconfig', 'bzImage'],
    'the recipe: base, fragments, olddefconfig, make, in order',
  );
});
