import type { CommandModule } from 'yargs';
import { UsageError } from '../util/errors.js';
import { log, setVerbose } from '../util/log.js';
import { expandJobs, parseShard, selectShard } from '../nightly/jobs.js';
import { readPlan } from '../nightly/plan.js';
import { runNightly } from '../nightly/nightly.js';
import { pastDurations, readHistory } from '../history/index.js';
import { SHIPPED_KNOWN_ISSUES, readKnownIssues } from '../results/known-issues.js';
import { knownIssueFiles, parseList, positiveInt, type KnownIssuesFlag } from './options.js';
import { checkPaths, knownIssuesFlags, type PathFlag } from './paths.js';
import { NIGHTLY_VIEWS } from '../report/views.js';

interface NightlyArgs {
  plan: string;
  jobs?: number;
  shard?: string;
  resume: boolean;
  out?: string;
  results: string;
  'durations-from'?: string;
  accel: string;
  baseline?: string;
  compare: boolean;
  ahead: boolean;
  'dry-run': boolean;
  'apt-option': string[];
  'known-issues'?: KnownIssuesFlag;
  verbose: boolean;
}

/** The plan, the nightly directory, the results root and the nights it reads (--dry-run only reads). */
function nightlyPaths(a: NightlyArgs): PathFlag[] {
  const dry = a['dry-run'];
  return [
    { flag: '--plan', path: a.plan, role: 'read-file', wants: 'a plan file (YAML or JSON)' },
    {
      flag: '--results',
      path: a.results,
      role: dry ? 'read-dir-or-none' : 'write-dir',
      wants: dry ? 'the results root holding the history index' : 'a writable results root (made when missing)',
    },
    {
      flag: '--durations-from',
      path: a['durations-from'],
      role: 'read-dir',
      wants: 'the results root whose history balances the shards',
    },
    ...(dry
      ? []
      : ([
          { flag: '--out', path: a.out, role: 'write-dir', wants: 'a writable nightly directory (made when missing)' },
          { flag: '--baseline', path: a.baseline, role: 'read-dir', wants: 'the nightly directory to compare with' },
        ] as const)),
  ];
}

export const nightlyCommand: CommandModule<object, NightlyArgs> = {
  command: 'nightly',
  describe:
    'run a test matrix from a plan file: parallel guests, optional --shard i/N, resume, history, comparison, reports',
  builder: (y) =>
    y
      .option('plan', {
        type: 'string',
        demandOption: true,
        describe: 'plan file (YAML or JSON): kernels, configs, backings, guest_ram, suites, repeat, timeouts, mem, smp',
      })
      .option('jobs', { alias: 'j', type: 'number', describe: 'parallel guests (default: from cores and free memory)' })
      .option('ahead', {
        type: 'boolean',
        default: true,
        describe:
          "start each job while the one before it runs, its guest loaded from the snapshot and paused until its turn (--no-ahead: one job's process at a time per guest)",
      })
      .option('shard', {
        type: 'string',
        describe: 'run only shard I of N (1-based), e.g. 2/4; combine the shards with faultline merge',
      })
      .option('resume', {
        type: 'boolean',
        default: false,
        describe: 'continue the newest interrupted nightly of this plan (and shard), or --out DIR',
      })
      .option('out', { type: 'string', describe: 'nightly directory (default results/nightly/<id>)' })
      .option('results', {
        type: 'string',
        default: 'results',
        describe: 'results root holding the history index (index.jsonl)',
      })
      .option('durations-from', {
        type: 'string',
        describe: 'results root whose history balances shards (every shard must see the same one)',
      })
      .option('accel', { type: 'string', default: 'auto', describe: 'auto, kvm or tcg' })
      .option('baseline', {
        type: 'string',
        describe: 'nightly directory to compare with (default: the previous night of this plan)',
      })
      .option('compare', {
        type: 'boolean',
        default: true,
        describe: 'compare with the baseline night (--no-compare to skip)',
      })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the jobs (of this shard) and exit' })
      .option('apt-option', {
        type: 'string',
        array: true,
        default: [],
        describe: 'extra apt option KEY=VALUE for downloading Debian kernels',
      })
      .option('known-issues', {
        type: 'string',
        array: true,
        describe:
          "a known-issues YAML file (repeatable) every job applies, besides the shipped known-issues/debian.yaml (--no-known-issues: not the shipped one) and the plan's known_issues:",
      })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'print every host command' }),
  handler: async (a) => {
    if (a.verbose) setVerbose(true);
    const accel = a.accel;
    if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg')
      throw new UsageError(`--accel must be auto, kvm or tcg, got '${accel}'`);
    const shard = a.shard !== undefined ? parseShard(a.shard) : undefined;
    const parallel = a.jobs !== undefined ? positiveInt('--jobs', a.jobs, 1, 256) : undefined;
    await checkPaths([...nightlyPaths(a), ...knownIssuesFlags(a['known-issues'])]);
    const knownIssues = knownIssueFiles(a['known-issues'], SHIPPED_KNOWN_ISSUES);
    // A bad list is one line naming FILE:LINE:COL (exit 2) before any kernel is prepared.
    await readKnownIssues(knownIssues);
    if (a['dry-run']) {
      const plan = await readPlan(a.plan);
      const jobs = expandJobs(plan);
      const durations = pastDurations(await readHistory(a['durations-from'] ?? a.results), plan.name);
      const mine = shard ? selectShard(jobs, shard, durations).jobs : jobs;
      for (const j of mine) process.stdout.write(`${j.id}\n`);
      log.info(`${mine.length} of ${jobs.length} job(s)${shard ? ` in shard ${shard.index}/${shard.count}` : ''}`);
      return;
    }
    const controller = new AbortController();
    let interrupts = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      log.warn(`${sig}: no new jobs start; running guests finish (again to quit now); continue later with --resume`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const out = await runNightly({
      views: NIGHTLY_VIEWS,
      planFile: a.plan,
      resultsRoot: a.results,
      ...(a.out !== undefined ? { outDir: a.out } : {}),
      ...(parallel !== undefined ? { parallel } : {}),
      ...(shard ? { shard } : {}),
      resume: a.resume,
      ...(a['durations-from'] !== undefined ? { durationsFrom: a['durations-from'] } : {}),
      accel,
      aptOptions: parseList(a['apt-option']),
      ...(a.baseline !== undefined ? { baseline: a.baseline } : {}),
      compare: a.compare,
      ahead: a.ahead,
      knownIssues,
      signal: controller.signal,
    });
    process.exit(out.exitCode);
  },
};
