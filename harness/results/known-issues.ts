/**
 * Known issues: failures that are expected, each with a bug report and a culprit (LKFT's known
 * issues, KCIDB's issues and incidents). This module owns the concept: the YAML file format,
 * its schema, matching a run's results against it and the outcome a run records.
 *
 * A subtest (or kernel splat) a known issue matches keeps its real status and gains `known`
 * (the issue's id); the verdict leaves it out, so a run whose only failures are known passes
 * (--known-is-failure says otherwise). An issue whose test ran and passed is `absent`: fixed?
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JSONSchemaType } from 'ajv';
import { UsageError } from '../util/errors.js';
import { PROJECT_ROOT } from '../util/project.js';
import { lazyValidator } from '../util/schema.js';
import { parseYamlChecked, type LocatedYaml } from '../util/yaml-schema.js';
import { BACKINGS, STATUSES, type Backing, type RunRecord, type Status, type SubtestResult } from './types.js';

/** Whether a known issue matched tonight (present) or its tests passed (absent: fixed?). */
const ISSUE_STATES = ['present', 'absent'] as const;

/** Whose fault it is (KCIDB's issue culprit): the kernel's code, the test, or the harness. */
export type Culprit = 'code' | 'test' | 'harness';
const CULPRITS: readonly Culprit[] = ['code', 'test', 'harness'];

/** Versions compared by their numbers in order ("6.12.118+deb12-amd64" is 6.12.118). */
export interface VersionRange {
  /** Lowest version in scope (inclusive). */
  from?: string;
  /** First version out of scope (exclusive). */
  before?: string;
}

/** What results the issue explains. A subtest matches when every given field does. */
export interface KnownIssueMatch {
  /** Globs on subtest ids (`*` is any text, `/` included), e.g. "khugepaged*". */
  tests?: string[];
  /** The statuses it shows as (default fail, error, flaky): a pass never matches. */
  statuses?: Status[];
  /** Regex on the reason; for a subtest that was retried, every failed attempt's reason must match. */
  reason?: string;
  /**
   * Regex on the raw output of the program runs that produced the subtest (its program on its
   * backing: the planned run, a resume, a retry): for what the reason line does not say.
   */
  output?: string;
  /** Regex on a kernel splat's title: the issue matches splats instead of subtests. */
  splat?: string;
}

/** Where the issue applies; absent fields apply everywhere. */
export interface KnownIssueScope {
  /** The kernel release (uname -r). */
  kernel?: VersionRange;
  /** The kernel package's version (Debian kernels). */
  package?: VersionRange;
  /** Kernel config hashes (results.json kernel.configHash) or their prefixes. */
  configs?: string[];
  backings?: Backing[];
  suites?: string[];
}

export interface KnownIssue {
  id: string;
  title: string;
  /** Bug report: a URL, or the subject of the mail that reported it. */
  report: string;
  culprit: Culprit;
  match: KnownIssueMatch;
  scope?: KnownIssueScope;
  /** YYYY-MM-DD: after it, the run warns that the issue needs a look. */
  review_by?: string;
}

/** A known-issues file: known-issues/debian.yaml, or a user's --known-issues FILE. */
interface KnownIssuesFile {
  issues: KnownIssue[];
}

/** What a run records of each known issue that applied to it. */
export interface KnownIssueOutcome {
  id: string;
  title: string;
  report: string;
  culprit: Culprit;
  /** `present`: it matched a failure; `absent`: its tests ran and passed (fixed?). */
  state: (typeof ISSUE_STATES)[number];
  /** Subtest ids (or splat titles) it matched; for an absent issue, the subtests that passed. */
  where: string[];
}

/** The list faultline ships and applies by default (--no-known-issues turns it off). */
export const SHIPPED_KNOWN_ISSUES = join(PROJECT_ROOT, 'known-issues', 'debian.yaml');

const str = { type: 'string', minLength: 1 } as const;
const strings = { type: 'array', items: str, minItems: 1, nullable: true } as const;
const rangeSchema: JSONSchemaType<VersionRange> = {
  type: 'object',
  additionalProperties: false,
  required: [],
  properties: { from: { ...str, nullable: true }, before: { ...str, nullable: true } },
};
const optRange = { ...rangeSchema, nullable: true } as const;
const issueSchema: JSONSchemaType<KnownIssue> = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'title', 'report', 'culprit', 'match'],
  properties: {
    id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
    title: str,
    report: str,
    culprit: { type: 'string', enum: CULPRITS },
    match: {
      type: 'object',
      additionalProperties: false,
      required: [],
      properties: {
        tests: strings,
        statuses: { type: 'array', items: { type: 'string', enum: STATUSES }, minItems: 1, nullable: true },
        reason: { ...str, nullable: true },
        output: { ...str, nullable: true },
        splat: { ...str, nullable: true },
      },
    },
    scope: {
      type: 'object',
      additionalProperties: false,
      nullable: true,
      required: [],
      properties: {
        kernel: optRange,
        package: optRange,
        configs: strings,
        backings: { type: 'array', items: { type: 'string', enum: BACKINGS }, minItems: 1, nullable: true },
        suites: strings,
      },
    },
    review_by: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', nullable: true },
  },
};
const fileSchema: JSONSchemaType<KnownIssuesFile> = {
  type: 'object',
  additionalProperties: false,
  required: ['issues'],
  properties: { issues: { type: 'array', items: issueSchema } },
};
const validateFile = lazyValidator<KnownIssuesFile>(fileSchema);

/** The outcome's schema, for results.json (record.ts). */
export const knownIssueOutcomeSchema: JSONSchemaType<KnownIssueOutcome> = {
  type: 'object',
  required: ['id', 'title', 'report', 'culprit', 'state', 'where'],
  properties: {
    id: str,
    title: str,
    report: str,
    culprit: { type: 'string', enum: CULPRITS },
    state: { type: 'string', enum: ISSUE_STATES },
    where: { type: 'array', items: { type: 'string' } },
  },
};

/** What the schema cannot say: regexes compile, a match names tests or a splat, ids are unique. */
function checkIssues(issues: readonly KnownIssue[], located: LocatedYaml, seen: Set<string>): void {
  const bad = (pointer: string, problem: string): UsageError =>
    new UsageError(`${located.file}:${located.at(pointer)}: invalid known-issues file: ${pointer} ${problem}`);
  issues.forEach((k, i) => {
    const at = `/issues/${i}`;
    if (seen.has(k.id)) throw bad(`${at}/id`, `'${k.id}' is used twice: ids must be unique`);
    seen.add(k.id);
    if (!k.match.tests && k.match.splat === undefined)
      throw bad(`${at}/match`, 'must name tests (globs on subtest ids) or a splat (regex on the title)');
    if (k.match.output !== undefined && k.match.splat !== undefined)
      throw bad(`${at}/match/output`, 'is a match on subtests: it does not go with splat');
    for (const key of ['reason', 'output', 'splat'] as const) {
      const re = k.match[key];
      if (re === undefined) continue;
      try {
        new RegExp(re);
      } catch (e) {
        throw bad(`${at}/match/${key}`, `is not a valid regex: ${(e as Error).message}`);
      }
    }
  });
}

/** Parse a known-issues file's text; a bad one is a UsageError naming FILE:LINE:COL. */
export function parseKnownIssues(text: string, file: string, seen = new Set<string>()): KnownIssue[] {
  const { value, located } = parseYamlChecked(text, file, validateFile, 'known-issues file');
  checkIssues(value.issues, located, seen);
  return value.issues;
}

/** Read known-issues files in order; an id may appear once across them all. */
export async function readKnownIssues(files: readonly string[]): Promise<KnownIssue[]> {
  const seen = new Set<string>();
  const all: KnownIssue[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new UsageError(
        `cannot read known-issues file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}: pass a YAML file with an issues: list`,
      );
    }
    all.push(...parseKnownIssues(text, file, seen));
  }
  return all;
}

/** The known issues whose review_by date is before `today` (YYYY-MM-DD). */
export function overdueKnownIssues(issues: readonly KnownIssue[], today: string): KnownIssue[] {
  return issues.filter((k) => k.review_by !== undefined && k.review_by < today);
}

function versionNumbers(v: string): number[] {
  return (/^\d+(?:\.\d+)*/.exec(v)?.[0] ?? '').split('.').filter(Boolean).map(Number);
}

function compareVersions(a: string, b: string): number {
  const x = versionNumbers(a);
  const y = versionNumbers(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function inRange(version: string | undefined, range: VersionRange | undefined): boolean {
  if (range === undefined) return true;
  if (version === undefined) return false;
  if (range.from !== undefined && compareVersions(version, range.from) < 0) return false;
  return range.before === undefined || compareVersions(version, range.before) < 0;
}

/** Whether the issue applies to this run's kernel (release, package, config). */
function kernelInScope(k: KnownIssue, r: Pick<RunRecord, 'kernel'>): boolean {
  const s = k.scope;
  if (s === undefined) return true;
  const hash = r.kernel.configHash;
  return (
    inRange(r.kernel.release, s.kernel) &&
    inRange(r.kernel.packageVersion, s.package) &&
    (s.configs === undefined || (hash !== undefined && s.configs.some((c) => hash.startsWith(c))))
  );
}

function subtestInScope(k: KnownIssue, t: SubtestResult): boolean {
  const s = k.scope;
  return (
    (s?.suites === undefined || s.suites.includes(t.suite)) &&
    (s?.backings === undefined || (t.backing !== undefined && s.backings.includes(t.backing)))
  );
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

function namesTest(k: KnownIssue, id: string | undefined): boolean {
  const tests = k.match.tests;
  return tests === undefined || (id !== undefined && tests.some((g) => globToRegExp(g).test(id)));
}

const FAILING: readonly Status[] = ['fail', 'error', 'flaky'];

/**
 * Its failure, as the issue describes it: the status, and the reason it came out with; a flaky
 * subtest passed in the end, so each of its failed attempts must have died of the issue's
 * reason (nothing else may pass as a known flake).
 */
function failureMatches(k: KnownIssue, t: SubtestResult, outputOf: (t: SubtestResult) => string): boolean {
  if (!(k.match.statuses ?? FAILING).includes(t.status) || t.status === 'pass') return false;
  if (k.match.output !== undefined && !new RegExp(k.match.output, 'm').test(outputOf(t))) return false;
  if (k.match.reason === undefined) return true;
  const re = new RegExp(k.match.reason);
  if (t.status !== 'flaky') return re.test(t.reason ?? '');
  const failed = (t.attempts ?? []).filter((a) => a.status === 'fail' || a.status === 'error');
  return failed.length > 0 && failed.every((a) => re.test(a.reason ?? ''));
}

/** Whether a program run can have produced the subtest: its program, on its backing or on all (one run for every memory). */
function producedBy(t: SubtestResult, p: RunRecord['programs'][number]): boolean {
  return p.program === t.program && (p.backing === undefined || p.backing === t.backing);
}

/**
 * Mark the run's subtests and splats that known issues explain (`known`: the issue's id) and
 * record each issue that applied: present where it matched, absent where its tests passed.
 * The first issue (in file order) that matches a result owns it. Summary and verdict are the
 * caller's to recompute. `outputs`: the raw output of the run's programs by their outputFile
 * (programOutputs), for issues that match on output; without it those match nothing.
 */
export function applyKnownIssues(
  r: RunRecord,
  issues: readonly KnownIssue[],
  outputs: ReadonlyMap<string, string> = new Map(),
): void {
  // Joined once per program and backing: every output issue and failing subtest of it reuse it.
  const joined = new Map<string, string>();
  const outputOf = (t: SubtestResult): string => {
    const key = `${t.program}\0${t.backing ?? ''}`;
    const text =
      joined.get(key) ??
      r.programs
        .filter((p) => producedBy(t, p))
        .map((p) => outputs.get(p.outputFile) ?? '')
        .join('\n');
    joined.set(key, text);
    return text;
  };
  const outcomes: KnownIssueOutcome[] = [];
  for (const k of issues.filter((i) => kernelInScope(i, r))) {
    const where: string[] = [];
    const passed: string[] = [];
    if (k.match.splat !== undefined) {
      const re = new RegExp(k.match.splat);
      for (const sp of r.splats)
        if (sp.known === undefined && re.test(sp.title) && namesTest(k, sp.subtest ?? sp.test)) {
          sp.known = k.id;
          where.push(sp.title);
        }
    } else {
      for (const t of r.subtests) {
        if (!subtestInScope(k, t) || !namesTest(k, t.id)) continue;
        if (t.status === 'pass') passed.push(t.id);
        else if (t.known === undefined && failureMatches(k, t, outputOf)) {
          t.known = k.id;
          where.push(t.id);
        }
      }
    }
    const { id, title, report, culprit } = k;
    if (where.length > 0) outcomes.push({ id, title, report, culprit, state: 'present', where });
    else if (passed.length > 0) outcomes.push({ id, title, report, culprit, state: 'absent', where: passed });
  }
  // Issues applied later (a night's own culprits, at export) join those the run applied.
  if (outcomes.length > 0)
    r.knownIssues = [...(r.knownIssues ?? []).filter((o) => !outcomes.some((n) => n.id === o.id)), ...outcomes];
}

/**
 * The raw outputs applyKnownIssues needs, read from the run directory: only when an issue matches
 * on output, and only the programs that produced a failing subtest (bounded: the guest output
 * was cut at its limit when captured).
 */
export async function programOutputs(
  r: RunRecord,
  dir: string,
  issues: readonly KnownIssue[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!issues.some((k) => k.match.output !== undefined)) return out;
  const failing = r.subtests.filter((t) => FAILING.includes(t.status));
  for (const p of r.programs)
    if (failing.some((t) => producedBy(t, p)))
      out.set(p.outputFile, await readFile(join(dir, p.outputFile), 'utf8').catch(() => ''));
  return out;
}
