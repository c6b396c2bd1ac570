import type { CommandModule } from 'yargs';
import { join, resolve } from 'node:path';
import { writeRunViews } from '../report/run-outputs.js';
import { seriesJunit } from '../report/series-junit.js';
import { writeFileAtomic } from '../util/fsutil.js';
import type { BootableKernel } from '../kernel/bootable.js';
import { CommandBuilder, CommandRunner } from '../revision/command.js';
import { kernelRevisionTester } from '../revision/kernel.js';
import { RevisionTester } from '../revision/tester.js';
import { DEFAULT_BACKINGS } from '../run/request.js';
import { formatSeriesReport } from '../series/report.js';
import { runSeries, type SeriesOptions } from '../series/series.js';
import type { SeriesRecord } from '../series/types.js';
import { suiteByName } from '../suites/registry.js';
import { ExitCode, UsageError } from '../util/errors.js';
import { setVerbose } from '../util/log.js';
import { kernelSettings, programFiles, runOptions, type RunFlagValues } from './bisect.js';
import { SHIPPED_KNOWN_ISSUES, readKnownIssues } from '../results/known-issues.js';
import { knownIssueFiles, parseList, positiveInt, type KnownIssuesFlag } from './options.js';
import { checkPaths, knownIssuesFlags, worktreeCommandPaths } from './paths.js';

export interface SeriesArgs extends RunFlagValues {
  'kernel-src': string;
  base?: string;
  mbox?: string;
  range?: string;
  each: boolean;
  repeat: number;
  threshold: string;
  alpha: number;
  'stat-test': string;
  'allow-warnings': boolean;
  'base-cache': boolean;
  tests: boolean;
  filter?: string;
  'results-dir'?: string;
  worktree?: string;
  'keep-worktree': boolean;
  'build-cmd'?: string;
  'test-cmd'?: string;
  'known-issues'?: KnownIssuesFlag;
  verbose: boolean;
}

/** "5%" or "0.05" -> 0.05. */
export function parseThreshold(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(text);
  const v = m?.[1] ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!Number.isFinite(v) || v <= 0 || v >= 10)
    throw new UsageError(`--threshold '${text}' is not a relative change: write e.g. 5% or 0.05`);
  return v;
}

const sh = (cmd: string): string[] => ['sh', '-c', cmd];

/**
 * Kernel builds and guest runs: --suite (default uffd; none with --program alone, as `faultline
 * run` does) on --backing (default faultline run's backings), narrowed by --filter.
 */
export function kernelTester(a: SeriesArgs, resultsDir: string): RevisionTester<BootableKernel> {
  const programs = programFiles(a.program);
  const suites = a.suite !== undefined ? parseList(a.suite) : programs.length ? [] : ['uffd'];
  suites.forEach(suiteByName);
  const backings = a.backing?.length ? parseList(a.backing) : [...DEFAULT_BACKINGS];
  const k = kernelSettings(a, {
    suites,
    programs,
    backings,
    resultsRoot: resolve(resultsDir, 'runs'),
    ...(a.filter ? { filter: a.filter } : {}),
    // As `faultline run`: a failure a known issue explains is no regression of the series.
    knownIssues: knownIssueFiles(a['known-issues'], SHIPPED_KNOWN_ISSUES),
  });
  return kernelRevisionTester(k.build, k.run, { warningBaseline: true, views: writeRunViews });
}

export const seriesCommand: CommandModule<object, SeriesArgs> = {
  command: 'series',
  describe:
    'validate a patch series (mbox or range): apply in a worktree, build every patch, test tip vs base, write a reviewer reply',
  builder: (y) =>
    runOptions(
      y
        .option('kernel-src', {
          type: 'string',
          demandOption: true,
          describe: 'the kernel git checkout (left untouched: patches go to a linked worktree)',
        })
        .option('base', {
          type: 'string',
          describe: 'commit the series applies to (required with --mbox; --range default: its start)',
        })
        .option('mbox', {
          type: 'string',
          describe: 'the series as an mbox (b4 am / lore download); applied in git am order, cover letter skipped',
        })
        .option('range', { type: 'string', describe: 'the series as commits A..B of --kernel-src' })
        .option('each', { type: 'boolean', default: false, describe: 'test every patch, not only the tip' })
        .option('known-issues', {
          type: 'string',
          array: true,
          describe:
            'a known-issues YAML file (repeatable) besides the shipped known-issues/debian.yaml (--no-known-issues: not the shipped one); a failure one explains is no regression',
        })
        .option('repeat', {
          type: 'number',
          default: 1,
          describe: 'runs per tested revision (metric statistics want >= 5)',
        })
        .option('threshold', {
          type: 'string',
          default: '5%',
          describe: 'flag a metric only when significantly worse by more than this',
        })
        .option('alpha', { type: 'number', default: 0.05, describe: 'significance level of the metric test' })
        .option('stat-test', {
          type: 'string',
          default: 'mann-whitney',
          choices: ['mann-whitney', 'welch'],
          describe: 'statistical test for metrics',
        })
        .option('allow-warnings', {
          type: 'boolean',
          default: false,
          describe: 'report new compiler warnings without failing the series',
        })
        .option('base-cache', {
          type: 'boolean',
          default: true,
          describe: 'reuse cached base results (--no-base-cache to rerun them)',
        })
        .option('tests', { type: 'boolean', default: true, describe: 'run tests (--no-tests: apply and build only)' })
        .option('filter', { type: 'string', describe: 'only tests whose name contains this' })
        .option('results-dir', {
          type: 'string',
          describe: 'where results.json, report.txt and junit.xml go (default results/series-<time>)',
        })
        .option('worktree', {
          type: 'string',
          describe: 'where the series worktree goes (default <results-dir>/worktree)',
        })
        .option('keep-worktree', {
          type: 'boolean',
          default: false,
          describe: 'leave the worktree in place afterwards',
        }),
    ).epilog(
      'Exit: 0 no regressions; 1 the series regresses (does not apply, breaks the build, new warnings, new failures or splats, significant metric regressions); 2 bad input / infra.',
    ),
  handler: async (a) => {
    setVerbose(a.verbose);
    if ((a.mbox === undefined) === (a.range === undefined))
      throw new UsageError('give the series as exactly one of --mbox FILE or --range A..B');
    if (a.mbox !== undefined && a.base === undefined)
      throw new UsageError('--mbox needs --base REV: the commit the series applies to');
    const repeat = positiveInt('--repeat', a.repeat, 1, 1000);
    const threshold = parseThreshold(a.threshold);
    if (!(a.alpha > 0 && a.alpha < 1)) throw new UsageError(`--alpha must be between 0 and 1, got ${a.alpha}`);
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const resultsDir = resolve(a['results-dir'] ?? `results/series-${stamp}`);
    await checkPaths(
      worktreeCommandPaths('series', {
        kernelSrc: a['kernel-src'],
        resultsDir,
        worktree: a.worktree,
        program: a.program,
        mbox: a.mbox,
      }).concat(knownIssuesFlags(a['known-issues'])),
    );
    // A bad list is one line naming FILE:LINE:COL (exit 2) before anything is built.
    await readKnownIssues(knownIssueFiles(a['known-issues'], SHIPPED_KNOWN_ISSUES));
    const opts: SeriesOptions = {
      repo: resolve(a['kernel-src']),
      resultsDir,
      repeat,
      threshold,
      alpha: a.alpha,
      statTest: a['stat-test'] === 'welch' ? 'welch' : 'mann-whitney',
      each: a.each,
      allowWarnings: a['allow-warnings'],
      baseCache: a['base-cache'],
      noTests: !a.tests,
      keepWorktree: a['keep-worktree'],
      ...(a.base !== undefined ? { base: a.base } : {}),
      ...(a.mbox !== undefined ? { mbox: resolve(a.mbox) } : {}),
      ...(a.range !== undefined ? { range: a.range } : {}),
      ...(a.worktree !== undefined ? { worktree: resolve(a.worktree) } : {}),
    };
    let r: SeriesRecord;
    if (a['build-cmd'] !== undefined || a['test-cmd'] !== undefined) {
      if (a.program?.length)
        throw new UsageError('--program runs in a guest: it does not go with --build-cmd/--test-cmd');
      if (a['build-cmd'] === undefined || (a.tests && a['test-cmd'] === undefined)) {
        throw new UsageError(
          '--build-cmd and --test-cmd go together (the test command prints KTAP); or use --no-tests',
        );
      }
      r = await runSeries(
        opts,
        new RevisionTester(
          new CommandBuilder({ cmd: sh(a['build-cmd']) }),
          new CommandRunner({ test: sh(a['test-cmd'] ?? 'true'), program: 'cmd' }),
        ),
      );
    } else {
      r = await runSeries(opts, kernelTester(a, resultsDir));
    }
    await writeFileAtomic(join(resultsDir, 'junit.xml'), seriesJunit(r));
    process.stdout.write(formatSeriesReport(r));
    process.stdout.write(`\nresults: ${resultsDir}/results.json, report.txt, junit.xml\n`);
    process.exitCode = r.verdict === 'regressed' ? ExitCode.testFailure : ExitCode.ok;
  },
};
