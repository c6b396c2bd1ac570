import type { JSONSchemaType } from 'ajv';
import { bool, count, lazyValidator, num, optStr, readJsonFile, str, strings } from '../util/schema.js';
import {
  BISECT_OUTCOMES,
  POLICY_MODES,
  RUN_RESULTS,
  STEP_ROLES,
  STEP_VERDICTS,
  type BisectCommand,
  type BisectRecord,
  type CommitSummary,
  type RunObservation,
  type RunPolicy,
  type StepRecord,
  type StepRole,
  type StepVerdict,
} from './types.js';

/** Where a bisect is: its endpoints checked, bisecting, verifying the culprit, done. */
const BISECT_PHASES = ['endpoints', 'bisecting', 'verifying', 'done'] as const;

/** The resumable state of one bisect (results dir/state.json), rewritten atomically after every change. */
export interface BisectState extends Pick<
  BisectRecord,
  'repo' | 'goodRef' | 'badRef' | 'good' | 'bad' | 'spec' | 'tester' | 'policy' | 'command' | 'startedAt'
> {
  schema: 'faultline.bisect-state/1';
  /** Identity of the bisect (repo, endpoints, spec, policy): a different key never resumes. */
  key: string;
  worktree: string;
  phase: (typeof BISECT_PHASES)[number];
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

const hash = { type: 'string', pattern: '^[0-9a-f]{40,64}$' } as const;
const hashes = { type: 'array', items: hash } as const;

const runSchema: JSONSchemaType<RunObservation> = {
  type: 'object',
  required: ['result', 'durationMs'],
  properties: {
    result: { type: 'string', enum: RUN_RESULTS },
    value: { type: 'number', nullable: true },
    unit: optStr,
    durationMs: num,
    detail: optStr,
    runDir: optStr,
  },
};
const runs = { type: 'array', items: runSchema } as const;

const roleSchema: JSONSchemaType<StepRole> = {
  type: 'string',
  enum: STEP_ROLES,
};
const verdictSchema: JSONSchemaType<StepVerdict> = { type: 'string', enum: STEP_VERDICTS };

const stepSchema: JSONSchemaType<StepRecord> = {
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
    rev: hash,
    subject: str,
    verdict: verdictSchema,
    reason: str,
    confidence: { type: 'number', minimum: 0, maximum: 1 },
    runs,
    infraErrors: strings,
    durationMs: num,
    buildMs: { type: 'number', nullable: true },
    cacheHit: { type: 'boolean', nullable: true },
    startedAt: str,
    marked: bool,
  },
};
const steps = { type: 'array', items: stepSchema } as const;

const policySchema: JSONSchemaType<RunPolicy> = {
  type: 'object',
  required: ['mode', 'runs', 'failThreshold', 'endpointRuns', 'targetConfidence', 'infraRetries'],
  properties: {
    mode: { type: 'string', enum: POLICY_MODES },
    runs: { type: 'integer', minimum: 1 },
    failThreshold: { type: 'integer', minimum: 1 },
    endpointRuns: { type: 'integer', minimum: 1 },
    targetConfidence: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    infraRetries: count,
  },
};

const commandSchema: JSONSchemaType<BisectCommand> = {
  type: 'object',
  required: ['cwd', 'argv'],
  properties: { cwd: str, argv: { type: 'array', items: str, minItems: 1 } },
};

const commitProperties = {
  hash: str,
  subject: str,
  authorName: str,
  authorEmail: str,
  authorDate: str,
} as const;
const commitRequired = ['hash', 'subject', 'authorName', 'authorEmail', 'authorDate'] as const;
const commitSchema: JSONSchemaType<CommitSummary> = {
  type: 'object',
  required: commitRequired,
  properties: commitProperties,
};
const culpritSchema: JSONSchemaType<CommitSummary & { confidence: number }> = {
  type: 'object',
  required: [...commitRequired, 'confidence'],
  properties: { ...commitProperties, confidence: num },
};

const verificationSchema: JSONSchemaType<NonNullable<BisectRecord['verification']>> = {
  type: 'object',
  required: ['parent', 'parentVerdict', 'culpritVerdict', 'verified'],
  properties: {
    parent: hash,
    parentVerdict: verdictSchema,
    culpritVerdict: verdictSchema,
    revert: {
      type: 'object',
      nullable: true,
      required: ['verdict'],
      properties: {
        verdict: { type: 'string', enum: [...STEP_VERDICTS, 'conflict'] },
        commit: optStr,
        reason: optStr,
      },
    },
    verified: bool,
  },
};

const recordSchema: JSONSchemaType<BisectRecord> = {
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
    schema: { type: 'string', const: 'faultline.bisect/1' },
    repo: str,
    goodRef: str,
    badRef: str,
    good: hash,
    bad: hash,
    spec: str,
    tester: str,
    policy: policySchema,
    command: { ...commandSchema, nullable: true },
    startedAt: str,
    finishedAt: str,
    durationMs: num,
    outcome: { type: 'string', enum: BISECT_OUTCOMES },
    refusal: optStr,
    culprit: { ...culpritSchema, nullable: true },
    candidates: { type: 'array', items: commitSchema, nullable: true },
    verification: { ...verificationSchema, nullable: true },
    rates: {
      type: 'object',
      required: ['goodFailRate', 'badFailRate'],
      properties: { goodFailRate: num, badFailRate: num },
    },
    passThreshold: { type: 'integer', minimum: 1 },
    steps,
    bisectLog: str,
    stats: {
      type: 'object',
      required: ['revisionsTested', 'bisectSteps', 'skips', 'endpointChecks', 'runs', 'rangeSize'],
      properties: {
        revisionsTested: count,
        bisectSteps: count,
        skips: count,
        endpointChecks: count,
        runs: count,
        rangeSize: count,
      },
    },
  },
};

const foundSchema: JSONSchemaType<NonNullable<BisectState['found']>> = {
  oneOf: [
    {
      type: 'object',
      required: ['kind', 'rev'],
      properties: { kind: { type: 'string', const: 'culprit' }, rev: hash },
    },
    {
      type: 'object',
      required: ['kind', 'candidates'],
      properties: { kind: { type: 'string', const: 'ambiguous' }, candidates: hashes },
    },
  ],
};

const stateSchema: JSONSchemaType<BisectState> = {
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
    schema: { type: 'string', const: 'faultline.bisect-state/1' },
    key: str,
    repo: str,
    goodRef: str,
    badRef: str,
    good: hash,
    bad: hash,
    spec: str,
    tester: str,
    policy: policySchema,
    command: { ...commandSchema, nullable: true },
    startedAt: str,
    worktree: str,
    phase: { type: 'string', enum: BISECT_PHASES },
    rangeSize: count,
    passThreshold: { type: 'integer', minimum: 1, nullable: true },
    steps,
    pending: {
      type: 'object',
      nullable: true,
      required: ['role', 'rev', 'runs', 'infraErrors', 'startedAt', 'durationMs'],
      properties: { role: roleSchema, rev: hash, runs, infraErrors: strings, startedAt: str, durationMs: num },
    },
    bisectLog: str,
    found: { ...foundSchema, nullable: true },
  },
};

const validateRecord = lazyValidator<BisectRecord>(recordSchema);
const validateState = lazyValidator<BisectState>(stateSchema);

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
