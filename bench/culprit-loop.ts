/**
 * The culprit loop's cost (issue 23): from the end of a red night's jobs to its verified culprits,
 * on the 8-commit window of harness/testkit/two-culprits.ts (Debian's 6.12 tree, two independent
 * regressions: a failure on anon, a WARN on shmem). Night 1 at the window's good end, night 2 at
 * its tip; prints night 2's jobs and culprit loop side by side (wall times and their ratio), each
 * bisect and culprit check, and how many revisions it compiled against those the artifact cache
 * had. Goal: the loop in 10 minutes or less with a warm ccache. --cold-builds runs with a private
 * cache root that shares only ccache and the sources with the real one: every kernel is compiled
 * (with ccache) in fresh worktrees, as on a CI machine whose ccache is all that survives.
 * Usage: node dist/bench/culprit-loop.js [--runs N] [--cold-builds]
 */
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../harness/util/fsutil.js';
import { readBisectRecord } from '../harness/bisect/record.js';
import { twoCulpritWindow } from '../harness/testkit/two-culprits.js';

const argv = process.argv.slice(2);
const runs = Number(argv[argv.indexOf('--runs') + 1] ?? 1) || 1;
const sec = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;

/** Everything of the cache root but the kernel builds (artifacts, worktrees, remembered failures). */
const SHARED = ['ccache', 'debian', 'test-repos', 'keys', 'initramfs', 'resolved', 'selftests', 'uapi-headers'];
let privateCache: string | undefined;
if (argv.includes('--cold-builds')) {
  const real = cacheRoot();
  privateCache = await mkdtemp(join(tmpdir(), 'bench-culprit-cache-'));
  for (const d of SHARED) await symlink(join(real, d), join(privateCache, d));
  process.env['FAULTLINE_CACHE'] = privateCache;
  console.log(`cold builds: cache root ${privateCache} (shares ${SHARED.join(', ')} with ${real})`);
}

const w = await twoCulpritWindow({ runs });
try {
  await w.night('night-1', w.good);
  const t0 = Date.now();
  const out = await w.night('night-2', w.tip);
  const t1 = Date.now();
  // nightly.json's finishedAt is written when the last job ends, before the comparison and the loop.
  const jobsEnd = Date.parse(out.record.finishedAt ?? new Date(t1).toISOString());
  const jobsMs = jobsEnd - t0;
  const loopMs = t1 - jobsEnd;
  let compiled = 0;
  let tested = 0;
  const lines: string[] = [];
  const dirs = (await readdir(join(out.dir, 'bisects'))).filter((d) => !d.startsWith('worktree-')).sort();
  for (const d of dirs) {
    const rec = await readBisectRecord(join(out.dir, 'bisects', d, 'results.json')).catch(() => undefined);
    if (!rec) {
      lines.push(`  ${d}: no result (refused: the culprit does not explain it)`);
      continue;
    }
    const builds = rec.steps.filter((s) => s.cacheHit === false).length;
    compiled += builds;
    tested += rec.stats.revisionsTested;
    lines.push(
      `  ${d}: ${rec.outcome} ${rec.culprit?.hash.slice(0, 12) ?? ''} in ${sec(rec.durationMs)}, ${rec.stats.revisionsTested} revisions, ${rec.stats.runs} runs, ${builds} compiled`,
    );
  }
  const culprits = (out.record.bisects ?? []).filter((b) => b.outcome === 'culprit');
  console.log(`night 2 (8-commit window, ${runs} run(s) per step): exit ${out.exitCode}`);
  console.log(`  jobs ${sec(jobsMs)} | culprit loop ${sec(loopMs)}: loop/jobs ${(loopMs / jobsMs).toFixed(1)}`);
  console.log(
    `  ${culprits.length} verified culprit(s): ${culprits.map((b) => `${b.culprit?.hash.slice(0, 12) ?? ''} (${b.signal.kind})`).join(', ')}`,
  );
  console.log(`  revisions tested ${tested}, compiled ${compiled} (the rest from the artifact cache)`);
  for (const l of lines) console.log(l);
  console.log(
    `  goal: loop <= 600 s: ${loopMs <= 600_000 ? 'met' : 'not met'} (${(loopMs / 600_000).toFixed(2)} of it)`,
  );
} finally {
  await w.cleanup();
  if (privateCache !== undefined) await rm(privateCache, { recursive: true, force: true });
}
