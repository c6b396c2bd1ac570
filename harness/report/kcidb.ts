/**
 * KCIDB export (`faultline export --kcidb`): one checkout per kernel source, one build per kernel
 * binary (kernel + config), one test per subtest result with a dotted path
 * (uffd.unit.minor.hugetlb), one DONE test per metric carrying `number: {value, unit}`, and kernel
 * splats / infrastructure errors as tests of their own; each known issue a run records is an
 * `issue`, with an `incident` per test it matched (present) or whose test passed (absent: fixed?).
 * Validated against the vendored schema.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateRecord } from '../bisect/spec.js';
import { metricSpecOf } from '../nightly/culprit-groups.js';
import type { Culprit, KnownIssueOutcome } from '../results/known-issues.js';
import type { NightlyBisect } from '../results/nightly.js';
import type { RunRecord, Status, SubtestResult } from '../results/types.js';
import { FaultlineError } from '../util/errors.js';
import { sha256 } from '../util/fsutil.js';
import { PROJECT_ROOT } from '../util/project.js';

export const KCIDB_SCHEMA_PATH = join(PROJECT_ROOT, 'harness', 'report', 'kcidb', 'kcidb.v04_05.schema.json');
const KCIDB_VERSION = { major: 4, minor: 5 } as const;

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export interface KcidbCheckout {
  id: string;
  origin: string;
  tree_name?: string;
  git_repository_url?: string;
  git_commit_hash?: string;
  git_repository_branch?: string;
  comment?: string;
  start_time?: string;
  valid?: boolean;
  misc?: Record<string, unknown>;
}

export interface KcidbBuild {
  id: string;
  origin: string;
  checkout_id: string;
  architecture?: string;
  config_name?: string;
  comment?: string;
  start_time?: string;
  valid?: boolean;
  misc?: Record<string, unknown>;
}

export interface KcidbTest {
  id: string;
  origin: string;
  build_id: string;
  path: string;
  status?: KcidbStatus;
  comment?: string;
  log_excerpt?: string;
  start_time?: string;
  duration?: number;
  number?: { value: number; unit?: string; prefix?: 'metric' | 'binary' };
  environment?: { comment?: string; misc?: Record<string, unknown> };
  misc?: Record<string, unknown>;
}

interface KcidbIssue {
  id: string;
  version: number;
  origin: string;
  report_url?: string;
  report_subject?: string;
  culprit: { code: boolean; tool: boolean; harness: boolean };
  comment: string;
  misc?: Record<string, unknown>;
}

interface KcidbIncident {
  id: string;
  origin: string;
  issue_id: string;
  issue_version: number;
  test_id: string;
  present: boolean;
  comment?: string;
  misc?: Record<string, unknown>;
}

export interface KcidbData {
  version: { major: 4; minor: number };
  checkouts: KcidbCheckout[];
  builds: KcidbBuild[];
  tests: KcidbTest[];
  issues?: KcidbIssue[];
  incidents?: KcidbIncident[];
}

/** One run to export, with what the nightly knows about it (kernel name, config, source tree). */
export interface KcidbRunInput {
  record: RunRecord;
  kernelName?: string;
  config?: string;
  tree?: string;
  ref?: string;
  /** Job id (nightly) for traceability in misc. */
  job?: string;
}

// KCIDB has no flaky status: a flaky test passed in the end, and says so in its misc (attempts).
const STATUS: Record<Status, KcidbStatus> = { pass: 'PASS', fail: 'FAIL', error: 'ERROR', skip: 'SKIP', flaky: 'PASS' };

function part(s: string): string {
  return s.replace(/[^a-zA-Z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') || '_';
}

/**
 * uffd + uffd-unit-tests + minor + hugetlb -> uffd.unit.minor.hugetlb; a name that already
 * holds the backing keeps it where it is (uffd-lat's minor-continue/hugetlb/blocking).
 */
export function kcidbPath(t: Pick<SubtestResult, 'suite' | 'program' | 'name' | 'backing'>): string {
  let prog = t.program;
  if (prog.startsWith(`${t.suite}-`) || prog.startsWith(`${t.suite}_`)) prog = prog.slice(t.suite.length + 1);
  prog = prog.replace(/[-_]tests?$/, '');
  // A `--program` test is named like its program: say it once.
  const nameParts = t.name === t.program ? [] : t.name.split(/[/.]/).filter(Boolean);
  const parts = [t.suite, ...(prog && prog !== t.suite ? [prog] : []), ...nameParts];
  if (t.backing && !nameParts.includes(t.backing)) parts.push(t.backing);
  return parts.map(part).join('.');
}

function shortHash(s: string): string {
  return sha256(s).slice(0, 16);
}

function isoOrUndefined(s: string): string | undefined {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) ? s : undefined;
}

/** What a run's kernel came from: one KCIDB checkout per source. */
function sourceIdOf(run: KcidbRunInput): string {
  const k = run.record.kernel;
  if (run.tree !== undefined) return `tree:${run.tree}@${run.ref ?? ''}`;
  return k.source === 'debian-package' ? `debian:${k.package ?? ''}:${k.packageVersion ?? ''}` : `path:${k.path}`;
}

function checkoutOf(run: KcidbRunInput, id: string, origin: string): KcidbCheckout {
  const k = run.record.kernel;
  const url = run.tree !== undefined && /^(https|git):\/\//.test(run.tree) ? run.tree : undefined;
  const start = isoOrUndefined(run.record.startedAt);
  return {
    id,
    origin,
    tree_name: run.kernelName ?? (k.source === 'debian-package' ? 'debian' : 'local'),
    ...(url ? { git_repository_url: url } : {}),
    ...(run.ref !== undefined && /^[0-9a-f]{40}$/.test(run.ref)
      ? { git_commit_hash: run.ref }
      : run.ref !== undefined
        ? { git_repository_branch: run.ref }
        : {}),
    comment:
      k.source === 'debian-package'
        ? `Debian ${k.package ?? 'kernel'} ${k.packageVersion ?? ''}`.trim()
        : `kernel ${k.release ?? k.path}`,
    ...(start ? { start_time: start } : {}),
    valid: true,
    misc: { source: k.source },
  };
}

function buildOf(run: KcidbRunInput, id: string, checkoutId: string, origin: string): KcidbBuild {
  const k = run.record.kernel;
  return {
    id,
    origin,
    checkout_id: checkoutId,
    architecture: 'x86_64',
    ...(run.config !== undefined ? { config_name: run.config } : {}),
    comment: `${k.release ?? k.path}${k.configHash ? ` config ${k.configHash}` : ''}`,
    valid: true,
    misc: {
      ...(k.release !== undefined ? { release: k.release } : {}),
      ...(k.configHash !== undefined ? { config_hash: k.configHash } : {}),
      path: k.path,
    },
  };
}

function environmentOf(r: RunRecord): NonNullable<KcidbTest['environment']> {
  const q = r.qemu;
  if (!q) return { comment: 'on the host, no guest', misc: {} };
  return {
    comment: `qemu ${q.accel}, ${q.smp} vCPU, ${q.memMiB} MiB, guest RAM ${q.guestRam}`,
    misc: {
      accel: q.accel,
      smp: q.smp,
      mem_mib: q.memMiB,
      guest_ram: q.guestRam,
      ...(r.guest?.uname ? { uname: r.guest.uname } : {}),
    },
  };
}

type TestBase = Pick<KcidbTest, 'origin' | 'build_id' | 'environment' | 'start_time'>;

/** A subtest, then one DONE test per finite metric it reported. */
function subtestTests(run: KcidbRunInput, t: SubtestResult, testId: string, base: TestBase): KcidbTest[] {
  const r = run.record;
  const path = kcidbPath(t);
  const out: KcidbTest[] = [
    {
      ...base,
      id: testId,
      path,
      status: STATUS[t.status],
      ...(t.reason ? { comment: t.reason.slice(0, 1000) } : {}),
      ...(t.durationMs !== undefined ? { duration: t.durationMs / 1000 } : {}),
      misc: {
        faultline_id: t.id,
        run_id: r.runId,
        ...(run.job !== undefined ? { job: run.job } : {}),
        ...(t.status === 'flaky' ? { flaky: true } : {}),
        ...(t.attempts
          ? {
              attempts: t.attempts.map((a) => ({
                status: STATUS[a.status],
                ...(a.reason !== undefined ? { comment: a.reason } : {}),
                output: a.outputFile,
              })),
            }
          : {}),
      },
    },
  ];
  (t.metrics ?? []).forEach((m, j) => {
    if (!Number.isFinite(m.value)) return;
    out.push({
      ...base,
      id: `${testId}-m${j}`,
      path: `${path}.${part(m.name)}`,
      status: 'DONE',
      number: { value: m.value, ...(m.unit ? { unit: m.unit } : {}) },
      misc: { faultline_id: t.id, metric: m.name, run_id: r.runId },
    });
  });
  return out;
}

const subtestTestId = (origin: string, runTag: string, i: number): string => `${origin}:${runTag}-${i}`;
const splatTestId = (origin: string, runTag: string, i: number): string => `${origin}:${runTag}-splat${i}`;

// The known-issues file has no revision number: every export states the issue as it is now.
const ISSUE_VERSION = 1;
// KCIDB's culprit: the kernel's code, the test (its "tool") or the harness.
const CULPRIT_FIELD: Record<Culprit, keyof KcidbIssue['culprit']> = { code: 'code', test: 'tool', harness: 'harness' };

function issueOf(k: KnownIssueOutcome, origin: string): KcidbIssue {
  const culprit = { code: false, tool: false, harness: false };
  culprit[CULPRIT_FIELD[k.culprit]] = true;
  return {
    id: `${origin}:${k.id}`,
    version: ISSUE_VERSION,
    origin,
    ...(/^https?:\/\/\S+$/.test(k.report) ? { report_url: k.report } : { report_subject: k.report }),
    culprit,
    comment: k.title,
    misc: { faultline_id: k.id },
  };
}

/**
 * One incident per test a known issue matched (present) and per subtest of an absent issue that
 * passed (present: false); the tests keep their status. Ids are those testsOfRun gives.
 */
function incidentsOfRun(r: RunRecord, origin: string): KcidbIncident[] {
  const runTag = part(r.runId);
  const incident = (issueId: string, testId: string, present: boolean): KcidbIncident => ({
    id: `${testId}-${part(issueId)}`,
    origin,
    issue_id: `${origin}:${issueId}`,
    issue_version: ISSUE_VERSION,
    test_id: testId,
    present,
    ...(present ? {} : { comment: 'passed: fixed?' }),
    misc: { run_id: r.runId },
  });
  const out: KcidbIncident[] = [];
  r.subtests.forEach((t, i) => {
    if (t.known !== undefined) out.push(incident(t.known, subtestTestId(origin, runTag, i), true));
  });
  r.splats.forEach((s, i) => {
    if (s.known !== undefined) out.push(incident(s.known, splatTestId(origin, runTag, i), true));
  });
  for (const k of (r.knownIssues ?? []).filter((x) => x.state === 'absent'))
    r.subtests.forEach((t, i) => {
      if (t.status === 'pass' && k.where.includes(t.id))
        out.push(incident(k.id, subtestTestId(origin, runTag, i), false));
    });
  return out;
}

/** A night's culprits, for the issues of the regressions known issues cannot match (metrics). */
export interface KcidbNight {
  nightlyId: string;
  bisects: readonly NightlyBisect[];
}

/**
 * A metric culprit (a commit that slowed a metric, bisected by this night or an earlier one) as
 * a KCIDB issue, with an incident on each run's metric test that is beyond its threshold. The
 * tests keep their status (DONE with the number): the issue says why the number moved. Known
 * issues match statuses, so they cannot carry these.
 */
function metricCulprits(
  night: KcidbNight,
  runs: readonly KcidbRunInput[],
  origin: string,
): { issues: KcidbIssue[]; incidents: KcidbIncident[] } {
  const issues: KcidbIssue[] = [];
  const incidents: KcidbIncident[] = [];
  for (const b of night.bisects) {
    const metrics = b.signals.filter((s) => s.kind === 'metric' && s.threshold !== undefined);
    if (b.culprit === undefined || metrics.length === 0) continue;
    const hash = b.culprit.hash.slice(0, 12);
    const id = part(`culprit-${hash}-${b.config}-metrics`);
    if (issues.some((i) => i.misc?.['faultline_id'] === id)) continue;
    const by = b.outcome === 'known' ? (b.since ?? night.nightlyId) : night.nightlyId;
    const because = `slowed by ${hash} ("${b.culprit.subject}", ${b.culprit.author}), bisected by nightly ${by}`;
    const slowed = metrics.map((s) => `${s.id} ${s.threshold?.direction ?? ''} ${s.threshold?.value ?? ''}`);
    issues.push({
      id: `${origin}:${id}`,
      version: ISSUE_VERSION,
      origin,
      report_subject: `[faultline] ${b.culprit.subject}`,
      culprit: { code: true, tool: false, harness: false },
      comment: `${because}: ${slowed.join(', ')}`.slice(0, 1000),
      misc: { faultline_id: id },
    });
    // Incidents only on the metric the bisect tested and verified: the others moved with it, but
    // a single run of a noisy one (a max, a wall time) can cross its threshold without the culprit.
    const tested = metrics.filter((s) => s.id === b.signal.id);
    for (const run of runs.filter((r) => r.kernelName === b.kernel && r.config === b.config))
      for (const s of tested) {
        if (evaluateRecord(metricSpecOf(s), run.record).kind !== 'fail') continue;
        const testId = metricTestId(run.record, s.id, origin);
        if (testId !== undefined)
          incidents.push({
            id: `${testId}-${id}`,
            origin,
            issue_id: `${origin}:${id}`,
            issue_version: ISSUE_VERSION,
            test_id: testId,
            present: true,
            misc: { run_id: run.record.runId },
          });
      }
  }
  return { issues, incidents };
}

/** The KCIDB test id of a metric ("<subtest id>/<metric name>") in one run, as subtestTests gives it. */
function metricTestId(r: RunRecord, metricId: string, origin: string): string | undefined {
  const cut = metricId.lastIndexOf('/');
  const [subtest, metric] = [metricId.slice(0, cut), metricId.slice(cut + 1)];
  const i = r.subtests.findIndex((t) => t.id === subtest);
  const j = r.subtests[i]?.metrics?.findIndex((m) => m.name === metric && Number.isFinite(m.value)) ?? -1;
  return i < 0 || j < 0 ? undefined : `${subtestTestId(origin, part(r.runId), i)}-m${j}`;
}

/** Every test of one run: its subtests and metrics, a FAIL per splat, a MISS when the harness failed. */
function testsOfRun(run: KcidbRunInput, base: TestBase, origin: string): KcidbTest[] {
  const r = run.record;
  const runTag = part(r.runId);
  const tests = r.subtests.flatMap((t, i) => subtestTests(run, t, subtestTestId(origin, runTag, i), base));
  r.splats.forEach((s, i) => {
    tests.push({
      ...base,
      id: splatTestId(origin, runTag, i),
      path: `${part(r.suites[0] ?? 'kernel')}.console.${part(s.kind)}`,
      status: 'FAIL',
      comment: s.title.slice(0, 1000),
      log_excerpt: s.excerpt.slice(0, 16384),
      misc: { run_id: r.runId, ...(s.test !== undefined ? { during: s.test } : {}), console_line: s.line },
    });
  });
  if (r.infraError !== undefined) {
    // The harness failed: MISS says "did not run", distinct from the kernel failing a test.
    tests.push({
      ...base,
      id: `${origin}:${runTag}-infra`,
      path: part(r.suites[0] ?? 'faultline'),
      status: 'MISS',
      comment: r.infraError.split('\n')[0]?.slice(0, 1000) ?? '',
      log_excerpt: r.infraError.slice(0, 16384),
      misc: { run_id: r.runId },
    });
  }
  return tests;
}

/** The KCIDB data of runs; with `night`, its metric culprits as issues too. */
export function toKcidb(runs: readonly KcidbRunInput[], opts: { origin?: string; night?: KcidbNight } = {}): KcidbData {
  const origin = opts.origin ?? 'faultline';
  if (!/^[a-z0-9_]+$/.test(origin)) throw new FaultlineError(`KCIDB origin '${origin}' must match [a-z0-9_]+`);
  const checkouts = new Map<string, KcidbCheckout>();
  const builds = new Map<string, KcidbBuild>();
  const tests: KcidbTest[] = [];
  const issues = new Map<string, KcidbIssue>();
  const incidents: KcidbIncident[] = [];
  for (const run of runs) {
    const r = run.record;
    const k = r.kernel;
    const sourceId = sourceIdOf(run);
    const checkoutId = `${origin}:checkout-${shortHash(sourceId)}`;
    if (!checkouts.has(checkoutId)) checkouts.set(checkoutId, checkoutOf(run, checkoutId, origin));
    const buildId = `${origin}:build-${shortHash(`${sourceId}|${k.configHash ?? ''}|${run.config ?? ''}|${k.path}`)}`;
    if (!builds.has(buildId)) builds.set(buildId, buildOf(run, buildId, checkoutId, origin));
    const start = isoOrUndefined(r.startedAt);
    const base = { origin, build_id: buildId, environment: environmentOf(r), ...(start ? { start_time: start } : {}) };
    for (const t of testsOfRun(run, base, origin)) tests.push(t);
    for (const k of r.knownIssues ?? []) if (!issues.has(k.id)) issues.set(k.id, issueOf(k, origin));
    incidents.push(...incidentsOfRun(r, origin));
  }
  if (opts.night) {
    const m = metricCulprits(opts.night, runs, origin);
    for (const i of m.issues) issues.set(i.id, i);
    incidents.push(...m.incidents);
  }
  return {
    version: { major: 4, minor: KCIDB_VERSION.minor },
    checkouts: [...checkouts.values()],
    builds: [...builds.values()],
    tests,
    ...(issues.size > 0 ? { issues: [...issues.values()], incidents } : {}),
  };
}

let validator: ValidateFunction | undefined;

function kcidbValidator(): ValidateFunction {
  if (validator) return validator;
  const schema: unknown = JSON.parse(readFileSync(KCIDB_SCHEMA_PATH, 'utf8'));
  const ajv = new Ajv({ strict: false, allErrors: true });
  // ajv-formats is not a dependency: the three formats the schema uses, checked here.
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i);
  ajv.addFormat('uri', /^[a-z][a-z0-9+.-]*:[^\s]*$/i);
  ajv.addFormat('email', /^[^\s@]+@[^\s@]+$/);
  validator = ajv.compile(schema as object);
  return validator;
}

export function kcidbErrors(data: unknown): ErrorObject[] {
  const v = kcidbValidator();
  return v(data) ? [] : [...(v.errors ?? [])];
}

/** Throws with the first schema violations when `data` is not valid KCIDB v4. */
export function validateKcidb(data: unknown): asserts data is KcidbData {
  const errs = kcidbErrors(data);
  if (errs.length > 0) {
    throw new FaultlineError(
      `KCIDB export does not match the schema: ${errs
        .slice(0, 3)
        .map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`)
        .join('; ')}`,
    );
  }
}
