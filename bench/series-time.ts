/**
 * Series build time (issue 5): a 10-patch series touching mm/ must cost no more than
 *   cold build + 10 x incremental build
 * i.e. every patch is built incrementally in the series worktree. Printed as a ratio (<= 1 is
 * the target; the series also pays git am and patch-id per patch).
 *
 * Synthetic mode (default, runs anywhere): a generated make project of --files C files under mm/
 * and lib/ (each with some arithmetic so the compiler has work), built with make -j.
 *
 * Kernel mode (--kernel): the real thing on Debian's 6.12 tree (the e2e test repository), minimal
 * config, no ccache: `faultline series --no-tests` of --patches patches, each adding a small
 * function to a different mm/ file. The series' base build is the cold build (a fresh worktree,
 * no ccache); the incremental reference is measured afterwards in the same worktree and obj dir
 * the way a developer rebuilds after an edit: append a comment to one of the series' files,
 * `faultline build`, for each of those files (their compile times differ), and take the mean.
 *
 *   node dist/bench/series-time.js [--kernel] [--files 120] [--patches 10] [--jobs N] [--json FILE]
 */
import { mkdir, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from '../harness/testkit/toy-repo.js';
import { CommandBuilder, CommandRunner } from '../harness/revision/command.js';
import { RevisionTester } from '../harness/revision/tester.js';
import { runSeries } from '../harness/series/series.js';
import { writeJsonAtomic } from '../harness/util/fsutil.js';
import { run } from '../harness/util/proc.js';
import { Git } from '../harness/vcs/git.js';
// Types only: the kernel mode's modules are loaded when --kernel asks for them.
import type { KernelTestRepo } from '../harness/testkit/kernel-repo.js';
import type { BuildKernelOptions } from '../harness/kernel/build.js';
import type { SeriesRecord } from '../harness/series/types.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const files = Number(arg('--files') ?? 120);
const patches = Number(arg('--patches') ?? 10);
const jobs = Number(arg('--jobs') ?? availableParallelism());

function source(dir: string, i: number): string {
  // Enough unrolled arithmetic that each file costs the compiler a few tens of ms at -O2.
  const body = Array.from({ length: 60 }, (_, k) => `\tx = x * ${k + 3} + (x >> ${(k % 7) + 1}) ^ ${i * 31 + k};`).join(
    '\n',
  );
  return `/* ${dir}/f${i}.c */\nunsigned long ${dir}_f${i}(unsigned long x)\n{\n${body}\n\treturn x;\n}\n`;
}

const MM_FILES = [
  'mm/userfaultfd.c',
  'mm/shmem.c',
  'mm/hugetlb.c',
  'mm/memory.c',
  'mm/mmap.c',
  'mm/madvise.c',
  'mm/mprotect.c',
  'mm/filemap.c',
  'mm/gup.c',
  'mm/page_alloc.c',
];

/** Commit `text` as `path` on top of `parent` without a checkout (a private index, plumbing only). */
async function commitEdit(
  repo: string,
  parent: string,
  path: string,
  text: string,
  message: string,
  index: string,
): Promise<string> {
  const { testRepoGit } = await import('../harness/testkit/kernel-repo.js');
  const g = (args: string[], input?: string) =>
    testRepoGit(repo, args, { env: { GIT_INDEX_FILE: index }, ...(input !== undefined ? { input } : {}) });
  await g(['read-tree', parent]);
  const blob = await g(['hash-object', '-w', '--stdin'], text);
  await g(['update-index', '--cacheinfo', `100644,${blob},${path}`]);
  return g(['commit-tree', await g(['write-tree']), '-p', parent, '-m', message]);
}

async function kernelSeries(): Promise<void> {
  const { ensureKernelTestRepo } = await import('../harness/testkit/kernel-repo.js');
  const { KernelBuilder } = await import('../harness/revision/kernel.js');
  const k = await ensureKernelTestRepo();
  const work = await mkdtemp(join(tmpdir(), 'faultline-bench-kseries-'));
  try {
    const mbox = await writeKernelSeries(k, work);
    const settings = {
      base: 'tinyconfig',
      kconfig: ['minimal', 'uffd'],
      jobs,
      ccache: false,
      cacheDir: join(work, 'kbuild'),
      progress: 'plain' as const,
    };
    const worktree = join(work, 'worktree');
    const t0 = Date.now();
    const r = await runSeries(
      {
        repo: k.repo,
        base: k.base,
        mbox,
        resultsDir: join(work, 'results'),
        worktree,
        noTests: true,
        keepWorktree: true,
      },
      // Builds only (noTests): the runner is never called.
      new RevisionTester(new KernelBuilder(settings, { warningBaseline: true }), {
        describe: () => 'none (builds only)',
        settings: () => ({}),
        run: () => Promise.reject(new Error('builds only: nothing is tested')),
      }),
    );
    const total = Date.now() - t0;
    const refMs = await incrementalReference(worktree, settings);
    await reportKernelSeries(r, total, refMs);
  } finally {
    await new Git(k.repo).worktreeRemove(join(work, 'worktree'));
    await rm(work, { recursive: true, force: true });
  }
}

/** Commits --patches patches on the test repository's base, each adding a function to an mm/ file; returns the mbox. */
async function writeKernelSeries(k: KernelTestRepo, work: string): Promise<string> {
  const { testRepoGit } = await import('../harness/testkit/kernel-repo.js');
  let parent = k.base;
  for (let i = 0; i < patches; i++) {
    const path = MM_FILES[i % MM_FILES.length] ?? 'mm/userfaultfd.c';
    const text = (await run('git', ['-C', k.repo, 'show', `${parent}:${path}`], { timeoutMs: 60_000 })).stdout;
    const add = `\nstatic int __maybe_unused faultline_bench_${i}(int v)\n{\n\treturn v * ${i + 3} + 1;\n}\n`;
    parent = await commitEdit(
      k.repo,
      parent,
      path,
      `${text}\n${add}`,
      `mm: bench patch ${i + 1} (${path})`,
      join(work, 'index'),
    );
  }
  const mbox = join(work, 'series.mbox');
  await writeFile(
    mbox,
    `${await testRepoGit(k.repo, ['format-patch', '--stdout', '--cover-letter', `${k.base}..${parent}`])}\n`,
  );
  return mbox;
}

/**
 * Incremental reference in the same worktree and obj dir: edit each of the series' files in turn
 * and build again, as a developer would (the tree is dirty: faultline scans it). Returns each build's ms.
 */
async function incrementalReference(
  worktree: string,
  settings: Omit<BuildKernelOptions, 'kernelSrc' | 'ownedTree'>,
): Promise<number[]> {
  const { buildKernel } = await import('../harness/kernel/build.js');
  const refMs: number[] = [];
  for (let i = 0; i < patches; i++) {
    await appendFile(join(worktree, MM_FILES[i % MM_FILES.length] ?? 'mm/userfaultfd.c'), `/* touched ${i} */\n`);
    const ti = Date.now();
    const inc = await buildKernel({ ...settings, kernelSrc: worktree, ownedTree: true });
    refMs.push(Date.now() - ti);
    if (inc.cacheHit) throw new Error('an incremental reference build was a cache hit');
  }
  return refMs;
}

/** Prints the kernel series' time against cold + N x incremental (and writes --json). */
async function reportKernelSeries(r: SeriesRecord, total: number, refMs: number[]): Promise<void> {
  const incrMs = refMs.reduce((a, b) => a + b, 0) / refMs.length;
  const coldMs = r.timing.baseBuildMs;
  const budget = coldMs + patches * incrMs;
  const ratio = total / budget;
  const patchMs = r.timing.patchBuildMs;
  process.stdout.write(
    `kernel series of ${patches} patches touching mm/ (Debian 6.12 tree, tinyconfig+minimal+uffd, make -j${jobs}, no ccache):\n`,
  );
  process.stdout.write(
    `  cold build (the series' base, fresh worktree) ${(coldMs / 1000).toFixed(1)} s, incremental build ${(incrMs / 1000).toFixed(1)} s (mean of ${refMs.map((m) => (m / 1000).toFixed(1)).join(' ')} s)\n`,
  );
  process.stdout.write(`  patch builds ${patchMs.map((m) => (m / 1000).toFixed(1)).join(' ')} s\n`);
  const outside = total - coldMs - patchMs.reduce((a, b) => a + b, 0);
  process.stdout.write(
    `  outside the builds (worktree checkout, git am, patch-id, bookkeeping): ${(outside / 1000).toFixed(1)} s\n`,
  );
  process.stdout.write(
    `  series total ${(total / 1000).toFixed(1)} s vs cold + ${patches} x incremental = ${(budget / 1000).toFixed(1)} s: ratio ${ratio.toFixed(2)} (target <= 1.00)\n`,
  );
  process.stdout.write(
    `  all patches applied: ${r.patches.every((p) => p.apply.ok)}; all built: ${r.patches.every((p) => p.build?.ok)}\n`,
  );
  const json = arg('--json');
  if (json)
    await writeJsonAtomic(json, {
      mode: 'kernel',
      patches,
      jobs,
      coldMs,
      incrementalMs: incrMs,
      incrementalRefMs: refMs,
      seriesMs: total,
      patchBuildMs: patchMs,
      outsideBuildsMs: outside,
      ratio,
    });
}

if (process.argv.includes('--kernel')) {
  await kernelSeries();
  process.exit(0);
}

const root = await mkdtemp(join(tmpdir(), 'faultline-bench-series-'));
try {
  const tree = join(root, 'tree');
  await mkdir(join(tree, 'mm'), { recursive: true });
  await mkdir(join(tree, 'lib'), { recursive: true });
  const objs: string[] = [];
  for (let i = 0; i < files; i++) {
    const dir = i % 2 === 0 ? 'mm' : 'lib';
    await writeFile(join(tree, dir, `f${i}.c`), source(dir, i));
    objs.push(`${dir}/f${i}.o`);
  }
  await writeFile(
    join(tree, 'Makefile'),
    `CFLAGS ?= -O2 -Wall\nlib.a: ${objs.join(' ')}\n\tar rcs $@ $^\n%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n`,
  );
  await writeFile(join(tree, '.gitignore'), '*.o\n*.a\n');
  await git(tree, ['init', '-q', '-b', 'main']);
  await git(tree, ['add', '-A']);
  await git(tree, ['commit', '-q', '-m', 'bench: base']);
  const base = await git(tree, ['rev-parse', 'HEAD']);

  // The series: patch k appends a statement to one mm/ file.
  await git(tree, ['checkout', '-q', '-b', 'series']);
  for (let k = 0; k < patches; k++) {
    const f = join(tree, 'mm', `f${(k * 2) % files}.c`);
    await appendFile(f, `/* patch ${k} */\nint mm_patch${k}(int v) { return v + ${k}; }\n`);
    await git(tree, ['commit', '-q', '-am', `mm: bench patch ${k + 1}`]);
  }
  const mbox = join(root, 'series.mbox');
  await writeFile(mbox, (await git(tree, ['format-patch', '--stdout', '--cover-letter', `${base}..series`])) + '\n');
  await git(tree, ['checkout', '-q', 'main']);

  // Reference numbers in a separate worktree: one cold build, then one incremental (one mm/ file touched).
  const make = ['make', '--no-print-directory', `-j${jobs}`];
  const ref = join(root, 'ref');
  await git(tree, ['worktree', 'add', '-q', '--detach', ref, base]);
  const cold = await run(make[0] ?? 'make', make.slice(1), { cwd: ref, timeoutMs: 3600_000 });
  await appendFile(join(ref, 'mm', 'f0.c'), '/* touched */\n');
  const incr = await run(make[0] ?? 'make', make.slice(1), { cwd: ref, timeoutMs: 3600_000 });
  await git(tree, ['worktree', 'remove', '--force', ref]);

  const t0 = Date.now();
  const r = await runSeries(
    { repo: tree, base, mbox, resultsDir: join(root, 'results'), noTests: true },
    new RevisionTester(new CommandBuilder({ cmd: make }), new CommandRunner({ test: ['true'], program: 'none' })),
  );
  const total = Date.now() - t0;
  const budget = cold.durationMs + patches * incr.durationMs;
  const ratio = total / budget;
  const patchMs = r.timing.patchBuildMs;
  process.stdout.write(`series of ${patches} patches on a ${files}-file make project (make -j${jobs}):\n`);
  process.stdout.write(
    `  cold build ${(cold.durationMs / 1000).toFixed(2)} s, incremental build ${(incr.durationMs / 1000).toFixed(2)} s\n`,
  );
  process.stdout.write(
    `  series: base build ${(r.timing.baseBuildMs / 1000).toFixed(2)} s, patch builds ${patchMs.map((m) => (m / 1000).toFixed(2)).join(' ')} s\n`,
  );
  process.stdout.write(
    `  series total ${(total / 1000).toFixed(2)} s vs cold + ${patches} x incremental = ${(budget / 1000).toFixed(2)} s: ratio ${ratio.toFixed(2)} (target <= 1.00; includes git am + patch-id)\n`,
  );
  process.stdout.write(
    `  verdict ${r.verdict}; all patches applied: ${r.patches.every((p) => p.apply.ok)}; all built: ${r.patches.every((p) => p.build?.ok)}\n`,
  );
  const json = arg('--json');
  if (json)
    await writeJsonAtomic(json, {
      files,
      patches,
      jobs,
      coldMs: cold.durationMs,
      incrementalMs: incr.durationMs,
      seriesMs: total,
      patchBuildMs: patchMs,
      ratio,
    });
} finally {
  await rm(root, { recursive: true, force: true });
}
