import { untypedValidator, readJsonFile } from '../util/schema.js';
import type { BisectRecord, RunObservation, StepRecord, StepRole } from './types.js';

/** The resumable state of one bisect (results dir/state.json), rewritten atomically after every change. */
export interface BisectState extends Pick<
  BisectRecord,
  'repo' | 'goodRef' | 'badRef' | 'good' | 'bad' | 'spec' | 'tester' | 'policy' | 'startedAt'
> {
  schema: 'faultline.bisect-state/1';
  /** Identity of the bisect (repo, endpoints, spec, policy): a different key never resumes. */
  key: string;
  worktree: string;
  phase: 'endpoints' | 'bisecting' | 'verifying' | 'done';
  rangeSize: number;
  passThreshold?: number;
  steps: StepRecord[];
  /** Runs of the step in progress, so an interruption loses at most one run. */
  pending?: {
    role: StepRole;
    rev: string;
    runs: RunObservation[];
    infraErrors: string[];
    startedAt: string;
    durationMs: number;
  };
  /** `git bisect log` after the last mark; replayed into a fresh worktree on resume. */
  bisectLog: string;
  found?: { kind: 'culprit'; rev: string } | { kind: 'ambiguous'; candidates: string[] };
}

const runSchema = {
  type: 'object',
  required: ['result', 'durationMs'],
  properties: {
    result: { enum: ['pass', 'fail'] },
    value: { type: 'number' },
    unit: { type: 'string' },
    durationMs: { type: 'number' },
    detail: { type: 'string' },
    runDir: { type: 'string' },
  },
} as const;

const roleSchema = {
  enum: ['good-endpoint', 'bad-endpoint', 'bisect', 'verify-parent', 'verify-culprit', 'verify-revert'],
} as const;

const stepSchema = {
  type: 'object',
  required: [
    'role',
    'rev',
    'subject',
    'verdict',
    'reason',
    'confidence',
    'runs',
    'infraErrors',
    'durationMs',
    'startedAt',
    'marked',
  ],
  properties: {
    role: roleSchema,
    rev: { type: 'string', pattern: '^[0-9a-f]{40,64}$' },
    subject: { type: 'string' },
    verdict: { enum: ['good', 'bad', 'skip'] },
    reason: { type: 'string' },
    confidence: { type: 'number', minimum: 0, maximum: 1 },
    runs: { type: 'array', items: runSchema },
    infraErrors: { type: 'array', items: { type: 'string' } },
    durationMs: { type: 'number' },
    buildMs: { type: 'number' },
    cacheHit: { type: 'boolean' },
    startedAt: { type: 'string' },
    marked: { type: 'boolean' },
  },
} as const;

const policySchema = {
  type: 'object',
  required: ['mode', 'runs', 'failThreshold', 'endpointRuns', 'targetConfidence', 'infraRetries'],
  properties: {
    mode: { enum: ['fixed', 'adaptive'] },
    runs: { type: 'integer', minimum: 1 },
    failThreshold: { type: 'integer', minimum: 1 },
    endpointRuns: { type: 'integer', minimum: 1 },
    targetConfidence: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    infraRetries: { type: 'integer', minimum: 0 },
  },
} as const;

const commitSchema = {
  type: 'object',
  required: ['hash', 'subject', 'authorName', 'authorEmail', 'authorDate'],
  properties: {
    hash: { type: 'string' },
    subject: { type: 'string' },
    authorName: { type: 'string' },
    authorEmail: { type: 'string' },
    authorDate: { type: 'string' },
    confidence: { type: 'number' },
  },
} as const;

const hash = { type: 'string', pattern: '^[0-9a-f]{40,64}$' } as const;

const recordSchema = {
  type: 'object',
  required: [
    'schema',
    'repo',
    'goodRef',
    'badRef',
    'good',
    'bad',
    'spec',
    'tester',
    'policy',
    'startedAt',
    'finishedAt',
    'durationMs',
    'outcome',
    'rates',
    'passThreshold',
    'steps',
    'bisectLog',
    'stats',
  ],
  properties: {
    schema: { const: 'faultline.bisect/1' },
    repo: { type: 'string' },
    goodRef: { type: 'string' },
    badRef: { type: 'string' },
    good: hash,
    bad: hash,
    spec: { type: 'string' },
    tester: { type: 'string' },
    policy: policySchema,
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
    durationMs: { type: 'number' },
    outcome: { enum: ['found', 'ambiguous', 'refused'] },
    refusal: { type: 'string' },
    culprit: { ...commitSchema, required: [...commitSchema.required, 'confidence'] },
    candidates: { type: 'array', items: commitSchema },
    verification: {
      type: 'object',
      required: ['parent', 'parentVerdict', 'culpritVerdict', 'verified'],
      properties: {
        parent: hash,
        parentVerdict: { enum: ['good', 'bad', 'skip'] },
        culpritVerdict: { enum: ['good', 'bad', 'skip'] },
        revert: {
          type: 'object',
          required: ['verdict'],
          properties: {
            verdict: { enum: ['good', 'bad', 'skip', 'conflict'] },
            commit: { type: 'string' },
            reason: { type: 'string' },
          },
        },
        verified: { type: 'boolean' },
      },
    },
    rates: {
      type: 'object',
      required: ['goodFailRate', 'badFailRate'],
      properties: { goodFailRate: { type: 'number' }, badFailRate: { type: 'number' } },
    },
    passThreshold: { type: 'integer', minimum: 1 },
    steps: { type: 'array', items: stepSchema },
    bisectLog: { type: 'string' },
    stats: {
      type: 'object',
      required: ['revisionsTested', 'bisectSteps', 'skips', 'endpointChecks', 'runs', 'rangeSize'],
      properties: {
        revisionsTested: { type: 'integer' },
        bisectSteps: { type: 'integer' },
        skips: { type: 'integer' },
        endpointChecks: { type: 'integer' },
        runs: { type: 'integer' },
        rangeSize: { type: 'integer' },
      },
    },
  },
} as const;

const stateSchema = {
  type: 'object',
  required: [
    'schema',
    'key',
    'repo',
    'goodRef',
    'badRef',
    'good',
    'bad',
    'spec',
    'tester',
    'policy',
    'worktree',
    'startedAt',
    'phase',
    'rangeSize',
    'steps',
    'bisectLog',
  ],
  properties: {
    schema: { const: 'faultline.bisect-state/1' },
    key: { type: 'string' },
    repo: { type: 'string' },
    good: hash,
    bad: hash,
    policy: policySchema,
    worktree: { type: 'string' },
    phase: { enum: ['endpoints', 'bisecting', 'verifying', 'done'] },
    rangeSize: { type: 'integer' },
    passThreshold: { type: 'integer' },
    steps: { type: 'array', items: stepSchema },
    pending: {
      type: 'object',
      required: ['role', 'rev', 'runs', 'infraErrors', 'startedAt', 'durationMs'],
      properties: {
        role: roleSchema,
        rev: hash,
        runs: { type: 'array', items: runSchema },
        infraErrors: { type: 'array', items: { type: 'string' } },
      },
    },
    bisectLog: { type: 'string' },
    found: {
      type: 'object',
      required: ['kind'],
      properties: { kind: { enum: ['culprit', 'ambiguous'] }, rev: hash, candidates: { type: 'array', items: hash } },
    },
  },
} as const;

const validateRecord = untypedValidator<BisectRecord>(recordSchema);
const validateState = untypedValidator<BisectState>(stateSchema);

function validateBisectRecord(value: unknown, origin: string): BisectRecord {
  return validateRecord.checked(value, origin, 'bisect results.json');
}

function validateBisectState(value: unknown, origin: string): BisectState {
  return validateState.checked(value, origin, 'bisect state file');
}

export async function readBisectRecord(path: string): Promise<BisectRecord> {
  return validateBisectRecord(await readJsonFile(path), path);
}

export async function readBisectState(path: string): Promise<BisectState> {
  return validateBisectState(await readJsonFile(path), path);
}
