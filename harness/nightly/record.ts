/**
 * nightly.json: the nightly's index of jobs and, while it runs, its resume state (rewritten
 * atomically after every job, so kill -9 leaves either the old or the new file). Each job's
 * results live in its own run directory (results.json written by runTests).
 */
import { lazyValidator, readJsonFile } from '../util/schema.js';
import { join } from 'node:path';
import { readRunRecord } from '../results/record.js';
import type { RunRecord } from '../results/types.js';
import { writeJsonAtomic } from '../util/fsutil.js';
import type { Job, ShardSpec } from './jobs.js';
import type { Plan } from './plan.js';

export interface NightlyJobState extends Job {
  state: 'pending' | 'done';
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
}

const jobSchema = {
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
    id: { type: 'string', minLength: 1 },
    key: { type: 'string' },
    kernel: { type: 'string' },
    config: { type: 'string' },
    buildKey: { type: 'string' },
    guestRam: { type: 'string' },
    backing: { type: 'string' },
    suite: { type: 'string' },
    rep: { type: 'integer', minimum: 1 },
    timeoutSec: { type: 'number' },
    state: { enum: ['pending', 'done'] },
    attempts: { type: 'integer', minimum: 0 },
    runDir: { type: 'string' },
    failedAttempts: { type: 'array', items: { type: 'string' } },
    verdict: { enum: ['pass', 'fail', 'error'] },
    durationMs: { type: 'number' },
    infraError: { type: 'string' },
    finishedAt: { type: 'string' },
  },
} as const;

const nightlySchema = {
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
    schema: { const: 'faultline.nightly/1' },
    nightlyId: { type: 'string', minLength: 1 },
    planName: { type: 'string' },
    planHash: { type: 'string' },
    plan: { type: 'object', required: ['kernels', 'backings', 'suites', 'repeat'] },
    shard: { type: 'object', required: ['index', 'count', 'fingerprint'] },
    mergedFrom: { type: 'array', items: { type: 'string' } },
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
    complete: { type: 'boolean' },
    host: { type: 'object' },
    totalJobs: { type: 'integer' },
    jobs: { type: 'array', items: jobSchema },
  },
} as const;

const validate = lazyValidator<NightlyRecord>(nightlySchema);

export const NIGHTLY_FILE = 'nightly.json';

function validateNightlyRecord(value: unknown, origin: string): NightlyRecord {
  return validate.checked(value, origin, 'nightly.json');
}

export async function readNightlyRecord(dir: string): Promise<NightlyRecord> {
  const path = join(dir, NIGHTLY_FILE);
  const parsed = await readJsonFile(path, `: is ${dir} a nightly directory?`);
  return validateNightlyRecord(parsed, path);
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
