/**
 * Series build time (issue 5): a 10-patch series touching mm/ must cost no more than
 *   cold build + 10 x incremental build
 * i.e. every patch is built incrementally in the series worktree. Printed as a ratio (<= 1 is
 * the target; the series also pays git am and patch-id per patch).
 *
 * Synthetic mode (default, runs anywhere): a generated make project of --files C files under mm/
 * and lib/ (each with some arithmetic so the compiler has work), built with make -j.
 * The kernel variant (same measurement with harness/kernel/build.ts) is still to do: it needs a
 * kernel tree and ~1 cold kernel build of machine time.
 *
 *   node dist/bench/series-time.js [--files 120] [--patches 10] [--jobs N] [--json FILE]
 */
import { mkdir, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from '../harness/bisect/fixtures/toy-repo.js';
import { CommandBuilder, CommandSeriesTester } from '../harness/series/command-adapter.js';
import { runSeries } from '../harness/series/series.js';
import { writeJsonAtomic } from '../harness/util/fsutil.js';
import { run } from '../harness/util/proc.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const files = Number(arg('--files') ?? 120);
const patches = Number(arg('--patches') ?? 10);
const jobs = Number(arg('--jobs') ?? availableParallelism());

function source(dir: string, i: number): string {
  // Enough unrolled arithmetic that each file costs the compiler a few tens of ms at -O2.
  const body = Array.from({ length: 60 }, (_, k) => `\tx = x * ${k + 3} + (x >> ${(k % 7) + 1}) ^ ${i * 31 + k};`).join('\n');
  return `/* ${dir}/f${i}.c */\nunsigned long ${dir}_f${i}(unsigned long x)\n{\n${body}\n\treturn x;\n}\n`;
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
  await writeFile(join(tree, 'Makefile'), `CFLAGS ?= -O2 -Wall\nlib.a: ${objs.join(' ')}\n\tar rcs $@ $^\n%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n`);
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
  await writeFile(mbox, await git(tree, ['format-patch', '--stdout', '--cover-letter', `${base}..series`]) + '\n');
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
  const r = await runSeries({ repo: tree, base, mbox, resultsDir: join(root, 'results'), noTests: true }, new CommandBuilder(make), new CommandSeriesTester({ test: ['true'], program: 'none' }));
  const total = Date.now() - t0;
  const budget = cold.durationMs + patches * incr.durationMs;
  const ratio = total / budget;
  const patchMs = r.timing.patchBuildMs;
  process.stdout.write(`series of ${patches} patches on a ${files}-file make project (make -j${jobs}):\n`);
  process.stdout.write(`  cold build ${(cold.durationMs / 1000).toFixed(2)} s, incremental build ${(incr.durationMs / 1000).toFixed(2)} s\n`);
  process.stdout.write(`  series: base build ${(r.timing.baseBuildMs / 1000).toFixed(2)} s, patch builds ${patchMs.map((m) => (m / 1000).toFixed(2)).join(' ')} s\n`);
  process.stdout.write(`  series total ${(total / 1000).toFixed(2)} s vs cold + ${patches} x incremental = ${(budget / 1000).toFixed(2)} s: ratio ${ratio.toFixed(2)} (target <= 1.00; includes git am + patch-id)\n`);
  process.stdout.write(`  verdict ${r.verdict}; all patches applied: ${r.patches.every((p) => p.apply.ok)}; all built: ${r.patches.every((p) => p.build?.ok)}\n`);
  const json = arg('--json');
  if (json) await writeJsonAtomic(json, { files, patches, jobs, coldMs: cold.durationMs, incrementalMs: incr.durationMs, seriesMs: total, patchBuildMs: patchMs, ratio });
} finally {
  await rm(root, { recursive: true, force: true });
}
