/**
 * nightly.json: the nightly's index of jobs and, while it runs, its resume state (rewritten
 * atomically after every job, so kill -9 leaves either the old or the new file), with the plan
 * and the jobs it embeds. Each job's results live in its own run directory (results.json).
 * The nightly writes it; history, report and export read it back: it lives here, below all of
 * them, so none of those folders needs to import nightly/.
 */
import type { JSONSchemaType } from 'ajv';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/fsutil.js';
import { count, lazyValidator, optStr, positive, readJsonFile, str, strings } from '../util/schema.js';
import { readRunRecord, verdictSchema } from './record.js';
import { BACKINGS, GUEST_RAMS, type Backing, type GuestRam, type RunRecord } from './types.js';

// ---------------------------------------------------------------------------------------------
// The plan (parsed from YAML by nightly/plan.ts) and its jobs (expanded by nightly/jobs.ts)

export interface DebianPlanKernel {
  kind: 'debian';
  name: string;
  /** Debian kernel series, e.g. "6.12". */
  series: string;
}

export interface TreePlanKernel {
  kind: 'tree';
  name: string;
  /** Kernel source: a local git checkout (or plain tree) built by harness/kernel/build.ts. */
  tree: string;
  ref?: string;
  /** Config fragments always applied to this kernel (on top of each config set's fragments). */
  kconfig: string[];
  /** Starting config (`config_base:`): defconfig, tinyconfig, allnoconfig or a file; default defconfig. */
  configBase?: string;
}

export type PlanKernel = DebianPlanKernel | TreePlanKernel;

export interface PlanConfig {
  name: string;
  fragments: string[];
}

export interface Plan {
  name: string;
  kernels: PlanKernel[];
  /** Config fragment sets; they multiply source-built kernels only (a packaged kernel has its own config). */
  configs: PlanConfig[];
  backings: Backing[];
  guestRam: GuestRam[];
  suites: string[];
  repeat: number;
  quick: boolean;
  /** Per-test timeout (s) by suite; `default` applies to suites not listed. */
  timeouts: Record<string, number>;
  bootTimeoutSec: number;
  memMiB: number;
  smp: number;
  hugepages2m: number;
  hugepages1g: number;
  filter?: string;
  cmdline?: string;
  /** Reruns of a failing subtest on its own (a pass on retry is flaky); `retries:` in the plan, default 2. */
  retries: number;
  /** Guest NUMA nodes (`numa:`, default 1: none). */
  numaNodes: number;
  /**
   * The user's own C programs (`programs:`, like `faultline run --program`), resolved against the
   * plan's directory: they run as one more job per kernel, guest RAM and backing (suite `program`).
   */
  programs?: string[];
  /**
   * Known-issues files (`known_issues:`, resolved against the plan's directory), applied to every
   * job besides the shipped list (known-issues.ts).
   */
  knownIssues?: string[];
  /** `bisect:`: regressions on moving trees become bisects after the night (absent: off). */
  bisect?: PlanBisect;
}

/** The plan's culprit loop: each bisect's time budget and the runs of a test per step. */
export interface PlanBisect {
  maxMinutes: number;
  runs: number;
}

export interface Job {
  /** Unique within a plan: key + "+r" + repetition. */
  id: string;
  /** The job without its repetition number: the unit past durations are looked up by. */
  key: string;
  kernel: string;
  /** Config set name ("debian" for a packaged kernel). */
  config: string;
  /** Identity of the kernel binary this job boots: jobs sharing it share one build. */
  buildKey: string;
  guestRam: GuestRam;
  backing: Backing;
  suite: string;
  rep: number;
  timeoutSec: number;
}

export interface ShardSpec {
  /** 1-based, like jest/playwright --shard. */
  index: number;
  count: number;
}

const JOB_STATES = ['pending', 'done'] as const;
const THRESHOLD_DIRECTIONS = ['above', 'below'] as const;
const BISECT_OUTCOMES = ['culprit', 'inconclusive', 'known'] as const;

export interface NightlyJobState extends Job {
  state: (typeof JOB_STATES)[number];
  attempts: number;
  /** Run directory of the final attempt, relative to the nightly directory. */
  runDir?: string;
  /** Earlier attempts (an infra error is retried once), relative paths. */
  failedAttempts?: string[];
  verdict?: 'pass' | 'fail' | 'error';
  durationMs?: number;
  infraError?: string;
  finishedAt?: string;
}

export interface NightlyRecord {
  schema: 'faultline.nightly/1';
  nightlyId: string;
  planName: string;
  planHash: string;
  plan: Plan;
  /** Present on a shard's record; absent on an unsharded or merged nightly. */
  shard?: ShardSpec & { fingerprint: string; balanced: boolean };
  /** Shards a merged record was combined from. */
  mergedFrom?: string[];
  startedAt: string;
  finishedAt?: string;
  complete: boolean;
  host: { hostname: string; cpus: number; memMiB: number; parallel: number };
  /** Number of jobs in the whole plan (all shards). */
  totalJobs: number;
  jobs: NightlyJobState[];
  /** The commit each tree kernel with a `ref:` tested tonight (resolved once; --resume keeps it), by kernel name. */
  commits?: Record<string, string>;
  /** The culprit loop's outcome per regression group (plan `bisect:`), and regressions already bisected. */
  bisects?: NightlyBisect[];
}

/** What a night's bisect can look for: a new splat's title, a failing subtest id, or a slowed metric. */
const SIGNAL_KINDS = ['splat', 'test', 'metric'] as const;

export interface BisectSignal {
  kind: (typeof SIGNAL_KINDS)[number];
  /**
   * Splat title, subtest id (uffd-unit-tests/zeropage/anon), or subtest id and metric name
   * (uffd-lat/missing-copy/shmem/poll/total_p50).
   */
  id: string;
  /**
   * A metric's bad side, as `faultline bisect --metric ID --above|--below THRESHOLD` takes it: the
   * threshold lies between the baseline night's median and tonight's (their geometric mean).
   */
  threshold?: { direction: (typeof THRESHOLD_DIRECTIONS)[number]; value: string };
}

/**
 * One regression group of a night (same kernel, config and commit window) and what became of it:
 * bisected to a verified culprit, not concluded (why), or known from an earlier night's bisect.
 */
export interface NightlyBisect {
  kernel: string;
  config: string;
  guestRam: GuestRam;
  backing: Backing;
  suite: string;
  /** The strongest signal of the group: what the bisect tested. */
  signal: BisectSignal;
  /** Every regression of the group, strongest first (the signal is the first). */
  signals: BisectSignal[];
  good: string;
  bad: string;
  /** The baseline night that tested `good`. */
  goodNight: string;
  outcome: (typeof BISECT_OUTCOMES)[number];
  /** Why the bisect did not conclude. */
  reason?: string;
  culprit?: { hash: string; subject: string; author: string; confidence: number };
  /** The bisect's spec text (faultline bisect's own). */
  spec?: string;
  /** Bisect results directory and culprit mail, relative to the night's directory. */
  dir?: string;
  mail?: string;
  durationMs?: number;
  /** outcome 'known': the night whose bisect named this culprit ("failing since"). */
  since?: string;
}

// ---------------------------------------------------------------------------------------------
// Schemas

const name = { type: 'string', minLength: 1 } as const;
const backingSchema: JSONSchemaType<Backing> = { type: 'string', enum: BACKINGS };
const guestRamSchema: JSONSchemaType<GuestRam> = { type: 'string', enum: GUEST_RAMS };

const kernelSchema: JSONSchemaType<PlanKernel> = {
  oneOf: [
    {
      type: 'object',
      required: ['kind', 'name', 'series'],
      properties: { kind: { type: 'string', const: 'debian' }, name, series: str },
    },
    {
      type: 'object',
      required: ['kind', 'name', 'tree', 'kconfig'],
      properties: {
        kind: { type: 'string', const: 'tree' },
        name,
        tree: str,
        ref: optStr,
        kconfig: strings,
        configBase: optStr,
      },
    },
  ],
};

const planSchema: JSONSchemaType<Plan> = {
  type: 'object',
  required: [
    'name',
    'kernels',
    'configs',
    'backings',
    'guestRam',
    'suites',
    'repeat',
    'quick',
    'timeouts',
    'bootTimeoutSec',
    'memMiB',
    'smp',
    'hugepages2m',
    'hugepages1g',
    'retries',
    'numaNodes',
  ],
  properties: {
    name,
    kernels: { type: 'array', items: kernelSchema },
    configs: {
      type: 'array',
      items: { type: 'object', required: ['name', 'fragments'], properties: { name, fragments: strings } },
    },
    backings: { type: 'array', items: backingSchema },
    guestRam: { type: 'array', items: guestRamSchema },
    suites: strings,
    repeat: positive,
    quick: { type: 'boolean' },
    timeouts: { type: 'object', required: [], additionalProperties: { type: 'number', exclusiveMinimum: 0 } },
    bootTimeoutSec: { type: 'number', exclusiveMinimum: 0 },
    memMiB: positive,
    smp: positive,
    hugepages2m: count,
    hugepages1g: count,
    filter: optStr,
    cmdline: optStr,
    retries: count,
    numaNodes: positive,
    programs: { ...strings, nullable: true },
    knownIssues: { ...strings, nullable: true },
    bisect: {
      type: 'object',
      nullable: true,
      required: ['maxMinutes', 'runs'],
      properties: { maxMinutes: positive, runs: positive },
    },
  },
};

const jobSchema: JSONSchemaType<NightlyJobState> = {
  type: 'object',
  required: [
    'id',
    'key',
    'kernel',
    'config',
    'buildKey',
    'guestRam',
    'backing',
    'suite',
    'rep',
    'timeoutSec',
    'state',
    'attempts',
  ],
  properties: {
    id: name,
    key: str,
    kernel: str,
    config: str,
    buildKey: str,
    guestRam: guestRamSchema,
    backing: backingSchema,
    suite: str,
    rep: positive,
    timeoutSec: { type: 'number' },
    state: { type: 'string', enum: JOB_STATES },
    attempts: count,
    runDir: optStr,
    failedAttempts: { ...strings, nullable: true },
    verdict: { ...verdictSchema, nullable: true },
    durationMs: { type: 'number', nullable: true },
    infraError: optStr,
    finishedAt: optStr,
  },
};

const signalSchema: JSONSchemaType<BisectSignal> = {
  type: 'object',
  required: ['kind', 'id'],
  properties: {
    kind: { type: 'string', enum: [...SIGNAL_KINDS] },
    id: str,
    threshold: {
      type: 'object',
      nullable: true,
      required: ['direction', 'value'],
      properties: { direction: { type: 'string', enum: THRESHOLD_DIRECTIONS }, value: str },
    },
  },
};

const bisectSchema: JSONSchemaType<NightlyBisect> = {
  type: 'object',
  required: [
    'kernel',
    'config',
    'guestRam',
    'backing',
    'suite',
    'signal',
    'signals',
    'good',
    'bad',
    'goodNight',
    'outcome',
  ],
  properties: {
    kernel: str,
    config: str,
    guestRam: guestRamSchema,
    backing: backingSchema,
    suite: str,
    signal: signalSchema,
    signals: { type: 'array', items: signalSchema },
    good: str,
    bad: str,
    goodNight: str,
    outcome: { type: 'string', enum: BISECT_OUTCOMES },
    reason: optStr,
    culprit: {
      type: 'object',
      nullable: true,
      required: ['hash', 'subject', 'author', 'confidence'],
      properties: { hash: str, subject: str, author: str, confidence: { type: 'number' } },
    },
    spec: optStr,
    dir: optStr,
    mail: optStr,
    durationMs: { type: 'number', nullable: true },
    since: optStr,
  },
};

const nightlySchema: JSONSchemaType<NightlyRecord> = {
  type: 'object',
  required: [
    'schema',
    'nightlyId',
    'planName',
    'planHash',
    'plan',
    'startedAt',
    'complete',
    'host',
    'totalJobs',
    'jobs',
  ],
  properties: {
    schema: { type: 'string', const: 'faultline.nightly/1' },
    nightlyId: name,
    planName: str,
    planHash: str,
    plan: planSchema,
    shard: {
      type: 'object',
      nullable: true,
      required: ['index', 'count', 'fingerprint', 'balanced'],
      properties: { index: positive, count: positive, fingerprint: str, balanced: { type: 'boolean' } },
    },
    mergedFrom: { ...strings, nullable: true },
    startedAt: str,
    finishedAt: optStr,
    complete: { type: 'boolean' },
    host: {
      type: 'object',
      required: ['hostname', 'cpus', 'memMiB', 'parallel'],
      properties: { hostname: str, cpus: positive, memMiB: { type: 'number' }, parallel: positive },
    },
    totalJobs: count,
    jobs: { type: 'array', items: jobSchema },
    commits: { type: 'object', nullable: true, required: [], additionalProperties: str },
    bisects: { type: 'array', nullable: true, items: bisectSchema },
  },
};

const validate = lazyValidator<NightlyRecord>(nightlySchema);

export const NIGHTLY_FILE = 'nightly.json';

/**
 * Records written before a plan key existed hold what its default was then: `numa:` (plan
 * numaNodes) came on 2026-12-01, and a plan without it ran one node.
 */
function upgrade(parsed: unknown): unknown {
  const plan = typeof parsed === 'object' && parsed !== null ? (parsed as { plan?: unknown }).plan : undefined;
  if (typeof plan === 'object' && plan !== null && !('numaNodes' in plan)) Object.assign(plan, { numaNodes: 1 });
  return parsed;
}

export async function readNightlyRecord(dir: string): Promise<NightlyRecord> {
  const path = join(dir, NIGHTLY_FILE);
  const parsed = await readJsonFile(path, `: is ${dir} a nightly directory?`);
  return validate.checked(upgrade(parsed), path, 'nightly.json');
}

export async function writeNightlyRecord(dir: string, rec: NightlyRecord): Promise<void> {
  await writeJsonAtomic(join(dir, NIGHTLY_FILE), rec);
}

export interface LoadedJob {
  job: NightlyJobState;
  record: RunRecord;
  /** Absolute run directory. */
  dir: string;
}

/** Read the results.json of every finished job (through validateRunRecord). */
export async function loadNightlyRuns(dir: string, rec: NightlyRecord): Promise<LoadedJob[]> {
  const out: LoadedJob[] = [];
  for (const job of rec.jobs) {
    if (job.state !== 'done' || job.runDir === undefined) continue;
    const runDir = join(dir, job.runDir);
    out.push({ job, record: await readRunRecord(join(runDir, 'results.json')), dir: runDir });
  }
  return out;
}
