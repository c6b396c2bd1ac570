import { ExitCode, type ExitCodeValue } from '../util/errors.js';
import { lazyValidator, readJsonFile } from '../util/schema.js';
import { BACKINGS, GUEST_RAMS, STATUSES, type RunRecord, type Status, type SubtestResult } from './types.js';

const metricSchema = {
  type: 'object',
  required: ['name', 'value', 'unit'],
  properties: { name: { type: 'string' }, value: { type: 'number' }, unit: { type: 'string' } },
} as const;

const statusSchema = { type: 'string', enum: STATUSES as unknown as string[] } as const;
const backingSchema = { type: 'string', enum: BACKINGS as unknown as string[] } as const;

// Hand-written JSON Schema for results.json: the one boundary every reader (merge, compare,
// history, export) passes through.
const runRecordSchema = {
  type: 'object',
  required: [
    'schema',
    'runId',
    'startedAt',
    'finishedAt',
    'durationMs',
    'kernel',
    'selftests',
    'qemu',
    'guest',
    'suites',
    'backings',
    'programs',
    'subtests',
    'splats',
    'summary',
    'verdict',
    'timing',
  ],
  properties: {
    schema: { const: 'faultline.run/1' },
    runId: { type: 'string', minLength: 1 },
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
    durationMs: { type: 'number' },
    kernel: {
      type: 'object',
      required: ['source', 'path'],
      properties: {
        source: { enum: ['debian-package', 'path', 'build'] },
        path: { type: 'string' },
        release: { type: 'string' },
        package: { type: 'string' },
        packageVersion: { type: 'string' },
        configHash: { type: 'string' },
      },
    },
    selftests: {
      type: 'object',
      required: ['source'],
      properties: { source: { type: 'string' }, tree: { type: 'string' } },
    },
    qemu: {
      type: 'object',
      required: ['command', 'accel', 'memMiB', 'smp', 'guestRam'],
      properties: {
        command: { type: 'array', items: { type: 'string' } },
        accel: { enum: ['kvm', 'tcg'] },
        accelNote: { type: 'string' },
        memMiB: { type: 'number' },
        smp: { type: 'number' },
        guestRam: { enum: GUEST_RAMS as unknown as string[] },
        numaNodes: { type: 'integer', minimum: 1 },
      },
    },
    guest: {
      type: 'object',
      properties: {
        uname: { type: 'string' },
        clocksource: { type: 'string' },
        bootMs: { type: 'number' },
        boots: { type: 'integer', minimum: 0 },
        starts: {
          type: 'array',
          items: {
            type: 'object',
            required: ['how', 'readyMs'],
            properties: {
              how: { enum: ['booted', 'restored'] },
              readyMs: { type: 'number' },
              why: { type: 'string' },
              snapshot: { type: 'string' },
            },
          },
        },
        numaNodes: { type: 'integer', minimum: 1 },
        hugepages1g: { type: 'integer', minimum: 0 },
      },
    },
    suites: { type: 'array', items: { type: 'string' } },
    backings: { type: 'array', items: backingSchema },
    programs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['program', 'command', 'exitCode', 'timedOut', 'durationMs', 'status', 'outputFile'],
        properties: {
          program: { type: 'string' },
          command: { type: 'string' },
          backing: backingSchema,
          exitCode: { type: ['number', 'null'] },
          timedOut: { type: 'boolean' },
          durationMs: { type: 'number' },
          status: statusSchema,
          reason: { type: 'string' },
          outputFile: { type: 'string' },
          purpose: { enum: ['resume', 'retry'] },
        },
      },
    },
    subtests: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'suite', 'program', 'name', 'status'],
        properties: {
          id: { type: 'string', minLength: 1 },
          suite: { type: 'string' },
          program: { type: 'string' },
          name: { type: 'string' },
          backing: backingSchema,
          status: statusSchema,
          reason: { type: 'string' },
          durationMs: { type: 'number' },
          metrics: { type: 'array', items: metricSchema },
          attempts: {
            type: 'array',
            items: {
              type: 'object',
              required: ['status', 'outputFile'],
              properties: { status: statusSchema, reason: { type: 'string' }, outputFile: { type: 'string' } },
            },
          },
        },
      },
    },
    splats: {
      type: 'array',
      items: {
        type: 'object',
        required: ['kind', 'title', 'excerpt', 'line'],
        properties: {
          kind: { type: 'string' },
          title: { type: 'string' },
          excerpt: { type: 'string' },
          test: { type: 'string' },
          subtest: { type: 'string' },
          line: { type: 'number' },
        },
      },
    },
    infraError: { type: 'string' },
    summary: { type: 'object', required: ['pass', 'fail', 'skip', 'error', 'flaky', 'total'] },
    verdict: { enum: ['pass', 'fail', 'error'] },
    timing: { type: 'object', required: ['totalMs', 'testsMs', 'bootMs', 'pushMs', 'prepareMs'] },
  },
} as const;

const validate = lazyValidator<RunRecord>(runRecordSchema);

/** Validate an untrusted value (parsed results.json) as a RunRecord; throws a one-line error. */
export function validateRunRecord(value: unknown, origin: string): RunRecord {
  return validate.checked(value, origin, 'results.json');
}

export async function readRunRecord(path: string): Promise<RunRecord> {
  return validateRunRecord(await readJsonFile(path), path);
}

export function summarize(subtests: readonly SubtestResult[]): Record<Status, number> & { total: number } {
  const s = { pass: 0, fail: 0, skip: 0, error: 0, flaky: 0, total: subtests.length };
  for (const t of subtests) s[t.status]++;
  return s;
}

/**
 * `fail`: the kernel or a test failed: a kernel splat (a guest that died with a panic on its
 * console included), a failed subtest, a program that failed without a failed subtest to
 * show for it. Otherwise `error` when the harness lost the guest with no sign from the
 * kernel or could not finish; a subtest that errored (crashed, timed out) is a failure too.
 * A flaky subtest passed in the end: it alone never fails a run (see --flaky-is-failure).
 */
export function verdictOf(r: Pick<RunRecord, 'subtests' | 'splats' | 'infraError' | 'programs'>): RunRecord['verdict'] {
  if (r.splats.length > 0) return 'fail';
  if (r.subtests.some((t) => t.status === 'fail')) return 'fail';
  if (r.infraError !== undefined) return 'error';
  if (r.subtests.some((t) => t.status === 'error')) return 'fail';
  const shown = new Set(r.subtests.filter((t) => t.status === 'error' || t.status === 'flaky').map((t) => t.program));
  if (
    r.programs.some(
      (p) => p.purpose === undefined && (p.status === 'fail' || p.status === 'error') && !shown.has(p.program),
    )
  )
    return 'fail';
  return 'pass';
}

/** Exit code of a run: a flaky subtest alone passes unless the user asked otherwise. */
export function exitCodeOf(r: Pick<RunRecord, 'verdict' | 'summary'>, flakyIsFailure: boolean): ExitCodeValue {
  if (r.verdict === 'pass') return flakyIsFailure && r.summary.flaky > 0 ? ExitCode.testFailure : ExitCode.ok;
  return r.verdict === 'fail' ? ExitCode.testFailure : ExitCode.infra;
}
