import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { UsageError } from '../util/errors.js';
import { buildKernel, type KernelBuild } from '../kernel/build.js';
import { checkPaths, kernelSrcFlag } from './paths.js';
import { buildSelftests } from '../selftests/build.js';
import { buildProgress } from './build-progress.js';

interface BuildArgs {
  'kernel-src': string;
  ref: string | undefined;
  kconfig: string[] | undefined;
  base: string;
  jobs: number | undefined;
  ccache: boolean;
  selftests: boolean;
  force: boolean;
  json: boolean;
  progress: string;
  'unsandboxed-build': boolean;
}

const PROGRESS = ['auto', 'plain', 'tty', 'off'] as const;

function summary(b: KernelBuild): string {
  const d = b.durationsMs;
  const secs = (k: string): string => (d[k] !== undefined ? `${((d[k] ?? 0) / 1000).toFixed(1)} s` : '-');
  return [
    `kernel   ${b.release}${b.commit ? ` (${b.commit.slice(0, 12)})` : ''}`,
    `cache    ${b.cacheHit ? 'hit' : 'built'} ${b.key}`,
    `bzImage  ${b.bzImage}`,
    `config   ${b.config} (sha256 ${b.configHash.slice(0, 16)})`,
    `selftest ${b.selftestsDir}`,
    `log      ${b.buildLog}`,
    `time     total ${secs('total')}, configure ${secs('configure')}, kernel ${secs('kernel')}, selftests ${secs('selftests')}`,
    `sandbox  ${b.sandboxed === undefined ? 'unknown (built before sandboxed builds)' : b.sandboxed ? 'yes' : 'no (--unsandboxed-build)'}`,
    ...(b.ccache ? [`ccache   ${b.ccache.hits} hits, ${b.ccache.misses} misses (${b.ccache.dir})`] : []),
  ].join('\n');
}

export const buildCommand: CommandModule<object, BuildArgs> = {
  command: 'build',
  describe: 'Build a kernel from source (out of tree, checked config fragments, cached) and its uffd selftests',
  builder: (y: Argv<object>): Argv<BuildArgs> =>
    y
      .option('kernel-src', {
        type: 'string',
        demandOption: true,
        describe: 'Linux source tree (git checkout or plain tree); never written to',
      })
      .option('ref', {
        type: 'string',
        describe: 'build this commit/tag/branch of --kernel-src in a cached git worktree',
      })
      .option('kconfig', {
        type: 'string',
        array: true,
        describe:
          'config fragments, in order, later wins: names in kconfigs/ (base,uffd,debug,minimal) or paths; default base,uffd',
      })
      .option('base', {
        type: 'string',
        default: 'defconfig',
        describe: 'starting config: defconfig, tinyconfig, allnoconfig or a config FILE',
      })
      .option('jobs', { alias: 'j', type: 'number', describe: 'make -j (default: number of CPUs)' })
      .option('ccache', {
        type: 'boolean',
        default: true,
        describe: 'use ccache when installed (--no-ccache to disable)',
      })
      .option('selftests', {
        type: 'boolean',
        default: true,
        describe: 'build the uffd selftests from the same tree (--no-selftests to skip)',
      })
      .option('force', { type: 'boolean', default: false, describe: 'ignore cached artifacts and build again' })
      .option('unsandboxed-build', {
        type: 'boolean',
        default: false,
        describe:
          "run the tree's make on the host, with your home, keys and network in its reach: only for a tree you trust",
      })
      .option('json', { type: 'boolean', default: false, describe: 'print the build as JSON on stdout' })
      .option('progress', {
        type: 'string',
        choices: PROGRESS,
        default: 'auto',
        describe: 'progress display: auto (TTY line or plain lines), plain, tty, off',
      })
      .example('$0 build --kernel-src ~/linux --kconfig base,uffd', 'defconfig + base + uffd from a working tree')
      .example(
        '$0 build --kernel-src ~/linux --ref v6.12 --base tinyconfig --kconfig minimal,uffd',
        'a fast minimal kernel of a tag',
      ),
  handler: async (argv: ArgumentsCamelCase<BuildArgs>): Promise<void> => {
    if (argv.jobs !== undefined && (!Number.isInteger(argv.jobs) || argv.jobs < 1))
      throw new UsageError(`--jobs ${String(argv.jobs)} is not a positive integer`);
    await checkPaths([kernelSrcFlag(argv['kernel-src'], { addsWorktree: argv.ref !== undefined })]);
    const progress = buildProgress(PROGRESS.find((p) => p === argv.progress) ?? 'auto');
    const b = await buildKernel({
      kernelSrc: argv['kernel-src'],
      ...(argv.ref !== undefined ? { ref: argv.ref } : {}),
      ...(argv.kconfig !== undefined ? { kconfig: argv.kconfig } : {}),
      base: argv.base,
      ...(argv.jobs !== undefined ? { jobs: argv.jobs } : {}),
      ccache: argv.ccache,
      ...(argv.selftests ? { selftests: buildSelftests } : {}),
      force: argv.force,
      progress,
      ...(argv['unsandboxed-build'] ? { sandbox: false } : {}),
    });
    process.stdout.write(argv.json ? JSON.stringify(b, null, 2) + '\n' : summary(b) + '\n');
  },
};
