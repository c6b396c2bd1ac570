/**
 * The history index: results/index.jsonl, one JSON object per line, appended when a run or a
 * nightly completes. JSON lines is enough here: a year of nightlies is tens of MB at most, the
 * queries are scans, and a line written by a killed process is simply skipped on read. The run
 * directories stay the source of truth; `rebuildHistory` regenerates the index from them.
 */
import { count, lazyValidator, optStr, str } from '../util/schema.js';
import { appendFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { readRunRecord, statusSchema, verdictSchema } from '../results/record.js';
import type { JSONSchemaType } from 'ajv';
import {
  BACKINGS,
  GUEST_RAMS,
  type Backing,
  type GuestRam,
  type RunRecord,
  type Status,
  type Verdict,
} from '../results/types.js';
import { errorMessage } from '../util/errors.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { readNightlyRecord, type NightlyRecord } from '../results/nightly.js';

const INDEX_FILE = 'index.jsonl';

/** [test id, status, metrics as [name, value, unit]] — compact: 1,000 tests x a year of nights. */
export type HistoryTest = [string, Status, Array<[string, number, string]>?];

export interface HistoryRunEntry {
  kind: 'run';
  runId: string;
  /** Run directory relative to the results root. */
  dir: string;
  startedAt: string;
  durationMs: number;
  verdict: Verdict;
  kernel: { source: string; path: string; release?: string; packageVersion?: string; configHash?: string };
  /** Absent for a run without a guest. */
  guestRam?: GuestRam;
  suites: string[];
  backings: Backing[];
  infraError?: string;
  splats: number;
  /** Set for runs that were a nightly job. */
  nightlyId?: string;
  planName?: string;
  jobKey?: string;
  kernelName?: string;
  config?: string;
  tests: HistoryTest[];
  /** The known issues the run recorded, [id, state]: when each occurred, night after night. */
  known?: HistoryKnownIssue[];
}

/** [known issue id, present (matched a failure) | absent (its tests ran and passed)]. */
export type HistoryKnownIssue = [string, 'present' | 'absent'];

export interface HistoryNightlyEntry {
  kind: 'nightly';
  nightlyId: string;
  dir: string;
  planName: string;
  planHash: string;
  startedAt: string;
  finishedAt?: string;
  complete: boolean;
  shard?: string;
  jobs: number;
  verdicts: Record<'pass' | 'fail' | 'error', number>;
  tests: Record<Status, number>;
  /** The culprits the night's own loop named (bisected, or known from an earlier night's bisect). */
  culprits?: HistoryCulprit[];
}

/** A culprit beside the regression it explains: `faultline history` prints it there. */
export interface HistoryCulprit {
  kernel: string;
  config: string;
  /** Subtest id, or splat title. */
  signal: string;
  hash: string;
  subject: string;
  /** The night whose bisect named it (this one, or an earlier one for a failure still there). */
  since: string;
}

export type HistoryEntry = HistoryRunEntry | HistoryNightlyEntry;

const testSchema: JSONSchemaType<HistoryTest> = {
  type: 'array',
  minItems: 2,
  maxItems: 3,
  items: [
    { type: 'string', minLength: 1 },
    statusSchema,
    {
      type: 'array',
      nullable: true,
      items: {
        type: 'array',
        minItems: 3,
        maxItems: 3,
        items: [str, { type: 'number' }, str],
      },
    },
  ],
};

const knownSchema: JSONSchemaType<HistoryKnownIssue> = {
  type: 'array',
  minItems: 2,
  maxItems: 2,
  items: [
    { type: 'string', minLength: 1 },
    { type: 'string', enum: ['present', 'absent'] },
  ],
};

const runEntrySchema: JSONSchemaType<HistoryRunEntry> = {
  type: 'object',
  required: [
    'kind',
    'runId',
    'dir',
    'startedAt',
    'durationMs',
    'verdict',
    'kernel',
    'suites',
    'backings',
    'splats',
    'tests',
  ],
  properties: {
    kind: { type: 'string', const: 'run' },
    runId: { type: 'string', minLength: 1 },
    dir: str,
    startedAt: str,
    durationMs: { type: 'number' },
    verdict: verdictSchema,
    kernel: {
      type: 'object',
      required: ['source', 'path'],
      properties: { source: str, path: str, release: optStr, packageVersion: optStr, configHash: optStr },
    },
    guestRam: { type: 'string', enum: GUEST_RAMS, nullable: true },
    suites: { type: 'array', items: str },
    backings: { type: 'array', items: { type: 'string', enum: BACKINGS } },
    infraError: optStr,
    splats: count,
    nightlyId: optStr,
    planName: optStr,
    jobKey: optStr,
    kernelName: optStr,
    config: optStr,
    tests: { type: 'array', items: testSchema },
    known: { type: 'array', items: knownSchema, nullable: true },
  },
};

const nightlyEntrySchema: JSONSchemaType<HistoryNightlyEntry> = {
  type: 'object',
  required: ['kind', 'nightlyId', 'dir', 'planName', 'planHash', 'startedAt', 'complete', 'jobs', 'verdicts', 'tests'],
  properties: {
    kind: { type: 'string', const: 'nightly' },
    nightlyId: { type: 'string', minLength: 1 },
    dir: str,
    planName: str,
    planHash: str,
    startedAt: str,
    finishedAt: optStr,
    complete: { type: 'boolean' },
    shard: optStr,
    jobs: count,
    verdicts: {
      type: 'object',
      required: ['pass', 'fail', 'error'],
      properties: { pass: count, fail: count, error: count },
    },
    tests: {
      type: 'object',
      required: ['pass', 'fail', 'skip', 'error', 'flaky'],
      properties: { pass: count, fail: count, skip: count, error: count, flaky: count },
    },
    culprits: {
      type: 'array',
      nullable: true,
      items: {
        type: 'object',
        required: ['kernel', 'config', 'signal', 'hash', 'subject', 'since'],
        properties: { kernel: str, config: str, signal: str, hash: str, subject: str, since: str },
      },
    },
  },
};

const entrySchema: JSONSchemaType<HistoryEntry> = { oneOf: [runEntrySchema, nightlyEntrySchema] };
const validateEntry = lazyValidator<HistoryEntry>(entrySchema);

export function indexPath(resultsRoot: string): string {
  return join(resultsRoot, INDEX_FILE);
}

export interface RunContext {
  /** The nightly job's guest RAM, for a job that never booted its guest. */
  guestRam?: GuestRam;
  nightlyId?: string;
  planName?: string;
  jobKey?: string;
  kernelName?: string;
  config?: string;
}

export function runEntry(record: RunRecord, dirRelative: string, ctx: RunContext = {}): HistoryRunEntry {
  const k = record.kernel;
  return {
    kind: 'run',
    runId: record.runId,
    dir: dirRelative,
    startedAt: record.startedAt,
    durationMs: record.durationMs,
    verdict: record.verdict,
    kernel: {
      source: k.source,
      path: k.path,
      ...(k.release !== undefined ? { release: k.release } : {}),
      ...(k.packageVersion !== undefined ? { packageVersion: k.packageVersion } : {}),
      ...(k.configHash !== undefined ? { configHash: k.configHash } : {}),
    },
    ...(record.qemu ? { guestRam: record.qemu.guestRam } : {}),
    suites: record.suites,
    backings: record.backings,
    ...(record.infraError !== undefined ? { infraError: record.infraError } : {}),
    splats: record.splats.length,
    ...ctx,
    tests: record.subtests.map((t): HistoryTest =>
      t.metrics && t.metrics.length > 0
        ? [t.id, t.status, t.metrics.map((m): [string, number, string] => [m.name, m.value, m.unit])]
        : [t.id, t.status],
    ),
    ...(record.knownIssues?.length ? { known: record.knownIssues.map((k): HistoryKnownIssue => [k.id, k.state]) } : {}),
  };
}

/** Append entries as whole lines in one write (O_APPEND: concurrent appenders do not interleave lines). */
export async function appendHistory(resultsRoot: string, entries: readonly HistoryEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await mkdir(resultsRoot, { recursive: true });
  await appendFile(indexPath(resultsRoot), entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
}

/** Read the index; damaged lines are skipped; a later entry for the same run/nightly replaces an earlier one. */
export async function readHistory(resultsRoot: string): Promise<HistoryEntry[]> {
  const p = indexPath(resultsRoot);
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    return [];
  }
  const byId = new Map<string, HistoryEntry>();
  let bad = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      bad++;
      continue;
    }
    if (!validateEntry(v)) {
      bad++;
      continue;
    }
    const e = v;
    const id = e.kind === 'run' ? `run:${e.runId}` : `nightly:${e.nightlyId}`;
    byId.delete(id);
    byId.set(id, e);
  }
  if (bad > 0) log.warn(`${p}: skipped ${bad} damaged line(s); 'faultline history --rebuild' regenerates the index`);
  return [...byId.values()].sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
}

export function nightlyEntries(entries: readonly HistoryEntry[], planName?: string): HistoryNightlyEntry[] {
  return entries.filter(
    (e): e is HistoryNightlyEntry => e.kind === 'nightly' && (planName === undefined || e.planName === planName),
  );
}

export function runEntries(entries: readonly HistoryEntry[]): HistoryRunEntry[] {
  return entries.filter((e): e is HistoryRunEntry => e.kind === 'run');
}

/** The complete, unsharded (or merged) nightly of the same plan that started last before `before`. */
export function previousNightly(
  entries: readonly HistoryEntry[],
  planName: string,
  before: string,
  excludeId?: string,
): HistoryNightlyEntry | undefined {
  const cands = nightlyEntries(entries, planName).filter(
    (n) => n.complete && n.shard === undefined && n.startedAt < before && n.nightlyId !== excludeId,
  );
  return cands[cands.length - 1];
}

/** Median duration of each job key over its last `window` runs: the input to shard balancing. */
export function pastDurations(entries: readonly HistoryEntry[], planName?: string, window = 5): Map<string, number> {
  const byKey = new Map<string, number[]>();
  for (const e of runEntries(entries)) {
    if (e.jobKey === undefined || (planName !== undefined && e.planName !== planName) || e.infraError !== undefined)
      continue;
    const xs = byKey.get(e.jobKey) ?? [];
    xs.push(e.durationMs);
    byKey.set(e.jobKey, xs);
  }
  const out = new Map<string, number>();
  for (const [k, xs] of byKey) {
    const last = xs.slice(-window).sort((a, b) => a - b);
    const m = last[Math.floor(last.length / 2)];
    if (m !== undefined) out.set(k, m);
  }
  return out;
}

/** Context string nightly comparisons group tests by: plan kernel + config + guest RAM. */
export function nightlyContext(kernelName: string, config: string, guestRam: string): string {
  return `${kernelName}+${config}+${guestRam}`;
}

export interface TestHistoryRow {
  startedAt: string;
  runId: string;
  nightlyId?: string;
  kernel: string;
  context: string;
  id: string;
  status: Status;
  metrics: Array<[string, number, string]>;
  dir: string;
  /** The culprit the night named for this failing test (its commit, subject, the night that bisected it). */
  culprit?: Pick<HistoryCulprit, 'hash' | 'subject' | 'since'>;
}

/** The culprits of each night, by night id, kernel, config and signal. */
function culpritIndex(entries: readonly HistoryEntry[]): Map<string, HistoryCulprit> {
  const out = new Map<string, HistoryCulprit>();
  for (const n of nightlyEntries(entries))
    for (const c of n.culprits ?? []) out.set(`${n.nightlyId}\0${c.kernel}\0${c.config}\0${c.signal}`, c);
  return out;
}

/** A test's status and metrics over time: exact id match, or substring when nothing matches exactly. */
export function testHistory(
  entries: readonly HistoryEntry[],
  test: string,
  opts: { kernel?: string; limit?: number } = {},
): TestHistoryRow[] {
  const runs = runEntries(entries).filter(
    (r) => opts.kernel === undefined || r.kernelName === opts.kernel || r.kernel.release === opts.kernel,
  );
  const culprits = culpritIndex(entries);
  const culpritOf = (r: HistoryRunEntry, id: string, status: Status) => {
    if (status === 'pass' || status === 'skip' || r.nightlyId === undefined) return undefined;
    const c = culprits.get(`${r.nightlyId}\0${r.kernelName ?? ''}\0${r.config ?? ''}\0${id}`);
    return c && { hash: c.hash, subject: c.subject, since: c.since };
  };
  const collect = (match: (id: string) => boolean): TestHistoryRow[] => {
    const rows: TestHistoryRow[] = [];
    for (const r of runs) {
      for (const [id, status, metrics] of r.tests) {
        if (!match(id)) continue;
        const culprit = culpritOf(r, id, status);
        rows.push({
          startedAt: r.startedAt,
          runId: r.runId,
          ...(r.nightlyId !== undefined ? { nightlyId: r.nightlyId } : {}),
          kernel: r.kernelName ?? r.kernel.release ?? r.kernel.path,
          context:
            r.kernelName !== undefined
              ? nightlyContext(r.kernelName, r.config ?? '', r.guestRam ?? 'none')
              : `guest_ram=${r.guestRam ?? 'none'}`,
          id,
          status,
          metrics: metrics ?? [],
          dir: r.dir,
          ...(culprit ? { culprit } : {}),
        });
      }
    }
    return rows;
  };
  let rows = collect((id) => id === test);
  if (rows.length === 0) rows = collect((id) => id.includes(test));
  return opts.limit !== undefined ? rows.slice(-opts.limit) : rows;
}

async function findFiles(root: string, name: string, depth: number): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, d: number): Promise<void> {
    let ents;
    try {
      ents = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (e.isFile() && e.name === name) out.push(join(dir, e.name));
      else if (e.isDirectory() && d > 0) await walk(join(dir, e.name), d - 1);
    }
  }
  await walk(root, depth);
  return out.sort();
}

/**
 * Regenerate index.jsonl from the run and nightly directories under the results root. Runs that
 * belong to a nightly get their job context from nightly.json.
 */
export async function rebuildHistory(
  resultsRoot: string,
): Promise<{ runs: number; nightlies: number; skipped: number }> {
  const entries: HistoryEntry[] = [];
  const nightlyRuns = new Set<string>();
  let skipped = 0;
  for (const nf of await findFiles(resultsRoot, 'nightly.json', 3)) {
    const ndir = nf.slice(0, -'/nightly.json'.length);
    try {
      const rec = await readNightlyRecord(ndir);
      const runs: HistoryRunEntry[] = [];
      for (const job of rec.jobs) {
        if (job.state !== 'done' || job.runDir === undefined) continue;
        const rdir = join(ndir, job.runDir);
        nightlyRuns.add(rdir);
        try {
          const r = await readRunRecord(join(rdir, 'results.json'));
          runs.push(
            runEntry(r, relative(resultsRoot, rdir), {
              nightlyId: rec.nightlyId,
              planName: rec.planName,
              jobKey: job.key,
              kernelName: job.kernel,
              config: job.config,
              guestRam: job.guestRam,
            }),
          );
        } catch (e) {
          skipped++;
          log.warn(errorMessage(e));
        }
      }
      entries.push(...runs, nightlySummaryEntry(rec, relative(resultsRoot, ndir), runs));
    } catch (e) {
      skipped++;
      log.warn(errorMessage(e));
    }
  }
  for (const rf of await findFiles(resultsRoot, 'results.json', 4)) {
    const rdir = rf.slice(0, -'/results.json'.length);
    if (nightlyRuns.has(rdir) || rdir.includes('/runs/')) continue;
    try {
      const r = await readRunRecord(rf);
      entries.push(runEntry(r, relative(resultsRoot, rdir)));
    } catch (e) {
      skipped++;
      log.warn(errorMessage(e));
    }
  }
  entries.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
  await writeFileAtomic(
    indexPath(resultsRoot),
    entries.map((e) => JSON.stringify(e)).join('\n') + (entries.length ? '\n' : ''),
  );
  return {
    runs: entries.filter((e) => e.kind === 'run').length,
    nightlies: entries.filter((e) => e.kind === 'nightly').length,
    skipped,
  };
}

export function nightlySummaryEntry(
  rec: NightlyRecord,
  dirRelative: string,
  runs: readonly HistoryRunEntry[],
): HistoryNightlyEntry {
  const verdicts = { pass: 0, fail: 0, error: 0 };
  for (const j of rec.jobs) if (j.verdict !== undefined) verdicts[j.verdict]++;
  const tests: Record<Status, number> = { pass: 0, fail: 0, skip: 0, error: 0, flaky: 0 };
  for (const r of runs) for (const t of r.tests) tests[t[1]]++;
  const culprits = (rec.bisects ?? []).flatMap((b): HistoryCulprit[] =>
    b.culprit
      ? b.signals.map((s) => ({
          kernel: b.kernel,
          config: b.config,
          signal: s.id,
          hash: b.culprit?.hash ?? '',
          subject: b.culprit?.subject ?? '',
          since: b.since ?? rec.nightlyId,
        }))
      : [],
  );
  return {
    kind: 'nightly',
    nightlyId: rec.nightlyId,
    dir: dirRelative,
    planName: rec.planName,
    planHash: rec.planHash,
    startedAt: rec.startedAt,
    ...(rec.finishedAt !== undefined ? { finishedAt: rec.finishedAt } : {}),
    complete: rec.complete,
    ...(rec.shard ? { shard: `${rec.shard.index}/${rec.shard.count}` } : {}),
    jobs: rec.jobs.length,
    verdicts,
    tests,
    ...(culprits.length > 0 ? { culprits } : {}),
  };
}
