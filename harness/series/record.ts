import { untypedValidator, readJsonFile } from '../util/schema.js';
import type { SeriesRecord } from './types.js';

const diag = {
  type: 'object',
  required: ['file', 'line', 'severity', 'message', 'text'],
  properties: {
    file: { type: 'string' },
    line: { type: 'integer' },
    severity: { enum: ['warning', 'error'] },
    message: { type: 'string' },
    text: { type: 'string' },
  },
} as const;

const testSummary = {
  type: 'object',
  required: ['runs', 'runIds', 'counts', 'verdicts', 'splats'],
  properties: {
    runs: { type: 'integer' },
    runIds: { type: 'array', items: { type: 'string' } },
    counts: { type: 'object', required: ['pass', 'fail', 'skip', 'error'] },
    verdicts: { type: 'array', items: { enum: ['pass', 'fail', 'error'] } },
    splats: { type: 'integer' },
    cached: { type: 'boolean' },
  },
} as const;

const schema = {
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
    schema: { const: 'faultline.series/1' },
    repo: { type: 'string' },
    base: {
      type: 'object',
      required: ['hash', 'subject', 'ref'],
      properties: { hash: { type: 'string', pattern: '^[0-9a-f]{40,64}$' } },
    },
    source: {
      type: 'object',
      required: ['kind'],
      properties: {
        kind: { enum: ['mbox', 'range'] },
        file: { type: 'string' },
        range: { type: 'string' },
        thread: {
          type: 'object',
          required: ['subject'],
          properties: {
            subject: { type: 'string' },
            messageId: { type: 'string' },
            from: { type: 'string' },
            to: { type: 'string' },
            cc: { type: 'string' },
            references: { type: 'string' },
          },
        },
      },
    },
    patchsetHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    messageIds: { type: 'array', items: { type: 'string' } },
    tip: { type: 'string' },
    patches: {
      type: 'array',
      items: {
        type: 'object',
        required: ['index', 'total', 'subject', 'files', 'apply'],
        properties: {
          index: { type: 'integer', minimum: 1 },
          total: { type: 'integer', minimum: 1 },
          subject: { type: 'string' },
          messageId: { type: 'string' },
          commit: { type: 'string' },
          files: { type: 'array', items: { type: 'string' } },
          apply: {
            type: 'object',
            required: ['ok'],
            properties: { ok: { type: 'boolean' }, reason: { type: 'string' } },
          },
          build: {
            type: 'object',
            required: ['ok', 'durationMs', 'cacheHit', 'newWarnings', 'warningsCompared'],
            properties: {
              ok: { type: 'boolean' },
              newWarnings: { type: 'array', items: diag },
              firstError: { type: 'string' },
            },
          },
          tests: testSummary,
        },
      },
    },
    baseTests: testSummary,
    comparison: { type: 'object', required: ['regressions', 'fixed', 'newSplats', 'metrics', 'regressed'] },
    problems: { type: 'array', items: { type: 'string' } },
    verdict: { enum: ['clean', 'regressed'] },
    repeat: { type: 'integer', minimum: 1 },
    each: { type: 'boolean' },
    timing: { type: 'object', required: ['baseBuildMs', 'patchBuildMs', 'testMs', 'totalMs'] },
  },
} as const;

const validate = untypedValidator<SeriesRecord>(schema);

function validateSeriesRecord(value: unknown, origin: string): SeriesRecord {
  return validate.checked(value, origin, 'series results.json');
}

export async function readSeriesRecord(path: string): Promise<SeriesRecord> {
  return validateSeriesRecord(await readJsonFile(path), path);
}
