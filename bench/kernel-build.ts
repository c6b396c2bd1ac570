/**
 * Kernel build benchmark (issue 3): side by side on one machine, in one run,
 *   - cold minimal:   tinyconfig + kconfigs/minimal.config + uffd.config
 *   - cold defconfig: x86_64 defconfig + kernel/configs/kvm_guest.config + uffd.config
 *   - no-op rebuild (cache hit) of each
 *   - incremental rebuild of each after touching mm/userfaultfd.c
 * Cold builds use an empty, private cache and no ccache, so neither is helped.
 * Targets: minimal <= 40% of defconfig; no-op <= 2 s; incremental <= 15% of cold.
 *
 *   node dist/bench/kernel-build.js [--kernel-src DIR] [--jobs N] [--only minimal|defconfig] [--json FILE]
 *
 * The source tree is never written: the bench builds a hard-link copy of it and
 * "touches" mm/userfaultfd.c there by replacing the file (a new inode), so the
 * original's timestamps stay as they were.
 */
import { mkdtemp, readdir, readFile, rename, rm, writeFile, copyFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKernel, type KernelBuild } from '../harness/kernel/build.js';
import { ARCH } from '../harness/kernel/build-step.js';
import { ensureDebianSource } from '../harness/kernel/debian.js';
import { OWNED_OBJ_PREFIX } from '../harness/kernel/cache-key.js';
import { run } from '../harness/util/proc.js';
import { writeJsonAtomic } from '../harness/util/fsutil.js';

interface Args {
  kernelSrc?: string;
  jobs: number;
  only?: 'minimal' | 'defconfig';
  json?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { jobs: availableParallelism() };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--kernel-src' && v) {
      a.kernelSrc = v;
      i++;
    } else if (k === '--jobs' && v && /^\d+$/.test(v)) {
      a.jobs = Number(v);
      i++;
    } else if (k === '--only' && (v === 'minimal' || v === 'defconfig')) {
      a.only = v;
      i++;
    } else if (k === '--json' && v) {
      a.json = v;
      i++;
    } else
      throw new Error(
        `unknown argument ${k ?? ''}: use --kernel-src DIR --jobs N --only minimal|defconfig --json FILE`,
      );
  }
  return a;
}

interface Figures {
  /** /proc/loadavg before and after the cold build: builds on a shared host are only comparable at similar load. */
  coldLoad: string[];
  coldS: number;
  coldKernelS: number;
  noopS: number;
  incrementalS: number;
  incrementalKernelS: number;
  release: string;
  compileUnits?: number;
}

const s = (ms: number | undefined): number => Math.round((ms ?? 0) / 100) / 10;

async function timed(f: () => Promise<KernelBuild>): Promise<{ b: KernelBuild; wallS: number }> {
  const t = Date.now();
  const b = await f();
  return { b, wallS: s(Date.now() - t) };
}

/** Replace a file by a fresh copy: a new inode with a new mtime (the hard-linked original is untouched). */
async function loadavg(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8').catch(() => '')).split(' ').slice(0, 3).join(' ');
}

async function touchByReplace(path: string): Promise<void> {
  const tmp = `${path}.bench-tmp`;
  await copyFile(path, tmp);
  await rename(tmp, path);
}

async function measure(
  name: string,
  tree: string,
  cache: string,
  jobs: number,
  base: string,
  kconfig: string[],
): Promise<Figures> {
  const opts = {
    kernelSrc: tree,
    base,
    kconfig,
    jobs,
    ccache: false,
    cacheDir: join(cache, 'kbuild'),
    progress: 'plain' as const,
  };
  console.error(`[bench] ${name}: cold build`);
  const coldLoad = [await loadavg()];
  const cold = await timed(() => buildKernel(opts));
  coldLoad.push(await loadavg());
  console.error(`[bench] ${name}: no-op rebuild`);
  const noop = await timed(() => buildKernel(opts));
  if (!noop.b.cacheHit) throw new Error(`${name}: the no-op rebuild was not a cache hit`);
  console.error(`[bench] ${name}: incremental after touching mm/userfaultfd.c`);
  await touchByReplace(join(tree, 'mm', 'userfaultfd.c'));
  const inc = await timed(() => buildKernel(opts));
  if (inc.b.cacheHit) throw new Error(`${name}: touching mm/userfaultfd.c did not change the build key`);
  const meta = JSON.parse(await readFile(cold.b.metadataFile, 'utf8')) as { compileUnits?: number };
  console.error(
    `[bench] ${name}: cold ${cold.wallS} s (configure ${s(cold.b.durationsMs['configure'])} s, make ${s(cold.b.durationsMs['kernel'])} s), no-op ${noop.wallS} s, incremental ${inc.wallS} s (configure ${s(inc.b.durationsMs['configure'])} s, make ${s(inc.b.durationsMs['kernel'])} s)`,
  );
  return {
    coldLoad,
    coldS: cold.wallS,
    coldKernelS: s(cold.b.durationsMs['kernel']),
    noopS: noop.wallS,
    incrementalS: inc.wallS,
    incrementalKernelS: s(inc.b.durationsMs['kernel']),
    release: cold.b.release,
    ...(typeof meta.compileUnits === 'number' ? { compileUnits: meta.compileUnits } : {}),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const src = args.kernelSrc ?? (await ensureDebianSource('6.12')).tree;
  const work = await mkdtemp(join(process.env['FAULTLINE_BENCH_DIR'] ?? tmpdir(), 'faultline-kbench-'));
  const started = new Date().toISOString();
  try {
    // One hard-link copy of the tree: cheap, and lets the bench "touch" a file safely.
    const tree = join(work, 'tree');
    await run('cp', ['-al', src, tree], { timeoutMs: 20 * 60_000 });
    await rm(join(tree, '.git'), { recursive: true, force: true });
    // Build dirs faultline keeps inside the cached tree are not source: the bench starts cold.
    for (const e of await readdir(tree))
      if (e.startsWith(OWNED_OBJ_PREFIX)) await rm(join(tree, e), { recursive: true, force: true });
    const out: Record<string, Figures> = {};
    if (args.only !== 'defconfig') {
      out['minimal'] = await measure('minimal', tree, join(work, 'minimal'), args.jobs, 'tinyconfig', [
        'minimal',
        'uffd',
      ]);
    }
    if (args.only !== 'minimal') {
      // defconfig + kvm_guest.config exactly as `make defconfig kvm_guest.config` makes it, used as the --base FILE.
      const cfgDir = join(work, 'defconfig-base');
      await run('make', ['-C', tree, `O=${cfgDir}`, `ARCH=${ARCH}`, 'defconfig', 'kvm_guest.config'], {
        timeoutMs: 10 * 60_000,
        env: { LC_ALL: 'C' },
      });
      const baseFile = join(work, 'defconfig-kvm_guest.config');
      await writeFile(baseFile, await readFile(join(cfgDir, '.config'), 'utf8'));
      out['defconfig'] = await measure('defconfig+kvm_guest+uffd', tree, join(work, 'defconfig'), args.jobs, baseFile, [
        'uffd',
      ]);
    }
    const ratio = (a: number | undefined, b: number | undefined): number | null =>
      a !== undefined && b ? Math.round((1000 * a) / b) / 1000 : null;
    const m = out['minimal'];
    const d = out['defconfig'];
    const report = {
      started,
      host: {
        cpus: availableParallelism(),
        jobs: args.jobs,
        loadavg: (await readFile('/proc/loadavg', 'utf8').catch(() => '')).trim(),
      },
      tree: src,
      figures: out,
      ratios: {
        minimalColdOverDefconfigCold: ratio(m?.coldS, d?.coldS),
        minimalIncrementalOverCold: ratio(m?.incrementalS, m?.coldS),
        defconfigIncrementalOverCold: ratio(d?.incrementalS, d?.coldS),
      },
      targets: { minimalColdOverDefconfigCold: 0.4, noopS: 2, incrementalOverCold: 0.15 },
    };
    const lines = [
      `kernel build bench (${report.host.cpus} CPUs, -j${args.jobs}, no ccache, cold = empty cache)`,
      ...Object.entries(out).map(
        ([k, f]) =>
          `  ${k.padEnd(10)} cold ${f.coldS} s (make ${f.coldKernelS} s)  no-op ${f.noopS} s  incremental ${f.incrementalS} s (make ${f.incrementalKernelS} s)`,
      ),
      `  minimal cold / defconfig cold      = ${report.ratios.minimalColdOverDefconfigCold ?? '-'} (target <= 0.40)`,
      `  minimal incremental / cold         = ${report.ratios.minimalIncrementalOverCold ?? '-'} (target <= 0.15)`,
      `  defconfig incremental / cold       = ${report.ratios.defconfigIncrementalOverCold ?? '-'} (target <= 0.15)`,
    ];
    console.log(lines.join('\n'));
    if (args.json) await writeJsonAtomic(args.json, report);
    else console.log(JSON.stringify(report));
  } finally {
    if (process.env['FAULTLINE_BENCH_KEEP'] !== '1') await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(2);
});
