/**
 * nightly-request.json: the RunRequest the nightly hands to a job's own process (job-child.ts)
 * through the run directory. Written and read by nightly/ alone; checked on read like every
 * record faultline reads back.
 */
import { readFile } from 'node:fs/promises';
import type { JSONSchemaType } from 'ajv';
import type { KernelSpec, RunRequest } from '../run/request.js';
import { BACKINGS, GUEST_RAMS } from '../results/types.js';
import { writeJsonAtomic } from '../util/fsutil.js';
import { count, lazyValidator, optStr, positive, readJsonFile, str, strings } from '../util/schema.js';
import { ACCEL_REQUESTS } from '../run/request.js';

export const JOB_REQUEST_FILE = 'nightly-request.json';

const kernelSchema: JSONSchemaType<KernelSpec> = {
  oneOf: [
    {
      type: 'object',
      required: ['kind', 'series'],
      properties: { kind: { type: 'string', const: 'debian' }, series: str },
    },
    {
      type: 'object',
      required: ['kind', 'bzImage'],
      properties: {
        kind: { type: 'string', const: 'path' },
        bzImage: str,
        modulesDir: optStr,
        release: optStr,
        configHash: optStr,
      },
    },
    {
      type: 'object',
      required: ['kind', 'kernelSrc', 'kconfig'],
      properties: {
        kind: { type: 'string', const: 'build' },
        kernelSrc: str,
        ref: optStr,
        kconfig: strings,
        base: optStr,
      },
    },
  ],
};

const requestSchema: JSONSchemaType<RunRequest> = {
  type: 'object',
  required: [
    'kernel',
    'suites',
    'backings',
    'memMiB',
    'smp',
    'accel',
    'guestRam',
    'timeoutSec',
    'bootTimeoutSec',
    'resultsRoot',
    'quick',
    'keepVm',
    'hugepages2m',
    'hugepages1g',
    'retries',
  ],
  properties: {
    kernel: kernelSchema,
    selftestsTree: optStr,
    selftestsDir: optStr,
    suites: strings,
    programs: { ...strings, nullable: true },
    backings: { type: 'array', items: { type: 'string', enum: BACKINGS } },
    memMiB: positive,
    smp: positive,
    accel: { type: 'string', enum: ACCEL_REQUESTS },
    guestRam: { type: 'string', enum: GUEST_RAMS },
    timeoutSec: { type: 'number', exclusiveMinimum: 0 },
    bootTimeoutSec: { type: 'number', exclusiveMinimum: 0 },
    resultsRoot: str,
    runId: optStr,
    quick: { type: 'boolean' },
    filter: optStr,
    categories: { ...strings, nullable: true },
    keepVm: { type: 'boolean' },
    hugepages2m: count,
    hugepages1g: count,
    numaNodes: { ...positive, nullable: true },
    aptOptions: { ...strings, nullable: true },
    refresh: { type: 'boolean', nullable: true },
    offline: { type: 'boolean', nullable: true },
    cmdline: optStr,
    retries: count,
    flakyIsFailure: { type: 'boolean', nullable: true },
    knownIssues: { ...strings, nullable: true },
    knownIsFailure: { type: 'boolean', nullable: true },
    noSnapshot: { type: 'boolean', nullable: true },
    pushBinaries: { type: 'boolean', nullable: true },
  },
};

const validate = lazyValidator<RunRequest>(requestSchema);

export async function writeJobRequest(path: string, req: RunRequest): Promise<void> {
  await writeJsonAtomic(path, req);
}

export async function readJobRequest(path: string): Promise<RunRequest> {
  return validate.checked(await readJsonFile(path), path, 'nightly job request');
}

/**
 * nightly-go: the nightly's word to a job started ahead of its turn (`go` or `stop`), written
 * atomically when the job before it in its lane is done.
 */
export const JOB_GO_FILE = 'nightly-go';

/** How often a waiting job looks for its go: a lane waits at most this long for a ready guest. */
const GO_POLL_MS = 20;

/** Wait for the nightly's word at `path`: true to go, false to stop (or past `deadlineMs`). */
export async function waitForGo(path: string, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const word = await readFile(path, 'utf8').catch(() => undefined);
    if (word !== undefined) return word.trim() === 'go';
    await new Promise((r) => setTimeout(r, GO_POLL_MS));
  }
  return false;
}
