/**
 * Build sandbox cost (issue 24): the same ccache-warm kernel rebuild with the tree's make in the
 * bubblewrap sandbox and on the host, alternating in one run (median of each).
 *
 *   node dist/bench/build-sandbox.js [--rounds N] [--jobs N]
 *
 * Each build is Debian 6.12's minimal kernel (tinyconfig + minimal + uffd) in a hard-link copy
 * of the cached tree with a real copy of its obj dir, after replacing mm/userfaultfd.c (a new
 * inode and mtime): make walks the whole tree, recompiles that file (a ccache hit from the first
 * round on, ccache being the shared one) and relinks. The sandbox costs a fixed set-up per make
 * (namespaces, mounts), so this short build is its worst case in relative terms; that fixed
 * cost is measured apart too (`true` 20 times in the sandbox and on the host). Goal: < 5%.
 */
import { cp, mkdir, readdir, readFile, rename, rm, copyFile, symlink } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildKernel } from '../harness/kernel/build.js';
import { ensureDebianSource } from '../harness/kernel/debian.js';
import { OWNED_OBJ_PREFIX } from '../harness/kernel/cache-key.js';
import { cacheRoot } from '../harness/util/fsutil.js';
import { run } from '../harness/util/proc.js';
import { runMaybeSandboxed, type SandboxSpec } from '../harness/util/sandbox.js';
import { median } from '../harness/stats/descriptive.js';

function parseArgs(argv: string[]): { rounds: number; jobs: number } {
  const a = { rounds: 3, jobs: availableParallelism() };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if ((k === '--rounds' || k === '--jobs') && v && /^[1-9]\d*$/.test(v))
      a[k === '--rounds' ? 'rounds' : 'jobs'] = Number(v);
    else throw new Error(`unknown argument ${k ?? ''}: use --rounds N --jobs N`);
  }
  return a;
}

const secs = (ms: number): string => (ms / 1000).toFixed(1);
const loadavg = async (): Promise<string> =>
  (await readFile('/proc/loadavg', 'utf8').catch(() => '')).split(' ').slice(0, 3).join(' ');

/** Mean wall time of starting `true` on the host (spec undefined) or in the sandbox, in ms. */
async function startMs(spec: SandboxSpec | undefined): Promise<number> {
  const t = Date.now();
  for (let i = 0; i < 20; i++) await runMaybeSandboxed('true', [], { timeoutMs: 60_000 }, spec);
  return (Date.now() - t) / 20;
}

/** A hard-link copy of the tree with a real copy of its obj dirs (a build writes those). */
async function prepareTree(src: string, tree: string): Promise<void> {
  await run('cp', ['-al', src, tree], { timeoutMs: 20 * 60_000 });
  for (const e of await readdir(tree)) {
    if (!e.startsWith(OWNED_OBJ_PREFIX)) continue;
    await rm(join(tree, e), { recursive: true, force: true });
    await cp(join(src, e), join(tree, e), { recursive: true, preserveTimestamps: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const src = (await ensureDebianSource('6.12')).tree;
  const work = join(cacheRoot(), 'tmp', `bench-build-sandbox-${process.pid}`);
  try {
    const tree = join(work, 'tree');
    await mkdir(work, { recursive: true });
    await prepareTree(src, tree);
    // A private artifact cache (forced rebuilds must not touch the shared one) beside the shared ccache.
    await symlink(join(cacheRoot(), 'ccache'), join(work, 'ccache'));
    const build = (sandbox: boolean) =>
      buildKernel({
        kernelSrc: tree,
        base: 'tinyconfig',
        kconfig: ['minimal', 'uffd'],
        jobs: args.jobs,
        ownedTree: true,
        force: true,
        sandbox,
        cacheDir: join(work, 'kbuild'),
        progress: 'off',
      });
    const touch = async (): Promise<void> => {
      const f = join(tree, 'mm', 'userfaultfd.c');
      await copyFile(f, `${f}.bench-tmp`);
      await rename(`${f}.bench-tmp`, f);
    };
    console.error(`[bench] warm-up build (load ${await loadavg()})`);
    await touch();
    await build(false);
    const times: Record<'sandboxed' | 'host', number[]> = { sandboxed: [], host: [] };
    for (let r = 0; r < args.rounds; r++) {
      for (const sandboxed of r % 2 === 0 ? [true, false] : [false, true]) {
        await touch();
        const t = Date.now();
        const b = await build(sandboxed);
        const ms = Date.now() - t;
        times[sandboxed ? 'sandboxed' : 'host'].push(ms);
        console.error(
          `[bench] round ${r + 1} ${sandboxed ? 'sandboxed' : 'host     '} ${secs(ms)} s (make ${secs(b.durationsMs['kernel'] ?? 0)} s, ccache ${b.ccache?.hits ?? 0} hits ${b.ccache?.misses ?? 0} misses, load ${await loadavg()})`,
        );
      }
    }
    const [sb, host] = [median(times.sandboxed), median(times.host)];
    const spec = { writable: [join(work, 'ccache')], readable: [tree] };
    const setup = [
      (await startMs(spec)) - (await startMs(undefined)),
      (await startMs(spec)) - (await startMs(undefined)),
    ];
    console.log(
      `build sandbox bench (${availableParallelism()} CPUs, -j${args.jobs}, ${args.rounds} rounds): sandboxed ${secs(sb)} s vs host ${secs(host)} s (medians; sandboxed ${times.sandboxed.map(secs).join(', ')}; host ${times.host.map(secs).join(', ')}): cost ${(((sb - host) / host) * 100).toFixed(1)}% (goal < 5%); the sandbox's set-up per step ${setup.map((x) => x.toFixed(0)).join(', ')} ms`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
