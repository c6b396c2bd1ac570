/**
 * A bisected culprit becomes a known issue (issue 22, LKFT's way): the night that named it writes
 * one known-issues file per kernel and config (known-issues/<kernel>.<config>.yaml in its
 * directory), and every later night of the plan hands those files to the jobs of that kernel and
 * config. The failure it explains is then `known` (board green, the issue listed with its culprit
 * and the mail to its author); when the test passes again the issue is `absent`: fixed? The file is
 * an ordinary known-issues file: a maintainer may edit it, or delete it to see the failure red.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { applyKnownIssues, parseKnownIssues, readKnownIssues, type KnownIssue } from '../results/known-issues.js';
import { nightlyEntries, type HistoryEntry, type HistoryNightlyEntry } from '../history/index.js';
import {
  readNightlyRecord,
  type Job,
  type LoadedJob,
  type NightlyBisect,
  type NightlyRecord,
} from '../results/nightly.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { splatTitlePattern } from './culprit-groups.js';

/** The plan's earlier nights (complete, unsharded, before tonight) in the history index, oldest first. */
export function earlierNightEntries(
  history: readonly HistoryEntry[],
  tonight: Pick<NightlyRecord, 'nightlyId' | 'planName' | 'startedAt'>,
): HistoryNightlyEntry[] {
  return nightlyEntries(history, tonight.planName).filter(
    (n) => n.nightlyId !== tonight.nightlyId && n.shard === undefined && n.complete && n.startedAt < tonight.startedAt,
  );
}

/** Those nights as recorded, with their directories; unreadable ones are left out. */
export async function earlierNights(
  history: readonly HistoryEntry[],
  resultsRoot: string,
  tonight: Pick<NightlyRecord, 'nightlyId' | 'planName' | 'startedAt'>,
): Promise<{ dir: string; record: NightlyRecord }[]> {
  const out: { dir: string; record: NightlyRecord }[] = [];
  for (const n of earlierNightEntries(history, tonight)) {
    const dir = join(resultsRoot, n.dir);
    const record = await readNightlyRecord(dir).catch(() => undefined);
    if (record) out.push({ dir, record });
  }
  return out;
}

/** The directory of a night's culprit known issues, relative to the night's directory. */
const CULPRIT_ISSUES_DIR = 'known-issues';

/** The file of one kernel and config's culprit known issues (names made safe for a path). */
export function culpritIssuesFile(nightDir: string, kernel: string, config: string): string {
  return join(nightDir, CULPRIT_ISSUES_DIR, `${encodeURIComponent(kernel)}.${encodeURIComponent(config)}.yaml`);
}

/** A glob that matches exactly this subtest id (known-issues globs know `*` and `?`). */
const exactGlob = (id: string): string => id.replace(/[*?]/g, '?');

/** The culprit mail's Subject, the issue's report; else the culprit's own subject. */
async function reportOf(nightDir: string, b: NightlyBisect): Promise<string> {
  const mail = b.mail !== undefined ? await readFile(join(nightDir, b.mail), 'utf8').catch(() => '') : '';
  const subject = /^Subject: (.*)$/m.exec(mail.split(/\r?\n\r?\n/)[0] ?? '')?.[1];
  return subject ?? `[faultline] ${b.culprit?.subject ?? b.signal.id}`;
}

/**
 * The known issues of one bisect that named a culprit: its failing tests as one issue, its new
 * splats as another (an issue matches subtests or splats, not both). Ids carry the culprit's hash.
 */
export async function culpritKnownIssues(nightDir: string, night: string, b: NightlyBisect): Promise<KnownIssue[]> {
  if (b.outcome !== 'culprit' || b.culprit === undefined) return [];
  const hash = b.culprit.hash.slice(0, 12);
  const common = {
    report: await reportOf(nightDir, b),
    culprit: 'code' as const,
  };
  const because = `broken by ${hash} ("${b.culprit.subject}", ${b.culprit.author}), bisected by nightly ${night}`;
  const tests = b.signals.filter((s) => s.kind === 'test').map((s) => s.id);
  const splats = b.signals.filter((s) => s.kind === 'splat').map((s) => s.id);
  const out: KnownIssue[] = [];
  if (tests.length > 0)
    out.push({
      id: `culprit-${hash}-${b.config}-tests`.replace(/[^A-Za-z0-9_.-]/g, '_'),
      title: `${tests.join(', ')}: ${because}`,
      ...common,
      match: { tests: tests.map(exactGlob), statuses: ['fail', 'error'] },
    });
  if (splats.length > 0)
    out.push({
      id: `culprit-${hash}-${b.config}-splats`.replace(/[^A-Za-z0-9_.-]/g, '_'),
      title: `kernel splat ${splats.join(' | ')}: ${because}`,
      ...common,
      match: { splat: splats.map((s) => `(?:${splatTitlePattern(s)})`).join('|') },
    });
  return out;
}

/** Write tonight's culprit known issues, one file per kernel and config; returns the files written. */
export async function writeCulpritKnownIssues(nightDir: string, record: NightlyRecord): Promise<string[]> {
  const byFile = new Map<string, KnownIssue[]>();
  for (const b of record.bisects ?? []) {
    const issues = await culpritKnownIssues(nightDir, record.nightlyId, b);
    if (issues.length === 0) continue;
    const file = culpritIssuesFile(nightDir, b.kernel, b.config);
    byFile.set(file, [...(byFile.get(file) ?? []), ...issues]);
  }
  if (byFile.size === 0) return [];
  await mkdir(join(nightDir, CULPRIT_ISSUES_DIR), { recursive: true });
  for (const [file, issues] of byFile) {
    const head = `# Culprits bisected by nightly ${record.nightlyId} of plan ${record.planName}: later nights of the plan\n# apply these to their jobs of this kernel and config. Delete the file to see the failures red again.\n`;
    const text = `${head}${stringify({ issues }, { lineWidth: 0 })}`;
    parseKnownIssues(text, file); // what later nights will read must be valid now
    await writeFileAtomic(file, text);
  }
  return [...byFile.keys()];
}

/**
 * The night's runs with the culprits it bisected itself applied as known issues (copies; the
 * records on disk keep what the jobs saw): KCIDB then reports each culprit as an issue with its
 * incidents on the failing tests, the night that found it included.
 */
export async function withOwnCulpritIssues(nightDir: string, runs: readonly LoadedJob[]): Promise<LoadedJob[]> {
  const filesFor = await earlierCulpritIssues([{ dir: nightDir }]);
  // Read once per kernel and config, however many jobs share them.
  const issuesOf = new Map<string, KnownIssue[]>();
  const out: LoadedJob[] = [];
  for (const r of runs) {
    const files = filesFor(r.job);
    if (files.length === 0) {
      out.push(r);
      continue;
    }
    const key = files.join('\0');
    const issues = issuesOf.get(key) ?? (await readKnownIssues(files));
    issuesOf.set(key, issues);
    const record = structuredClone(r.record);
    applyKnownIssues(record, issues);
    out.push({ ...r, record });
  }
  return out;
}

/**
 * The culprit known-issues files earlier nights wrote, per job: `filesFor(job)` lists those of the
 * job's kernel and config, oldest night first. An id two nights both wrote is kept once (the
 * first): the same culprit of the same failures.
 */
export async function earlierCulpritIssues(
  earlier: readonly { dir: string }[],
): Promise<(job: Pick<Job, 'kernel' | 'config'>) => string[]> {
  const files = new Map<string, string[]>();
  const seenIds = new Set<string>();
  for (const { dir } of earlier) {
    const names = await readdir(join(dir, CULPRIT_ISSUES_DIR)).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.yaml')).sort()) {
      const file = join(dir, CULPRIT_ISSUES_DIR, name);
      const ids = parseKnownIssues(await readFile(file, 'utf8'), file).map((k) => k.id);
      // Ids are unique across a run's known-issues files: a file naming one already given is left out.
      const again = ids.filter((id) => seenIds.has(id));
      if (again.length > 0) {
        if (again.length < ids.length) log.warn(`${file}: left out, it repeats known issue ${again[0] ?? ''}`);
        continue;
      }
      ids.forEach((id) => seenIds.add(id));
      files.set(name, [...(files.get(name) ?? []), file]);
    }
  }
  return (job) => {
    const name = `${encodeURIComponent(job.kernel)}.${encodeURIComponent(job.config)}.yaml`;
    return files.get(name) ?? [];
  };
}
