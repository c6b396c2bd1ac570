import { mkdir, readFile, realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { compareRuns, type Comparison, type CompareRunsOptions } from '../analysis/compare.js';
import { validateRunRecord } from '../results/record.js';
import type { RunRecord, Status } from '../results/types.js';
import { FaultlineError, UsageError, errorMessage } from '../util/errors.js';
import { cacheDir, exists, sha256, writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { Git, type CommitInfo } from '../vcs/git.js';
import { log } from '../util/log.js';
import { readJsonFile } from '../util/schema.js';
import { parseMbox, type MailPatch } from './mbox.js';
import { formatSeriesReport } from './report.js';
import { formatSeriesReply } from './reply.js';
import { stableStringify } from '../util/stable-json.js';
import type { RevisionTester } from '../revision/tester.js';
import type { ResultSettings } from '../revision/types.js';
import type { PatchRecord, SeriesRecord, TestSummary } from './types.js';
import { parseDiagnostics } from '../toolchain/diagnostics.js';
import { WarningLedger, logCoversTouched } from './warnings.js';

export interface SeriesOptions {
  repo: string;
  /** Required with --mbox; with --range it defaults to the range's start. */
  base?: string;
  mbox?: string;
  range?: string;
  resultsDir: string;
  worktree?: string;
  keepWorktree?: boolean;
  /** Test every patch, not only the tip. */
  each?: boolean;
  /** Runs per tested revision (metric statistics need >= 3). */
  repeat?: number;
  /** Relative change beyond which a significant metric change is flagged (default 0.05). */
  threshold?: number;
  alpha?: number;
  statTest?: 'mann-whitney' | 'welch';
  /** New warnings do not make the series regress (still reported). */
  allowWarnings?: boolean;
  /** Reuse base test results from the cache (default true). */
  baseCache?: boolean;
  /** Skip testing (build-only validation). */
  noTests?: boolean;
}

interface PlannedPatch {
  subject: string;
  messageId?: string;
  author?: string;
  /** mbox: the decoded mail to git am. range: the commit to check out or cherry-pick. */
  mail?: MailPatch;
  commit?: CommitInfo;
}

const STATUS_ZERO = (): Record<Status, number> => ({ pass: 0, fail: 0, skip: 0, error: 0, flaky: 0 });

function summarizeRuns(records: readonly RunRecord[], cached = false): TestSummary {
  const counts = STATUS_ZERO();
  for (const r of records) for (const t of r.subtests) counts[t.status]++;
  return {
    runs: records.length,
    runIds: records.map((r) => r.runId),
    counts,
    verdicts: records.map((r) => r.verdict),
    splats: records.reduce((n, r) => n + r.splats.length, 0),
    ...(cached ? { cached } : {}),
  };
}

/** Validate, apply, build and test a patch series; writes results.json, report.txt, junit.xml and, for an mbox, reply.eml. */
export async function runSeries<A>(opts: SeriesOptions, tester: RevisionTester<A>): Promise<SeriesRecord> {
  const t0 = Date.now();
  if ((opts.mbox === undefined) === (opts.range === undefined))
    throw new UsageError('give the series as exactly one of --mbox FILE or --range A..B');
  const repeat = opts.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1)
    throw new UsageError(`--repeat must be a positive integer, got ${repeat}`);
  const user = new Git(opts.repo);
  if (!(await exists(opts.repo)) || !(await user.isRepo()))
    throw new UsageError(`${opts.repo} is not a git checkout: pass the kernel tree with --kernel-src`);
  const repo = await realpath(opts.repo);
  const resultsDir = resolve(opts.resultsDir);
  await mkdir(resultsDir, { recursive: true });

  const { baseRef, planned, source, warnings } = await planSeries(opts, user, resultsDir);
  const base = await user.resolveCommit(baseRef);
  const baseInfo = await user.commit(base);
  for (const w of warnings) log.warn(w);

  // ---- worktree at the base ---------------------------------------------------------------
  const wtPath = resolve(opts.worktree ?? join(resultsDir, 'worktree'));
  if (await exists(wtPath)) throw new UsageError(`${wtPath} already exists: remove it or pass another --worktree`);
  const wt = await user.worktreeAdd(wtPath, base);
  const run: SeriesRun<A> = {
    opts,
    tester,
    wt,
    base,
    repeat,
    planned,
    patches: unreachedPatchRecords(planned),
    cmpOpts: {
      ...(opts.threshold !== undefined ? { threshold: opts.threshold } : {}),
      ...(opts.alpha !== undefined ? { alpha: opts.alpha } : {}),
      ...(opts.statTest ? { test: opts.statTest } : {}),
    },
    ledger: new WarningLedger(),
    timing: { baseBuildMs: 0, patchBuildMs: [], testMs: 0 },
    problems: [],
    patchIds: [],
    baseRecords: [],
  };
  try {
    log.info(`series: ${planned.length} patches on ${base.slice(0, 12)} ("${baseInfo.subject}")`);
    await buildAndTestBase(run);
    await applyPatches(run);
  } finally {
    if (!opts.keepWorktree) await user.worktreeRemove(wt.dir);
  }
  return writeResults(run, { repo, baseRef, baseInfo, source, t0 }, resultsDir);
}

/** The series record from a finished run: results.json, report.txt, junit.xml and, for an mbox, reply.eml. */
async function writeResults<A>(
  run: SeriesRun<A>,
  o: { repo: string; baseRef: string; baseInfo: CommitInfo; source: SeriesRecord['source']; t0: number },
  resultsDir: string,
): Promise<SeriesRecord> {
  const { opts, tester, base, planned, repeat } = run;
  const comparison = run.tipRecords ? compareTip(run, run.tipRecords) : undefined;
  const finished = Date.now();
  const record: SeriesRecord = {
    schema: 'faultline.series/1',
    repo: o.repo,
    base: { hash: base, subject: o.baseInfo.subject, ref: o.baseRef },
    source: o.source,
    patchsetHash: sha256([base, ...run.patchIds].join('\n')),
    messageIds: planned.map((p) => p.messageId).filter((m): m is string => m !== undefined),
    ...(run.tip ? { tip: run.tip } : {}),
    patches: run.patches,
    ...(run.baseBuild ? { baseBuild: run.baseBuild } : {}),
    ...(run.baseTests ? { baseTests: run.baseTests } : {}),
    tester: tester.runner.describe(),
    builder: tester.builder.describe(),
    repeat,
    each: opts.each === true,
    ...(comparison ? { comparison } : {}),
    problems: run.problems,
    verdict: run.problems.length ? 'regressed' : 'clean',
    startedAt: new Date(o.t0).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - o.t0,
    timing: { ...run.timing, totalMs: finished - o.t0 },
  };
  await writeJsonAtomic(join(resultsDir, 'results.json'), record);
  await writeFileAtomic(join(resultsDir, 'report.txt'), formatSeriesReport(record));
  const reply = formatSeriesReply(record, await patchMails(planned));
  if (reply) await writeFileAtomic(join(resultsDir, 'reply.eml'), reply);
  return record;
}

/** Each mbox patch's decoded mail (the one git am applied) by its index in the series, for quoting its hunks. */
async function patchMails(planned: readonly PlannedPatch[]): Promise<Map<number, string>> {
  const mails = new Map<number, string>();
  for (const [i, p] of planned.entries()) if (p.mail) mails.set(i + 1, await readFile(p.mail.file, 'utf8'));
  return mails;
}

/** The patches to apply, from the mbox or the commit range, and the ref they apply to. */
async function planSeries(
  opts: SeriesOptions,
  user: Git,
  resultsDir: string,
): Promise<{
  baseRef: string;
  planned: PlannedPatch[];
  source: SeriesRecord['source'];
  warnings: string[];
}> {
  if (opts.mbox !== undefined) {
    if (opts.base === undefined) throw new UsageError('--mbox needs --base REV: the commit the series applies to');
    const parsed = await parseMbox(resolve(opts.mbox), join(resultsDir, 'mails'));
    for (const s of parsed.skipped) log.info(`mbox: skipping "${s.subject}": ${s.reason}`);
    return {
      baseRef: opts.base,
      planned: parsed.patches.map((p) => ({
        subject: p.subject,
        mail: p,
        ...(p.messageId ? { messageId: p.messageId } : {}),
        ...(p.from ? { author: p.from } : {}),
      })),
      source: {
        kind: 'mbox',
        file: resolve(opts.mbox),
        ...(parsed.root ? { thread: parsed.root } : {}),
        ...(parsed.cover
          ? {
              cover: {
                subject: parsed.cover.subject,
                ...(parsed.cover.messageId ? { messageId: parsed.cover.messageId } : {}),
              },
            }
          : {}),
      },
      warnings: [...parsed.warnings],
    };
  }
  const range = opts.range ?? '';
  const m = /^([^.\s]+)\.\.([^.\s]+)$/.exec(range);
  if (!m?.[1] || !m[2]) throw new UsageError(`--range '${range}' is not A..B: e.g. --range v6.12..my-series`);
  const from = await user.resolveCommit(m[1]);
  const to = await user.resolveCommit(m[2]);
  const all = await user.log(`${from}..${to}`);
  if (all.length === 0) throw new UsageError(`--range ${range} holds no commits`);
  const merges = all.filter((c) => c.parents.length > 1);
  if (merges.length)
    throw new UsageError(`--range ${range} contains merge ${merges[0]?.hash.slice(0, 12)}: a series must be linear`);
  return {
    baseRef: opts.base ?? from,
    planned: all.map((c) => ({ subject: c.subject, commit: c, author: `${c.authorName} <${c.authorEmail}>` })),
    source: { kind: 'range', range },
    warnings: [],
  };
}

/** One record per patch, as if the series stopped before it; the patch phase fills them in. */
function unreachedPatchRecords(planned: readonly PlannedPatch[]): PatchRecord[] {
  return planned.map((p, i) => ({
    index: i + 1,
    total: planned.length,
    subject: p.subject,
    files: [],
    apply: { ok: false, reason: 'not reached' },
    ...(p.messageId ? { messageId: p.messageId } : {}),
    ...(p.author ? { author: p.author } : {}),
  }));
}

/** A series run in progress: its inputs, and what the base and patch phases record. */
interface SeriesRun<A> {
  readonly opts: SeriesOptions;
  readonly tester: RevisionTester<A>;
  /** The worktree the series is applied in. */
  readonly wt: Git;
  readonly base: string;
  readonly repeat: number;
  readonly planned: readonly PlannedPatch[];
  readonly patches: PatchRecord[];
  readonly cmpOpts: CompareRunsOptions;
  /** Warnings seen so far, the baseline a patch's new warnings are found against. */
  readonly ledger: WarningLedger;
  readonly timing: Omit<SeriesRecord['timing'], 'totalMs'>;
  readonly problems: string[];
  readonly patchIds: string[];
  baseRecords: RunRecord[];
  tipRecords?: RunRecord[];
  baseBuild?: SeriesRecord['baseBuild'];
  baseTests?: TestSummary;
  /** Set when every patch applied. */
  tip?: string;
}

/** Build the base (the warning baseline) and test it; a base that does not build is bad input. */
async function buildAndTestBase<A>(run: SeriesRun<A>): Promise<void> {
  const { base, wt, opts, timing } = run;
  const bb = await run.tester.build(base, wt.dir);
  timing.baseBuildMs = bb.durationMs;
  const baseDiags = bb.log !== undefined ? parseDiagnostics(bb.log, wt.dir) : [];
  run.ledger.record(baseDiags, bb.compiled ?? [], bb.full && bb.log !== undefined);
  run.baseBuild = {
    ok: bb.ok,
    durationMs: bb.durationMs,
    cacheHit: bb.cacheHit,
    warnings: baseDiags.filter((d) => d.severity === 'warning').length,
    ...(bb.firstError ? { firstError: bb.firstError } : {}),
  };
  if (!bb.ok) {
    throw new UsageError(
      `the base ${base.slice(0, 12)} does not build (${bb.firstError ?? 'see the build log'}): pick a --base that builds`,
    );
  }
  if (!opts.noTests) {
    const tt = Date.now();
    const cached = await testBase({
      base,
      worktree: wt.dir,
      artifact: bb.artifact,
      repeat: run.repeat,
      tester: run.tester,
      useCache: opts.baseCache ?? true,
    });
    run.baseRecords = cached.records;
    run.baseTests = summarizeRuns(run.baseRecords, cached.hit);
    timing.testMs += Date.now() - tt;
  }
}

/** Apply the patches in order, building (and testing) each; stops at the first that does not apply. */
async function applyPatches<A>(run: SeriesRun<A>): Promise<void> {
  const { planned, patches } = run;
  const total = planned.length;
  let parent = run.base;
  for (let i = 0; i < total; i++) {
    const p = planned[i] as PlannedPatch;
    const rec = patches[i] as PatchRecord;
    const applied = await applyOne(run.wt, p, parent);
    if (!applied.ok) {
      rec.apply = { ok: false, reason: applied.reason };
      run.problems.push(`patch ${i + 1}/${total} "${p.subject}" does not apply: ${applied.reason}`);
      log.warn(`[${i + 1}/${total}] does not apply: ${applied.reason}`);
      return;
    }
    await buildAndTestPatch(run, i, applied.commit, parent);
    parent = applied.commit;
  }
  run.tip = parent;
  if (!run.opts.noTests && run.tipRecords === undefined) {
    run.problems.push(`the tip does not build: nothing to test`);
  }
}

/**
 * Build a patch so that its log holds the warnings of the files it touched. A cache hit's log is
 * an earlier make's, maybe from an obj dir where those files were already up to date: then make
 * runs here, from the parent's obj dir, which compiles what the patch changed (a re-run of the
 * same series must not report fewer warnings than its first run).
 */
async function buildForWarnings<A>(run: SeriesRun<A>, commit: string, touched: readonly string[]) {
  // A patch is a stranger's code: its build must not be able to plant objects in the shared ccache.
  const b = await run.tester.build(commit, run.wt.dir, { untrusted: true });
  if (!b.ok || (b.log !== undefined && logCoversTouched(b, touched))) return b;
  const made = await run.tester.build(commit, run.wt.dir, { compile: true, untrusted: true });
  return { ...made, durationMs: b.durationMs + made.durationMs };
}

/** Build one applied patch, find its new warnings, and test it if it is the tip (or --each). */
async function buildAndTestPatch<A>(run: SeriesRun<A>, i: number, commit: string, parent: string): Promise<void> {
  const { opts, wt, planned, problems, ledger } = run;
  const p = planned[i] as PlannedPatch;
  const rec = run.patches[i] as PatchRecord;
  const total = planned.length;
  rec.apply = { ok: true };
  rec.commit = commit;
  rec.files = await wt.changedFiles(parent, commit);
  const pid = await wt.patchId(commit);
  if (pid) {
    rec.patchId = pid;
    run.patchIds.push(pid);
  }
  const b = await buildForWarnings(run, commit, rec.files);
  run.timing.patchBuildMs.push(b.durationMs);
  const diags = b.log !== undefined ? parseDiagnostics(b.log, wt.dir) : [];
  // A broken build's warnings are fallout of its error: neither reported nor kept as a baseline.
  const covered = b.log !== undefined && logCoversTouched(b, rec.files);
  const cmp = b.ok && covered ? ledger.compare(diags, rec.files) : { known: !b.ok, added: [] };
  if (b.ok) {
    ledger.record(diags, [...(b.compiled ?? []), ...(covered ? rec.files : [])], b.full && b.log !== undefined);
    if (!covered) ledger.forget(rec.files);
  }
  rec.build = {
    ok: b.ok,
    durationMs: b.durationMs,
    cacheHit: b.cacheHit,
    newWarnings: cmp.added,
    warningsCompared: cmp.known,
    ...(b.ok ? {} : { firstError: b.firstError ?? diags.find((d) => d.severity === 'error')?.text ?? 'build failed' }),
  };
  if (!b.ok) {
    problems.push(`patch ${i + 1}/${total} "${p.subject}" breaks the build: ${rec.build.firstError ?? ''}`);
  }
  if (cmp.added.length && !opts.allowWarnings) {
    problems.push(
      `patch ${i + 1}/${total} "${p.subject}" adds ${cmp.added.length} compiler warning${cmp.added.length > 1 ? 's' : ''}: ${cmp.added[0]?.text ?? ''}`,
    );
  }
  log.info(
    `[${i + 1}/${total}] ${p.subject}: ${b.ok ? 'builds' : `BUILD BROKEN: ${rec.build.firstError ?? ''}`}${cmp.added.length ? `, ${cmp.added.length} new warnings` : ''}`,
  );
  const isTip = i === total - 1;
  if (b.ok && !opts.noTests && (opts.each || isTip)) {
    const tt = Date.now();
    const tested = await run.tester.test(commit, wt.dir, b.artifact, {
      runs: run.repeat,
      label: `patch ${i + 1}/${total}`,
    });
    const records = tested.map((x) => x.record);
    run.timing.testMs += Date.now() - tt;
    rec.tests = summarizeRuns(records);
    const c = compareRuns(run.baseRecords, records, run.cmpOpts);
    rec.comparison = {
      regressions: c.regressions.length,
      fixed: c.fixed.length,
      newSplats: c.newSplats.length,
      metricRegressions: c.metricRegressions.length,
    };
    if (isTip) run.tipRecords = records;
  }
}

/** Compare the tip's runs with the base's; each regression becomes a problem. */
function compareTip<A>(run: SeriesRun<A>, tipRecords: RunRecord[]): Comparison {
  const comparison = compareRuns(run.baseRecords, tipRecords, run.cmpOpts);
  const { problems } = run;
  for (const r of comparison.regressions)
    problems.push(
      `new failure: ${r.id} (base ${r.base.join(',')} -> tip ${r.head.join(',')})${r.reason ? `: ${r.reason}` : ''}`,
    );
  for (const s of comparison.newSplats)
    problems.push(`new kernel splat: ${s.title}${s.test ? ` (during ${s.test})` : ''}`);
  for (const m of comparison.metricRegressions)
    problems.push(
      `latency regression: ${m.id} ${m.metric} ${((m.ratio - 1) * 100).toFixed(1)}% (p=${m.test.p.toPrecision(2)})`,
    );
  return comparison;
}

async function applyOne(
  wt: Git,
  p: PlannedPatch,
  parent: string,
): Promise<{ ok: true; commit: string } | { ok: false; reason: string }> {
  if (p.mail) return wt.am(p.mail.file);
  const c = p.commit;
  if (!c) throw new FaultlineError('internal: a planned patch has neither mail nor commit');
  // A range on its own base is tested as is (same hashes as the user's branch); otherwise rebased.
  if (c.parents[0] === parent) {
    await wt.checkoutDetached(c.hash);
    return { ok: true, commit: c.hash };
  }
  return wt.cherryPick(c.hash);
}

/** What base results depend on: the base commit, --repeat and every setting of the build and the runs. */
export interface BaseResultsIdentity {
  base: string;
  repeat: number;
  build: ResultSettings;
  test: ResultSettings;
}

/** One serialisation with sorted keys: the same settings in any order give the same key. */
export function baseResultsKey(id: BaseResultsIdentity): string {
  return sha256(stableStringify(id)).slice(0, 24);
}

/**
 * Base results are cached per (base commit, repeat, build and run settings, kernel config):
 * re-validating a v2 of a series reuses them, a run under other settings never does.
 */
async function testBase<A>(o: {
  base: string;
  worktree: string;
  artifact: A | undefined;
  repeat: number;
  tester: RevisionTester<A>;
  useCache: boolean;
}): Promise<{ records: RunRecord[]; hit: boolean }> {
  const { base, worktree, artifact, repeat, tester, useCache } = o;
  const key = baseResultsKey({ base, repeat, ...tester.settings(artifact) });
  const file = join(await cacheDir('series-base'), `${key}.json`);
  if (useCache && (await exists(file))) {
    try {
      const parsed = await readJsonFile(file);
      if (Array.isArray(parsed) && parsed.length === repeat) {
        const records = parsed.map((r, i) => validateRunRecord(r, `${file}[${i}]`));
        log.info(`base ${base.slice(0, 12)}: ${records.length} cached runs`);
        return { records, hit: true };
      }
    } catch (e) {
      // The error names the file (and the record in it): tested again, and the cache rewritten.
      log.warn(`ignoring unreadable base cache: ${errorMessage(e)}`);
    }
  }
  const records = (await tester.test(base, worktree, artifact, { runs: repeat, label: 'base' })).map((x) => x.record);
  if (useCache && records.every((r) => r.infraError === undefined)) await writeJsonAtomic(file, records);
  return { records, hit: false };
}
