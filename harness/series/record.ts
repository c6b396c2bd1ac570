import type { JSONSchemaType } from 'ajv';
import { comparisonSchema, reviveComparison } from '../analysis/compare.js';
import { verdictSchema } from '../results/record.js';
import { bool, count, lazyValidator, optStr, readJsonFile, str, strings } from '../util/schema.js';
import type { ThreadHeaders } from './mbox.js';
import { SERIES_VERDICTS, type PatchRecord, type SeriesRecord, type TestSummary } from './types.js';
import type { Diagnostic } from '../toolchain/diagnostics.js';
import { SEVERITIES } from '../toolchain/diagnostics.js';

const ms = { type: 'number' } as const;
const hash = { type: 'string', pattern: '^[0-9a-f]{40,64}$' } as const;

const diagnosticSchema: JSONSchemaType<Diagnostic> = {
  type: 'object',
  required: ['file', 'line', 'severity', 'message', 'text'],
  properties: {
    file: str,
    line: { type: 'integer' },
    column: { type: 'integer', nullable: true },
    severity: { type: 'string', enum: SEVERITIES },
    message: str,
    flag: optStr,
    text: str,
  },
};

const threadSchema: JSONSchemaType<ThreadHeaders> = {
  type: 'object',
  required: ['subject'],
  properties: { subject: str, messageId: optStr, from: optStr, to: optStr, cc: optStr, references: optStr },
};

const testSummarySchema: JSONSchemaType<TestSummary> = {
  type: 'object',
  required: ['runs', 'runIds', 'counts', 'verdicts', 'splats'],
  properties: {
    runs: count,
    runIds: strings,
    counts: {
      type: 'object',
      required: ['pass', 'fail', 'skip', 'error', 'flaky'],
      properties: { pass: count, fail: count, skip: count, error: count, flaky: count },
    },
    verdicts: { type: 'array', items: verdictSchema },
    splats: count,
    cached: { type: 'boolean', nullable: true },
  },
};

const patchSchema: JSONSchemaType<PatchRecord> = {
  type: 'object',
  required: ['index', 'total', 'subject', 'files', 'apply'],
  properties: {
    index: { type: 'integer', minimum: 1 },
    total: { type: 'integer', minimum: 1 },
    subject: str,
    messageId: optStr,
    author: optStr,
    commit: optStr,
    patchId: optStr,
    files: strings,
    apply: { type: 'object', required: ['ok'], properties: { ok: bool, reason: optStr } },
    build: {
      type: 'object',
      nullable: true,
      required: ['ok', 'durationMs', 'cacheHit', 'newWarnings', 'warningsCompared'],
      properties: {
        ok: bool,
        durationMs: ms,
        cacheHit: bool,
        firstError: optStr,
        newWarnings: { type: 'array', items: diagnosticSchema },
        warningsCompared: bool,
      },
    },
    tests: { ...testSummarySchema, nullable: true },
    comparison: {
      type: 'object',
      nullable: true,
      required: ['regressions', 'fixed', 'newSplats', 'metricRegressions'],
      properties: { regressions: count, fixed: count, newSplats: count, metricRegressions: count },
    },
  },
};

const sourceSchema: JSONSchemaType<SeriesRecord['source']> = {
  oneOf: [
    {
      type: 'object',
      required: ['kind', 'file'],
      properties: {
        kind: { type: 'string', const: 'mbox' },
        file: str,
        cover: {
          type: 'object',
          nullable: true,
          required: ['subject'],
          properties: { subject: str, messageId: optStr },
        },
        thread: { ...threadSchema, nullable: true },
      },
    },
    {
      type: 'object',
      required: ['kind', 'range'],
      properties: { kind: { type: 'string', const: 'range' }, range: str },
    },
  ],
};

const schema: JSONSchemaType<SeriesRecord> = {
  type: 'object',
  required: [
    'schema',
    'repo',
    'base',
    'source',
    'patchsetHash',
    'messageIds',
    'patches',
    'tester',
    'builder',
    'repeat',
    'each',
    'problems',
    'verdict',
    'startedAt',
    'finishedAt',
    'durationMs',
    'timing',
  ],
  properties: {
    schema: { type: 'string', const: 'faultline.series/1' },
    repo: str,
    base: { type: 'object', required: ['hash', 'subject', 'ref'], properties: { hash, subject: str, ref: str } },
    source: sourceSchema,
    patchsetHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    messageIds: strings,
    tip: optStr,
    patches: { type: 'array', items: patchSchema },
    baseBuild: {
      type: 'object',
      nullable: true,
      required: ['ok', 'durationMs', 'cacheHit', 'warnings'],
      properties: { ok: bool, durationMs: ms, cacheHit: bool, warnings: count, firstError: optStr },
    },
    baseTests: { ...testSummarySchema, nullable: true },
    tester: str,
    builder: str,
    repeat: { type: 'integer', minimum: 1 },
    each: bool,
    comparison: { ...comparisonSchema, nullable: true },
    problems: strings,
    verdict: { type: 'string', enum: SERIES_VERDICTS },
    startedAt: str,
    finishedAt: str,
    durationMs: ms,
    timing: {
      type: 'object',
      required: ['baseBuildMs', 'patchBuildMs', 'testMs', 'totalMs'],
      properties: { baseBuildMs: ms, patchBuildMs: { type: 'array', items: ms }, testMs: ms, totalMs: ms },
    },
  },
};

const validate = lazyValidator<SeriesRecord>(schema);

/** A parsed series results.json as a SeriesRecord, or a one-line error naming `origin` and the path in it. */
export function validateSeriesRecord(value: unknown, origin: string): SeriesRecord {
  if (typeof value === 'object' && value !== null && 'comparison' in value) reviveComparison(value.comparison);
  return validate.checked(value, origin, 'series results.json');
}

export async function readSeriesRecord(path: string): Promise<SeriesRecord> {
  return validateSeriesRecord(await readJsonFile(path), path);
}
