import type { Argv, CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { writeRunViews } from '../report/run-outputs.js';
import { basename, resolve } from 'node:path';
import { BisectRefusedError, runBisect } from '../bisect/bisect.js';
import { JudgedTester, commandStepTester, judgeRun } from '../bisect/judge.js';
import { DEFAULT_POLICY } from '../bisect/policy.js';
import { CULPRIT_MAIL, DEFAULT_REPORT_FROM, writeCulpritMail } from '../bisect/culprit-mail.js';
import { formatBisectReport } from '../bisect/report.js';
import {
  METRIC_EXAMPLE,
  parseMetricSpec,
  parseProgramSpec,
  parseSplatSpec,
  parseSubtestSpec,
  type TestSpec,
} from '../bisect/spec.js';
import type { BisectRecord, RunPolicy, StepTester } from '../bisect/types.js';
import { kernelRevisionTester, type KernelBuildSettings, type RunSettings } from '../revision/kernel.js';
import { DEFAULT_BACKINGS } from '../run/request.js';
import { allSuites, suiteByName } from '../suites/registry.js';
import { ExitCode, UsageError } from '../util/errors.js';
import { cacheDir, exists } from '../util/fsutil.js';
import { Git } from '../vcs/git.js';
import { log, setVerbose } from '../util/log.js';
import { parseAddress, type MailAddress } from '../util/rfc5322.js';
import { readKnownIssues } from '../results/known-issues.js';
import {
  guestOptions,
  knownIssueFiles,
  parseBackings,
  parseGuestFlags,
  parseList,
  positiveInt,
  type GuestFlagValues,
  type KnownIssuesFlag,
} from './options.js';
import { checkPaths, knownIssuesFlags, worktreeCommandPaths } from './paths.js';

const FLAKY_RULE = `Flaky tests: K = --fail-threshold (default 1) failed runs make a revision bad.
  --runs N: every step runs N times; bad if failures >= K, else good.
  default (adaptive): one run at a time, at most --max-runs M (default ${DEFAULT_POLICY.runs}); stop when failures >= K (bad)
    or passes >= P (good). P = 1 when the bad endpoint failed all its runs; otherwise the smallest P
    such that a revision failing at the bad endpoint's rate q passes P times before K failures with
    probability <= 1 - --confidence (default ${DEFAULT_POLICY.targetConfidence}), capped at M-K+1.
  Endpoints and culprit verification: --endpoint-runs E runs (default ${DEFAULT_POLICY.endpointRuns}), same K rule; the good
    endpoint must come out good and the bad one bad, or the bisect refuses to start.
  A run fails when the subtest fails, errors or is flaky, the metric crosses its threshold, or the
    guest died with a kernel splat on the console; with --splat REGEX|any, when a splat (panic, oops,
    BUG, KASAN, WARNING, lockup, ...) on the console has a matching title, even one that killed the guest.
  --program FILE.c alone: a run fails when the program fails (KTAP test not ok, or exit code other
    than 0 and 4) or crashes, or the kernel dies under it; with --splat, only the splat counts.
  Build broken, kernel died at boot, test absent/skipped, --program does not compile against the
    revision's headers: git bisect skip (--splat: a matching splat at boot is bad). Infra errors: retried --infra-retries times (default ${DEFAULT_POLICY.infraRetries}), then skip.
  Confidence: P(verdict | runs) from good/bad failure rates estimated over all runs (Jeffreys prior);
    culprit confidence = P(parent good) x P(culprit bad).
Exit: 0 culprit found and verified; 1 culprit not verified or only a candidate set; 2 refused / bad input / infra.`;

export interface BisectArgs extends GuestFlagValues {
  'kernel-src': string;
  good: string;
  bad: string;
  test?: string;
  metric?: string;
  splat?: string;
  program?: string[];
  filter?: string;
  above?: string;
  below?: string;
  runs?: number;
  'max-runs': number;
  'fail-threshold': number;
  'endpoint-runs'?: number;
  confidence: number;
  'infra-retries': number;
  'verify-revert': boolean;
  'first-parent': boolean;
  'results-dir'?: string;
  worktree?: string;
  'keep-worktree': boolean;
  'report-from': string;
  'build-cmd'?: string;
  'test-cmd'?: string;
  'known-issues'?: KnownIssuesFlag;
  kconfig: string[];
  'config-base': string;
  jobs?: number;
  suite?: string;
  backing?: string[];
  quick: boolean;
  verbose: boolean;
}

/** Guest/run flags shared with `faultline series`. */
export function runOptions<T>(y: Argv<T>) {
  return guestOptions(y)
    .option('suite', { type: 'string', describe: "suite to run (default: the one that runs the spec's program)" })
    .option('program', {
      type: 'string',
      array: true,
      describe: "your own C program (repeatable): compiled against each revision's uapi headers, run once per backing",
    })
    .option('backing', {
      type: 'string',
      array: true,
      describe: `test memory backings (default: a --test/--metric spec's own backing, else faultline run's: ${DEFAULT_BACKINGS.join(',')})`,
    })
    .option('quick', { type: 'boolean', default: true, describe: 'short iteration counts (--no-quick for full runs)' })
    .option('kconfig', {
      type: 'string',
      array: true,
      default: ['base', 'uffd'],
      describe: 'config fragments for the kernel builds',
    })
    .option('config-base', {
      type: 'string',
      default: 'defconfig',
      describe: 'starting config: defconfig, tinyconfig, allnoconfig or a file',
    })
    .option('jobs', { alias: 'j', type: 'number', describe: 'make -j for kernel builds (default: CPUs)' })
    .option('build-cmd', {
      type: 'string',
      describe: 'instead of a kernel build: shell command run in the worktree (exit != 0: does not build)',
    })
    .option('test-cmd', { type: 'string', describe: 'instead of booting a guest: shell command run in the worktree' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'print every host command' });
}

export interface RunFlagValues extends GuestFlagValues {
  suite?: string;
  program?: string[];
  backing?: string[];
  quick: boolean;
  kconfig: string[];
  'config-base': string;
  jobs?: number;
}

export function kernelSettings(
  a: RunFlagValues,
  opts: {
    suites: string[];
    programs?: string[];
    backings: string[];
    filter?: string;
    resultsRoot: string;
    knownIssues: string[];
  },
): { build: KernelBuildSettings; run: RunSettings } {
  const guest = parseGuestFlags(a);
  return {
    build: {
      kconfig: parseList(a.kconfig),
      base: a['config-base'],
      progress: 'plain',
      ...(a.jobs !== undefined ? { jobs: positiveInt('--jobs', a.jobs, 1, 1024) } : {}),
    },
    run: {
      suites: opts.suites,
      ...(opts.programs?.length ? { programs: opts.programs } : {}),
      backings: parseBackings(opts.backings),
      ...guest,
      resultsRoot: opts.resultsRoot,
      quick: a.quick,
      keepVm: false,
      hugepages1g: 0,
      ...(opts.filter ? { filter: opts.filter } : {}),
      ...(opts.knownIssues.length ? { knownIssues: opts.knownIssues } : {}),
    },
  };
}

export function parseSpec(a: BisectArgs): TestSpec | undefined {
  const given = (['test', 'metric', 'splat'] as const).filter((k) => a[k] !== undefined);
  if (given.length > 1)
    throw new UsageError(`give one of --test, --metric or --splat, not ${given.map((k) => `--${k}`).join(' and ')}`);
  if (a.metric !== undefined)
    return parseMetricSpec(a.metric, {
      ...(a.above !== undefined ? { above: a.above } : {}),
      ...(a.below !== undefined ? { below: a.below } : {}),
    });
  if (a.above !== undefined || a.below !== undefined)
    throw new UsageError(`--above/--below go with --metric: e.g. --metric ${METRIC_EXAMPLE} --above 20us`);
  if (a.test !== undefined) return parseSubtestSpec(a.test);
  if (a.splat !== undefined) return parseSplatSpec(a.splat);
  if (a.program?.length) return parseProgramSpec(programFiles(a.program));
  if (a['test-cmd'] === undefined)
    throw new UsageError(
      'name what to test: --test uffd-unit-tests:minor/hugetlb, --metric ... --above 20us, --splat REGEX, --program repro.c, or --test-cmd CMD',
    );
  return undefined;
}

/** The program's name in the results: its file name without .c. */
function programName(path: string): string {
  return basename(path).replace(/\.c$/, '');
}

/** --program files, resolved and checked once (they are compiled per revision later). */
export function programFiles(given: readonly string[] | undefined): string[] {
  const files = parseList(given).map((p) => resolve(p));
  for (const f of files) {
    if (!f.endsWith('.c')) throw new UsageError(`--program ${f}: not a C source file: pass a NAME.c file`);
    if (!existsSync(f)) throw new UsageError(`--program ${f}: no such file: pass the path of an existing NAME.c`);
  }
  const names = files.map(programName);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new UsageError(`--program: two files are named ${twice}.c: rename one`);
  return files;
}

/** The suite that runs a program (uffd-unit-tests -> uffd), for the RunRequest. */
function suiteForProgram(program: string): string {
  const s = allSuites().find((x) => x.programs.includes(program));
  if (!s) {
    const known = allSuites()
      .flatMap((x) => x.programs)
      .join(', ');
    throw new UsageError(`no suite runs '${program}': the test spec must name one of ${known}`);
  }
  return s.name;
}

/**
 * The kernel tester for a spec. --test/--metric run their own test (filter: the test's name) on
 * their backing; --splat runs --suite (default uffd, quick; none with --program) on --backing
 * (default faultline run's backings: a splat can come from any memory), filtered by --filter
 * when given: whatever makes the kernel splat. --program files run after the suites, compiled
 * against each revision's headers.
 */
export function kernelTester(a: BisectArgs, spec: TestSpec, resultsDir: string): StepTester {
  if (a['build-cmd'] !== undefined)
    throw new UsageError('--build-cmd needs --test-cmd (kernel builds use the kernel build module)');
  const own = spec.kind === 'subtest' || spec.kind === 'metric' ? spec : undefined;
  if (own && a.filter !== undefined)
    throw new UsageError(
      `--filter goes with --splat: --${own.kind === 'metric' ? 'metric' : 'test'} runs only its own test (${own.testName})`,
    );
  const programs = programFiles(a.program);
  // A spec naming one of the --program files needs no suite; --program alone runs just the programs.
  const ownSuite = own && !programs.some((p) => programName(p) === own.program) ? own : undefined;
  const suites = a.suite
    ? [suiteByName(a.suite).name]
    : ownSuite
      ? [suiteByName(suiteForProgram(ownSuite.program)).name]
      : programs.length
        ? []
        : ['uffd'];
  const backings = a.backing?.length ? parseList(a.backing) : own?.backing ? [own.backing] : [...DEFAULT_BACKINGS];
  const filter = own ? own.testName : a.filter;
  const k = kernelSettings(a, {
    suites,
    programs,
    backings,
    resultsRoot: resolve(resultsDir, 'runs'),
    ...(filter ? { filter } : {}),
    // Bisect applies only the lists it is given: the failure bisected may well be a known one.
    knownIssues: knownIssueFiles(a['known-issues'], undefined),
  });
  const revision = kernelRevisionTester(k.build, k.run, { views: writeRunViews });
  return new JudgedTester(revision, (record) => judgeRun(spec, record));
}

function policyFromArgs(
  a: Pick<BisectArgs, 'runs' | 'max-runs' | 'fail-threshold' | 'endpoint-runs' | 'confidence' | 'infra-retries'>,
): RunPolicy {
  const fixed = a.runs !== undefined;
  const runs = fixed ? positiveInt('--runs', a.runs, 1, 1000) : positiveInt('--max-runs', a['max-runs'], 1, 1000);
  const failThreshold = positiveInt('--fail-threshold', a['fail-threshold'], 1, 1000);
  if (failThreshold > runs)
    throw new UsageError(
      `--fail-threshold ${failThreshold} exceeds ${fixed ? '--runs' : '--max-runs'} ${runs}: a step could never be bad`,
    );
  if (!(a.confidence > 0 && a.confidence < 1))
    throw new UsageError(`--confidence must be between 0 and 1 (e.g. 0.95), got ${a.confidence}`);
  const endpointRuns = positiveInt(
    '--endpoint-runs',
    a['endpoint-runs'] ?? (fixed ? runs : DEFAULT_POLICY.endpointRuns),
    1,
    1000,
  );
  if (failThreshold > endpointRuns)
    throw new UsageError(
      `--fail-threshold ${failThreshold} exceeds --endpoint-runs ${endpointRuns}: the bad endpoint could never be confirmed`,
    );
  return {
    mode: fixed ? 'fixed' : 'adaptive',
    runs,
    failThreshold,
    endpointRuns,
    targetConfidence: a.confidence,
    infraRetries: positiveInt('--infra-retries', a['infra-retries'], 0, 100),
  };
}

const sh = (cmd: string): string[] => ['sh', '-c', cmd];

function reportFromOf(text: string): MailAddress {
  const from = parseAddress(text);
  if (!from)
    throw new UsageError(
      `--report-from '${text}' is not a mail address: pass "Name <user@example.org>" or user@example.org`,
    );
  return from;
}

/**
 * Writes culprit.eml while the worktree still holds the culprit's tree and obj dirs. The mail is
 * a convenience: a failure to write it is reported, never a failed bisect.
 */
function culpritMailHook(from: MailAddress, resultsDir: string) {
  return async (record: BisectRecord, worktree: string): Promise<void> => {
    if (!record.culprit) return;
    try {
      const input = { record: { ...record, culprit: record.culprit }, git: new Git(worktree), tree: worktree };
      await writeCulpritMail({ ...input, reportFrom: from }, resultsDir);
    } catch (e) {
      log.warn(`culprit mail not written: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
}

/** What is bisected: the repository, the two ends and what makes a revision bad. */
function whatToBisectOptions<T>(y: Argv<T>) {
  return y
    .option('kernel-src', {
      type: 'string',
      demandOption: true,
      describe: 'the kernel git checkout (left untouched: bisect runs in a linked worktree)',
    })
    .option('good', { type: 'string', demandOption: true, describe: 'a revision where the test passes' })
    .option('bad', { type: 'string', demandOption: true, describe: 'a revision where it fails' })
    .option('test', {
      type: 'string',
      describe: 'subtest that must pass: program:test[/backing], e.g. uffd-unit-tests:minor/hugetlb',
    })
    .option('metric', {
      type: 'string',
      describe: `metric: program:test-id/metric, e.g. ${METRIC_EXAMPLE} (the backing is taken from the id)`,
    })
    .option('splat', {
      type: 'string',
      describe: "bad when the console shows a kernel splat whose title matches this regex, or any splat with 'any'",
    })
    .option('filter', {
      type: 'string',
      describe: 'with --splat: only tests whose name contains this (e.g. zeropage)',
    })
    .option('above', { type: 'string', describe: 'with --metric: bad when the value is above this (e.g. 20us)' })
    .option('below', { type: 'string', describe: 'with --metric: bad when the value is below this' });
}

/** How each step is judged: runs per step, thresholds, retries and the checks after the culprit. */
function stepPolicyOptions<T>(y: Argv<T>) {
  return y
    .option('runs', { type: 'number', describe: 'fixed runs per step (default: adaptive)' })
    .option('max-runs', { type: 'number', default: DEFAULT_POLICY.runs, describe: 'adaptive: most runs per step' })
    .option('fail-threshold', {
      type: 'number',
      default: DEFAULT_POLICY.failThreshold,
      describe: 'failed runs that make a step bad',
    })
    .option('endpoint-runs', {
      type: 'number',
      describe: `runs per endpoint and per verification (default ${DEFAULT_POLICY.endpointRuns}; with --runs N: N)`,
    })
    .option('confidence', {
      type: 'number',
      default: DEFAULT_POLICY.targetConfidence,
      describe: 'adaptive: wanted probability of not calling a bad revision good',
    })
    .option('infra-retries', {
      type: 'number',
      default: DEFAULT_POLICY.infraRetries,
      describe: 'retries after an infrastructure error before skipping',
    })
    .option('verify-revert', {
      type: 'boolean',
      default: false,
      describe: 'also check that reverting the culprit on --bad passes',
    })
    .option('first-parent', {
      type: 'boolean',
      default: false,
      describe: 'follow only first parents (bisect merges, not the commits they bring)',
    });
}

export const bisectCommand: CommandModule<object, BisectArgs> = {
  command: 'bisect',
  describe:
    'find the commit that broke a test (or slowed a metric) with git bisect in a worktree: builds, boots, runs, handles flaky tests',
  builder: (y) =>
    runOptions(
      stepPolicyOptions(whatToBisectOptions(y))
        .option('results-dir', {
          type: 'string',
          describe: 'results and resume state (default results/bisect-<good>-<bad>); rerun to resume',
        })
        .option('worktree', {
          type: 'string',
          describe: 'where the bisect worktree goes (default <results-dir>/worktree)',
        })
        .option('keep-worktree', {
          type: 'boolean',
          default: false,
          describe: 'leave the worktree in place afterwards',
        })
        .option('known-issues', {
          type: 'string',
          array: true,
          describe:
            'a known-issues YAML file (repeatable): a run whose failure it explains did not test the bisected failure, and runs again; a revision where every run hits one is skipped (default: none)',
        })
        .option('report-from', {
          type: 'string',
          default: DEFAULT_REPORT_FROM,
          describe: 'From: and Reported-by: of the culprit mail (culprit.eml), "Name <addr>"',
        }),
    ).epilog(FLAKY_RULE),
  handler: async (a) => {
    setVerbose(a.verbose);
    const resultsDir = resolve(a['results-dir'] ?? `results/bisect-${a.good}-${a.bad}`.replace(/[^\w./-]+/g, '_'));
    // Flags first (they need no file), then every path, then the work.
    const spec = parseSpec(a);
    const policy = policyFromArgs(a);
    const reportFrom = reportFromOf(a['report-from']);
    const src = resolve(a['kernel-src']);
    let tester: StepTester;
    if (a['test-cmd'] !== undefined) {
      if (spec?.kind === 'splat' || spec?.kind === 'program' || a.filter !== undefined || a.program?.length)
        throw new UsageError('--splat, --filter and --program are about guest runs: they do not go with --test-cmd');
      tester = commandStepTester({
        ...(a['build-cmd'] !== undefined ? { build: sh(a['build-cmd']) } : {}),
        test: sh(a['test-cmd']),
        outRoot: await cacheDir('bisect-cmd', Buffer.from(src).toString('hex').slice(-32)),
      }).tester;
    } else {
      if (!spec) throw new UsageError('--test, --metric or --splat is required without --test-cmd');
      tester = kernelTester(a, spec, resultsDir);
    }
    await checkPaths(
      worktreeCommandPaths('bisect', {
        kernelSrc: a['kernel-src'],
        resultsDir,
        worktree: a.worktree,
        program: a.program,
      }).concat(knownIssuesFlags(a['known-issues'])),
    );
    // A bad list is one line naming FILE:LINE:COL (exit 2) before anything is built.
    await readKnownIssues(knownIssueFiles(a['known-issues'], undefined));
    const specText = spec?.text ?? `test-cmd: ${a['test-cmd'] ?? ''}`;
    try {
      const r = await runBisect(
        {
          repo: src,
          good: a.good,
          bad: a.bad,
          spec: specText,
          resultsDir,
          policy,
          verifyRevert: a['verify-revert'],
          firstParent: a['first-parent'],
          keepWorktree: a['keep-worktree'],
          ...(a.worktree ? { worktree: resolve(a.worktree) } : {}),
          command: { cwd: process.cwd(), argv: ['faultline', ...process.argv.slice(2)] },
          onVerifiedCulprit: culpritMailHook(reportFrom, resultsDir),
        },
        tester,
      );
      process.stdout.write(formatBisectReport(r));
      process.stdout.write(`\nresults: ${resultsDir}/results.json\n`);
      if (await exists(`${resultsDir}/${CULPRIT_MAIL}`))
        process.stdout.write(`culprit mail: ${resultsDir}/${CULPRIT_MAIL}\n`);
      process.exitCode = r.outcome === 'found' && r.verification?.verified ? ExitCode.ok : ExitCode.testFailure;
    } catch (e) {
      if (e instanceof BisectRefusedError) process.stdout.write(`results: ${resultsDir}/results.json\n`);
      throw e;
    }
  },
};
