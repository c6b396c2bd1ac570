import { ExitCode, FaultlineError, type ExitCodeValue } from '../util/errors.js';
import type { JSONSchemaType } from 'ajv';
import { count, lazyValidator, optNum, optStr, readJsonFile, str } from '../util/schema.js';
import { writeJsonAtomic } from '../util/fsutil.js';
import { join } from 'node:path';
import { knownIssueOutcomeSchema } from './known-issues.js';
import {
  ACCELS,
  BACKINGS,
  GUEST_RAMS,
  GUEST_STARTS,
  KERNEL_SOURCES,
  PROGRAM_PURPOSES,
  SPLAT_KINDS,
  STATUSES,
  VERDICTS,
  type Backing,
  type GuestInfo,
  type GuestRunRecord,
  type GuestStart,
  type KernelInfo,
  type Metric,
  type ProgramRun,
  type QemuInfo,
  type RunRecord,
  type RunSummary,
  type Splat,
  type Status,
  type SubtestAttempt,
  type SubtestResult,
  type Verdict,
} from './types.js';

/** Sub-schemas of the types results/ owns, for every record that embeds them. */
export const statusSchema: JSONSchemaType<Status> = { type: 'string', enum: STATUSES };
export const verdictSchema: JSONSchemaType<Verdict> = { type: 'string', enum: VERDICTS };
const backingSchema: JSONSchemaType<Backing> = { type: 'string', enum: BACKINGS };
const optBacking = { ...backingSchema, nullable: true } as const;

const metricSchema: JSONSchemaType<Metric> = {
  type: 'object',
  required: ['name', 'value', 'unit'],
  properties: { name: str, value: { type: 'number' }, unit: str },
};

const programSchema: JSONSchemaType<ProgramRun> = {
  type: 'object',
  required: ['program', 'command', 'exitCode', 'timedOut', 'durationMs', 'status', 'outputFile'],
  properties: {
    program: str,
    command: str,
    backing: optBacking,
    exitCode: { anyOf: [{ type: 'integer' }, { type: 'null', nullable: true }] },
    timedOut: { type: 'boolean' },
    durationMs: { type: 'number' },
    status: statusSchema,
    reason: optStr,
    outputFile: str,
    purpose: { type: 'string', enum: PROGRAM_PURPOSES, nullable: true },
  },
};

const attemptSchema: JSONSchemaType<SubtestAttempt> = {
  type: 'object',
  required: ['status', 'outputFile'],
  properties: { status: statusSchema, reason: optStr, outputFile: str },
};

const subtestSchema: JSONSchemaType<SubtestResult> = {
  type: 'object',
  required: ['id', 'suite', 'program', 'name', 'status'],
  properties: {
    id: { type: 'string', minLength: 1 },
    suite: str,
    program: str,
    name: str,
    title: optStr,
    backing: optBacking,
    status: statusSchema,
    reason: optStr,
    durationMs: optNum,
    metrics: { type: 'array', items: metricSchema, nullable: true },
    attempts: { type: 'array', items: attemptSchema, nullable: true },
    known: optStr,
  },
};

const splatSchema: JSONSchemaType<Splat> = {
  type: 'object',
  required: ['kind', 'title', 'excerpt', 'line'],
  properties: {
    kind: { type: 'string', enum: SPLAT_KINDS },
    title: str,
    excerpt: str,
    test: optStr,
    subtest: optStr,
    line: { type: 'integer', minimum: 1 },
    known: optStr,
  },
};

const kernelSchema: JSONSchemaType<KernelInfo> = {
  type: 'object',
  required: ['source', 'path'],
  properties: {
    source: { type: 'string', enum: KERNEL_SOURCES },
    path: str,
    release: optStr,
    package: optStr,
    packageVersion: optStr,
    configHash: optStr,
  },
};

const qemuSchema: JSONSchemaType<QemuInfo> = {
  type: 'object',
  required: ['command', 'accel', 'memMiB', 'smp', 'guestRam'],
  properties: {
    command: { type: 'array', items: str },
    accel: { type: 'string', enum: ACCELS },
    accelNote: optStr,
    memMiB: { type: 'number', minimum: 1 },
    smp: { type: 'integer', minimum: 1 },
    guestRam: { type: 'string', enum: GUEST_RAMS },
    numaNodes: { type: 'integer', minimum: 1, nullable: true },
  },
};

const startSchema: JSONSchemaType<GuestStart> = {
  type: 'object',
  required: ['how', 'readyMs'],
  properties: {
    how: { type: 'string', enum: GUEST_STARTS },
    readyMs: { type: 'number', minimum: 0 },
    why: optStr,
    snapshot: optStr,
    ahead: { type: 'boolean', nullable: true },
    phases: {
      type: 'object',
      nullable: true,
      required: ['qmpMs', 'loadedMs', 'sshMs', 'checkedMs'],
      properties: {
        qmpMs: { type: 'number', minimum: 0 },
        loadedMs: { type: 'number', minimum: 0 },
        sshMs: { type: 'number', minimum: 0 },
        checkedMs: { type: 'number', minimum: 0 },
      },
    },
    binaries: {
      type: 'object',
      nullable: true,
      required: ['kept', 'pushed', 'removed', 'bytes', 'ms'],
      properties: {
        kept: { type: 'integer', minimum: 0 },
        pushed: { type: 'integer', minimum: 0 },
        removed: { type: 'integer', minimum: 0 },
        bytes: { type: 'integer', minimum: 0 },
        ms: { type: 'number', minimum: 0 },
      },
    },
  },
};

const guestSchema: JSONSchemaType<GuestInfo> = {
  type: 'object',
  required: [],
  properties: {
    uname: optStr,
    clocksource: optStr,
    bootMs: optNum,
    boots: { type: 'integer', minimum: 0, nullable: true },
    starts: { type: 'array', items: startSchema, nullable: true },
    numaNodes: { type: 'integer', minimum: 1, nullable: true },
    hugepages1g: { type: 'integer', minimum: 0, nullable: true },
  },
};

const summarySchema: JSONSchemaType<RunSummary> = {
  type: 'object',
  required: ['pass', 'fail', 'skip', 'error', 'flaky', 'total'],
  properties: { pass: count, fail: count, skip: count, error: count, flaky: count, total: count },
};

const ms = { type: 'number', minimum: 0 } as const;
const runRecordSchema: JSONSchemaType<RunRecord> = {
  type: 'object',
  required: [
    'schema',
    'runId',
    'startedAt',
    'finishedAt',
    'durationMs',
    'kernel',
    'selftests',
    'suites',
    'backings',
    'programs',
    'subtests',
    'splats',
    'summary',
    'verdict',
    'timing',
  ],
  // A run boots a guest (both) or none (neither).
  dependencies: { qemu: ['guest'], guest: ['qemu'] },
  properties: {
    schema: { type: 'string', const: 'faultline.run/1' },
    runId: { type: 'string', minLength: 1 },
    startedAt: str,
    finishedAt: str,
    durationMs: { type: 'number' },
    kernel: kernelSchema,
    selftests: { type: 'object', required: ['source'], properties: { source: str, tree: optStr } },
    qemu: { ...qemuSchema, nullable: true },
    guest: { ...guestSchema, nullable: true },
    suites: { type: 'array', items: str },
    backings: { type: 'array', items: backingSchema },
    programs: { type: 'array', items: programSchema },
    subtests: { type: 'array', items: subtestSchema },
    splats: { type: 'array', items: splatSchema },
    infraError: optStr,
    knownIssues: { type: 'array', items: knownIssueOutcomeSchema, nullable: true },
    summary: summarySchema,
    verdict: verdictSchema,
    timing: {
      type: 'object',
      required: ['totalMs', 'testsMs', 'bootMs', 'pushMs', 'prepareMs'],
      properties: {
        totalMs: ms,
        testsMs: ms,
        bootMs: ms,
        pushMs: ms,
        prepareMs: ms,
        aheadMs: { ...ms, nullable: true },
      },
    },
  },
};

const validate = lazyValidator<RunRecord>(runRecordSchema);

/** Validate an untrusted value (parsed results.json) as a RunRecord; throws a one-line error. */
export function validateRunRecord(value: unknown, origin: string): RunRecord {
  return validate.checked(value, origin, 'results.json');
}

export async function readRunRecord(path: string): Promise<RunRecord> {
  return validateRunRecord(await readJsonFile(path), path);
}

/**
 * Write a run's results.json (atomically). Written last, after the run's views: its presence
 * marks a complete run directory (nightly --resume, history and reports go by it).
 */
export async function writeRunRecord(dir: string, r: RunRecord): Promise<void> {
  await writeJsonAtomic(join(dir, 'results.json'), r);
}

/** A results.json of a run that booted a guest (what `faultline run` writes); throws on one that did not. */
export async function readGuestRunRecord(path: string): Promise<GuestRunRecord> {
  const r = await readRunRecord(path);
  if (r.qemu === undefined || r.guest === undefined)
    throw new FaultlineError(`${path} is a run without a guest, where a guest run was expected`);
  return { ...r, qemu: r.qemu, guest: r.guest };
}

/** What a new run record starts from; the rest starts empty and is filled in as the run goes. */
export interface NewRun {
  runId: string;
  startedAt: string;
  kernel: KernelInfo;
  selftests: RunRecord['selftests'];
  suites: string[];
  backings: Backing[];
  /** The guest the run boots; absent when the test runs on the host. */
  qemu?: QemuInfo;
  /** What ran, for a record made after the fact; summary and verdict follow from them. */
  programs?: ProgramRun[];
  subtests?: SubtestResult[];
  splats?: Splat[];
  infraError?: string;
  durationMs?: number;
  finishedAt?: string;
  timing?: Partial<RunRecord['timing']>;
}

/**
 * The one way to make a RunRecord (faultline run, a nightly job that never ran, a host command
 * of bisect and series): the guest fields exist exactly when a guest is booted.
 */
export function newRunRecord(o: NewRun & { qemu: QemuInfo }): GuestRunRecord;
export function newRunRecord(o: NewRun): RunRecord;
export function newRunRecord(o: NewRun): RunRecord {
  const subtests = o.subtests ?? [];
  const durationMs = o.durationMs ?? 0;
  const rec: RunRecord = {
    schema: 'faultline.run/1',
    runId: o.runId,
    startedAt: o.startedAt,
    finishedAt: o.finishedAt ?? o.startedAt,
    durationMs,
    kernel: o.kernel,
    selftests: o.selftests,
    ...(o.qemu ? { qemu: o.qemu, guest: {} } : {}),
    suites: o.suites,
    backings: o.backings,
    programs: o.programs ?? [],
    subtests,
    splats: o.splats ?? [],
    ...(o.infraError !== undefined ? { infraError: o.infraError } : {}),
    summary: summarize(subtests),
    verdict: 'error',
    timing: { totalMs: durationMs, testsMs: 0, bootMs: 0, pushMs: 0, prepareMs: 0, ...o.timing },
  };
  rec.verdict = verdictOf(rec);
  return rec;
}

/** The comparison context of a run on its own: its guest RAM backend (`none`: no guest). */
export function guestRamContext(r: Pick<RunRecord, 'qemu'>): string {
  return `guest_ram=${r.qemu?.guestRam ?? 'none'}`;
}

/** How the run's tests executed, for headers: kvm, tcg, or on the host with no guest. */
export function accelOf(r: Pick<RunRecord, 'qemu'>): string {
  return r.qemu?.accel ?? 'no guest';
}

export function summarize(subtests: readonly SubtestResult[]): RunSummary {
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
 * A subtest or splat a known issue explains (`known`) is left out (see --known-is-failure).
 */
export function verdictOf(r: Pick<RunRecord, 'subtests' | 'splats' | 'infraError' | 'programs'>): RunRecord['verdict'] {
  const tests = r.subtests.filter((t) => t.known === undefined);
  if (r.splats.some((sp) => sp.known === undefined)) return 'fail';
  if (tests.some((t) => t.status === 'fail')) return 'fail';
  if (r.infraError !== undefined) return 'error';
  if (tests.some((t) => t.status === 'error')) return 'fail';
  const shown = new Set(
    r.subtests
      .filter((t) => t.status === 'error' || t.status === 'flaky' || t.known !== undefined)
      .map((t) => t.program),
  );
  if (
    r.programs.some(
      (p) => p.purpose === undefined && (p.status === 'fail' || p.status === 'error') && !shown.has(p.program),
    )
  )
    return 'fail';
  return 'pass';
}

/**
 * Exit code of a run: a flaky subtest alone passes, and so does a failure a known issue
 * explains, unless the user asked otherwise.
 */
export function exitCodeOf(
  r: Pick<RunRecord, 'verdict' | 'summary' | 'knownIssues'>,
  flakyIsFailure: boolean,
  knownIsFailure = false,
): ExitCodeValue {
  if (r.verdict !== 'pass') return r.verdict === 'fail' ? ExitCode.testFailure : ExitCode.infra;
  if (flakyIsFailure && r.summary.flaky > 0) return ExitCode.testFailure;
  if (knownIsFailure && (r.knownIssues ?? []).some((k) => k.state === 'present')) return ExitCode.testFailure;
  return ExitCode.ok;
}
