import type { Argv, CommandModule } from 'yargs';
import { relative, resolve } from 'node:path';
import { appendHistory, runEntry } from '../history/index.js';
import { summaryTable } from '../report/run-outputs.js';
import { latencyTable } from '../report/run-latency.js';
import { UsageError } from '../util/errors.js';
import { setVerbose } from '../util/log.js';
import { suiteByName } from '../suites/registry.js';
import { DEFAULT_BACKINGS, type KernelSpec, type RunRequest } from '../run/request.js';
import { runTests } from '../run/run.js';
import { writeRunViews } from '../report/run-outputs.js';
import { buildProgress } from './build-progress.js';
import { listOffer } from '../run/list.js';
import { MM_CATEGORIES } from '../selftests/mm-programs.js';
import { minMemFor1gPages } from '../vm/qemu-args.js';
import {
  guestOptions,
  parseBackings,
  parseGuestFlags,
  parseList,
  positiveInt,
  type GuestFlagValues,
} from './options.js';
import { checkPaths, kernelSrcFlag, knownIssuesFlags, programFlags, type PathFlag } from './paths.js';
import { SHIPPED_KNOWN_ISSUES } from '../results/known-issues.js';

interface RunArgs extends GuestFlagValues {
  kernel?: string;
  modules?: string;
  'debian-kernel': string;
  'kernel-src'?: string;
  kconfig: string[];
  ref?: string;
  'config-base'?: string;
  suite?: string[];
  program?: string[];
  backing: string[];
  results: string;
  'run-id'?: string;
  'keep-vm': boolean;
  quick: boolean;
  filter?: string;
  category: string[];
  list: boolean;
  'hugepages-1g': number;
  'apt-option': string[];
  refresh: boolean;
  offline: boolean;
  verbose: boolean;
  retries: number;
  'flaky-is-failure': boolean;
  /** Files, and `false` for --no-known-issues (yargs' negation of the option). */
  'known-issues'?: (string | boolean)[];
  'known-is-failure': boolean;
  numa: number;
}

/** --refresh asks apt, --offline never does: they cannot both hold. */
function resolvePolicy(a: RunArgs): Pick<RunRequest, 'refresh' | 'offline'> {
  if (a.refresh && a.offline) throw new UsageError('--refresh asks apt and --offline never does: drop one of them');
  return { ...(a.refresh ? { refresh: true } : {}), ...(a.offline ? { offline: true } : {}) };
}

/** The shipped list unless --no-known-issues, then each --known-issues FILE. */
function knownIssueFiles(given: RunArgs['known-issues']): string[] {
  const files = (given ?? []).filter((f): f is string => typeof f === 'string');
  return [...(given?.includes(false) ? [] : [SHIPPED_KNOWN_ISSUES]), ...files.map((f) => resolve(f))];
}

function runRequestFromArgs(a: RunArgs): RunRequest {
  const programs = parseList(a.program).map((p) => resolve(p));
  // With --program and no --suite, run just the programs.
  const suites = a.suite === undefined ? (programs.length ? [] : ['uffd']) : parseList(a.suite);
  if (suites.length === 0 && programs.length === 0)
    throw new UsageError('--suite is empty: name at least one suite (e.g. --suite uffd)');
  suites.forEach(suiteByName);
  const categories = parseList(a.category);
  if (categories.length && !suites.some((s) => s === 'mm' || s === 'vmtests'))
    throw new UsageError('--category picks categories of suite mm: add --suite mm');
  const unknown = categories.find((c) => !MM_CATEGORIES.includes(c));
  if (unknown !== undefined)
    throw new UsageError(`unknown category '${unknown}' for suite mm: choose from ${MM_CATEGORIES.join(', ')}`);
  const kconfig = parseList(a.kconfig);
  const buildFromSource = kconfig.length > 0 || a.ref !== undefined;
  if (buildFromSource && !a['kernel-src'])
    throw new UsageError('--kconfig/--ref build a kernel from a tree: add --kernel-src DIR');
  if (buildFromSource && a.kernel)
    throw new UsageError('--kernel boots a given bzImage; --kconfig/--ref build one: use one or the other');
  const kernel: KernelSpec = a.kernel
    ? { kind: 'path', bzImage: resolve(a.kernel), ...(a.modules ? { modulesDir: resolve(a.modules) } : {}) }
    : buildFromSource
      ? {
          kind: 'build',
          kernelSrc: resolve(a['kernel-src'] ?? ''),
          kconfig: kconfig.length ? kconfig : ['base', 'uffd'],
          ...(a.ref !== undefined ? { ref: a.ref } : {}),
          ...(a['config-base'] !== undefined ? { base: a['config-base'] } : {}),
        }
      : { kind: 'debian', series: a['debian-kernel'] };
  if (a.modules && !a.kernel)
    throw new UsageError('--modules needs --kernel: it names the modules directory of that kernel');
  const guest = parseGuestFlags(a);
  const { memMiB, hugepages2m } = guest;
  const hugepages1g = positiveInt('--hugepages-1g', a['hugepages-1g'], 0, 64);
  const needed = minMemFor1gPages(hugepages1g, hugepages2m);
  if (memMiB < needed) {
    throw new UsageError(
      `--hugepages-1g ${hugepages1g} needs --mem ${needed} or more (the guest reserves 1 GiB pages from whole GiBs above 4 GiB), got --mem ${memMiB}`,
    );
  }
  return {
    kernel,
    ...(a['kernel-src'] && !buildFromSource ? { selftestsTree: resolve(a['kernel-src']) } : {}),
    suites,
    ...(programs.length ? { programs } : {}),
    backings: parseBackings(a.backing),
    ...guest,
    resultsRoot: resolve(a.results),
    ...(a['run-id'] ? { runId: a['run-id'] } : {}),
    quick: a.quick,
    ...(a.filter ? { filter: a.filter } : {}),
    ...(categories.length ? { categories } : {}),
    keepVm: a['keep-vm'],
    hugepages1g,
    retries: positiveInt('--retries', a.retries, 0, 10),
    numaNodes: positiveInt('--numa', a.numa, 1, 8),
    flakyIsFailure: a['flaky-is-failure'],
    knownIssues: knownIssueFiles(a['known-issues']),
    knownIsFailure: a['known-is-failure'],
    aptOptions: parseList(a['apt-option']),
    ...resolvePolicy(a),
  };
}

/** The paths `run` reads and writes (--list writes nothing). */
function runPaths(a: RunArgs): PathFlag[] {
  return [
    { flag: '--kernel', path: a.kernel, role: 'read-file', wants: 'the bzImage to boot (arch/x86/boot/bzImage)' },
    { flag: '--modules', path: a.modules, role: 'read-dir', wants: 'the lib/modules/<release> directory of --kernel' },
    kernelSrcFlag(a['kernel-src'], { addsWorktree: a.ref !== undefined }),
    ...programFlags(a.program),
    ...knownIssuesFlags(a['known-issues']),
    ...(a.list
      ? []
      : [
          {
            flag: '--results',
            path: a.results,
            role: 'write-dir' as const,
            wants: 'a writable directory to hold the run directories (made when missing)',
          },
        ]),
  ];
}

/** Which kernel: packaged, a bzImage, or built from a tree. */
function kernelOptions<T>(y: Argv<T>) {
  return y
    .option('kernel', {
      type: 'string',
      describe: "bzImage to boot (default: Debian's packaged kernel, downloaded with apt-get)",
    })
    .option('modules', {
      type: 'string',
      describe: 'lib/modules/<release> of --kernel, when its virtio_net is a module',
    })
    .option('debian-kernel', {
      type: 'string',
      default: '6.12',
      describe: 'Debian kernel series to download when no --kernel is given',
    })
    .option('kernel-src', {
      type: 'string',
      describe: 'kernel tree: the selftests come from it; with --kconfig/--ref the kernel is built from it too',
    })
    .option('kconfig', {
      type: 'string',
      array: true,
      default: [],
      describe:
        'build the kernel from --kernel-src with these fragments (kconfigs/NAME.config or paths), e.g. base,uffd',
    })
    .option('ref', { type: 'string', describe: 'with --kernel-src: build this revision (in a cached git worktree)' })
    .option('config-base', {
      type: 'string',
      describe: 'with --kconfig: starting config (defconfig, tinyconfig, allnoconfig or a file)',
    });
}

/** What to run: suites, categories, programs, backings, and listing instead of running. */
function selectionOptions<T>(y: Argv<T>) {
  return y
    .option('suite', {
      type: 'string',
      array: true,
      describe: 'suites to run (comma-separated or repeated; default uffd, or none with --program)',
    })
    .option('program', {
      type: 'string',
      array: true,
      describe: "your own C program (repeatable): built against the tree's uapi headers, run once per backing",
    })
    .option('backing', {
      type: 'string',
      array: true,
      default: [...DEFAULT_BACKINGS],
      describe: 'test memory: anon, shmem, shmem-private, shmem-thp, hugetlb, hugetlb-private, hugetlb-1g',
    })
    .option('quick', {
      type: 'boolean',
      default: false,
      describe: 'short iteration counts and a quick subset of uffd-unit-tests',
    })
    .option('filter', { type: 'string', describe: 'only tests whose name contains this (uffd-unit-tests -f)' })
    .option('category', {
      type: 'string',
      array: true,
      default: [],
      describe: `suite mm: only these run_vmtests.sh categories (${MM_CATEGORIES.join(', ')})`,
    })
    .option('list', {
      type: 'boolean',
      default: false,
      describe: 'print the suites, and the programs, categories and subtests the tested tree offers; run nothing',
    });
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'boot a guest, push the selftests over SSH, run them on hugetlb/shmem/anon, write results/<run-id>/',
  builder: (y) =>
    selectionOptions(kernelOptions(guestOptions(y)))
      .option('results', { type: 'string', default: 'results', describe: 'parent directory of run directories' })
      .option('run-id', { type: 'string', describe: 'name of the run directory (default: timestamp + random)' })
      .option('keep-vm', {
        type: 'boolean',
        default: false,
        describe: 'leave the guest running after the tests and print the ssh command',
      })
      .option('hugepages-1g', {
        type: 'number',
        default: 0,
        describe: '1 GiB hugepages reserved on the kernel command line',
      })
      .option('apt-option', {
        type: 'string',
        array: true,
        default: [],
        describe: 'extra apt option KEY=VALUE for apt-get download (e.g. a different sources list)',
      })
      .option('refresh', {
        type: 'boolean',
        default: false,
        describe: "ask apt for the Debian kernel's version even when the cached answer (24 h) is fresh",
      })
      .option('offline', {
        type: 'boolean',
        default: false,
        describe: 'never touch the network: cached kernels only; exit 4 naming what is missing',
      })
      .option('numa', {
        type: 'number',
        default: 1,
        describe: 'guest NUMA nodes (QEMU -numa; memory split evenly, vCPUs dealt out)',
      })
      .option('retries', {
        type: 'number',
        default: 2,
        describe: 'rerun each failing subtest on its own up to N times; a pass on a retry is flaky (0: off)',
      })
      .option('flaky-is-failure', {
        type: 'boolean',
        default: false,
        describe: 'exit 1 when a subtest is flaky (default: flaky alone exits 0)',
      })
      .option('known-issues', {
        type: 'string',
        array: true,
        describe:
          'a known-issues YAML file (repeatable) besides the shipped known-issues/debian.yaml (--no-known-issues: not the shipped one)',
      })
      .option('known-is-failure', {
        type: 'boolean',
        default: false,
        describe: 'exit 1 when a known issue is present (default: known failures alone exit 0)',
      })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'print every host command' }),
  handler: async (argv) => {
    if (argv.verbose) setVerbose(true);
    const req = runRequestFromArgs(argv);
    await checkPaths(runPaths(argv));
    if (argv.list) {
      process.stdout.write(await listOffer(req));
      return;
    }
    const { record, dir, exitCode } = await runTests(req, { views: writeRunViews, buildProgress: buildProgress() });
    // Single runs join the history index too, so `faultline history --test T` sees them.
    await appendHistory(req.resultsRoot, [runEntry(record, relative(req.resultsRoot, dir))]);
    process.stdout.write(summaryTable(record));
    const lat = latencyTable(record);
    if (lat) process.stdout.write(`\n${lat}`);
    process.stdout.write(`results: ${dir}\n`);
    process.exit(exitCode);
  },
};
