/**
 * A bisect step's overhead apart from its kernel build (issue 25): `faultline bisect` of the
 * kernel test repository (Debian's 6.12 tree + 7 commits, harness/testkit/kernel-repo.ts) for
 * the zeropage culprit on anon, minimal config, one run per step, verified by revert. Each
 * step's time minus its build (a cache hit once the e2e or an earlier bench run built it) minus
 * the time inside its test programs is its overhead: checkout, cache lookup, image, guest start,
 * binaries, results. Cold, the first run builds the revisions; run it twice for the warm figure.
 * With --series: `faultline series --range base..tip --each` over the same commits (every patch
 * built and tested, the base tested too); each patch step's time minus its build minus the time
 * inside its test programs is its overhead (cache lookup, image, guest, binaries, results).
 * Usage: node dist/bench/step-overhead.js [--series]
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBisectRecord } from '../harness/bisect/record.js';
import { readSeriesRecord } from '../harness/series/record.js';
import { readRunRecord } from '../harness/results/record.js';
import { median } from '../harness/stats/descriptive.js';
import { ensureKernelTestRepo } from '../harness/testkit/kernel-repo.js';
import { run } from '../harness/util/proc.js';
import { PROJECT_ROOT } from '../harness/util/project.js';

const k = await ensureKernelTestRepo();
const dir = await mkdtemp(join(tmpdir(), 'bench-step-overhead-'));
const kernelFlags = ['--config-base', 'tinyconfig', '--kconfig', 'minimal,uffd'];

/**
 * The series mode: a patch step runs from the end of the run before it to the end of its own
 * run; minus its build (and the builds of patches between that did not build) and the time in
 * its test programs, that is its overhead. The base's run is left out: it pays the worktree.
 */
async function seriesOverhead(): Promise<void> {
  const t0 = Date.now();
  const argv = ['series', '--kernel-src', k.repo, '--range', `${k.base}..${k.tip}`, '--each', '--no-base-cache'];
  const tests = ['--suite', 'uffd', '--filter', 'zeropage', '--backing', 'anon'];
  await run(
    'node',
    [join(PROJECT_ROOT, 'bin', 'faultline.js'), ...argv, ...tests, ...kernelFlags, '--results-dir', dir],
    {
      timeoutMs: 90 * 60_000,
      allowFailure: true,
    },
  );
  const rec = await readSeriesRecord(join(dir, 'results.json'));
  const runs = await Promise.all(
    (await readdir(join(dir, 'runs'))).map(async (id) => ({
      patch: Number(/^patch-(\d+)-/.exec(id)?.[1] ?? 0),
      rec: await readRunRecord(join(dir, 'runs', id, 'results.json')),
    })),
  );
  runs.sort((x, y) => x.patch - y.patch);
  const overheads: number[] = [];
  console.log('patch  build (s)  tests (s)  step (s)  overhead (s)');
  for (const [i, r] of runs.entries()) {
    const before = runs[i - 1];
    if (!before) continue;
    const stepMs = Date.parse(r.rec.finishedAt) - Date.parse(before.rec.finishedAt);
    const buildMs = rec.patches
      .filter((p) => p.index > before.patch && p.index <= r.patch)
      .reduce((sum, p) => sum + (p.build?.durationMs ?? 0), 0);
    const overhead = stepMs - buildMs - r.rec.timing.testsMs;
    overheads.push(overhead);
    const cols = [buildMs, r.rec.timing.testsMs, stepMs, overhead].map((ms) => (ms / 1000).toFixed(1).padStart(9));
    console.log(`${String(r.patch).padStart(5)}  ${cols.join('  ')}`);
  }
  console.log(
    `series of ${rec.patches.length} patches in ${((Date.now() - t0) / 1000).toFixed(0)} s; overhead per tested patch: median ${(median(overheads) / 1000).toFixed(1)} s, max ${(Math.max(...overheads) / 1000).toFixed(1)} s`,
  );
}

/** The bisect mode: each step's overhead from the bisect record. */
async function bisectOverhead(): Promise<void> {
  const argv = ['bisect', '--kernel-src', k.repo, '--good', k.base, '--bad', k.tip];
  const spec = ['--test', 'uffd-unit-tests:zeropage/anon', '--verify-revert'];
  const kernel = [...kernelFlags, '--runs', '1'];
  const t0 = Date.now();
  await run('node', [join(PROJECT_ROOT, 'bin', 'faultline.js'), ...argv, ...spec, ...kernel, '--results-dir', dir], {
    timeoutMs: 90 * 60_000,
    allowFailure: true,
  });
  const rec = await readBisectRecord(join(dir, 'results.json'));
  const overheads: number[] = [];
  console.log('step            revision      build (s)        tests (s)  overhead (s)');
  for (const s of rec.steps) {
    let testsMs = 0;
    for (const r of s.runs) {
      if (!r.runDir) continue;
      testsMs += (await readRunRecord(join(r.runDir, 'results.json'))).timing.testsMs;
    }
    const buildMs = s.buildMs ?? 0;
    const overhead = s.durationMs - buildMs - testsMs;
    if (s.runs.length > 0) overheads.push(overhead);
    const build = `${(buildMs / 1000).toFixed(1)}${s.cacheHit ? ' (cached)' : ' (built) '}`;
    console.log(
      `${s.role.padEnd(15)} ${s.rev.slice(0, 12)}  ${build.padStart(15)}  ${(testsMs / 1000).toFixed(1).padStart(14)}  ${(overhead / 1000).toFixed(1).padStart(12)}`,
    );
  }
  console.log(
    `${rec.steps.length} steps in ${((Date.now() - t0) / 1000).toFixed(0)} s; overhead per tested step: median ${(median(overheads) / 1000).toFixed(1)} s, max ${(Math.max(...overheads) / 1000).toFixed(1)} s`,
  );
}

try {
  await (process.argv.includes('--series') ? seriesOverhead() : bisectOverhead());
} finally {
  await rm(dir, { recursive: true, force: true });
}
