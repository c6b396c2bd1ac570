/**
 * Bisect step count (issue 5): on a real 64-commit git repository, drive `faultline bisect`
 * (real git bisect in a worktree) with the culprit at many positions, with and without
 * unbuildable commits, and print how many revisions were built/tested against the bound
 *   ceil(log2 N) + skips + 2 endpoint checks
 * and that no revision was built twice (every build after the first is a cache hit).
 *
 *   node dist/bench/bisect-count.js [--commits 64] [--positions 1,2,17,32,33,63,64] [--json FILE]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBisect } from '../harness/bisect/bisect.js';
import { createToyRepo } from '../harness/testkit/toy-repo.js';
import type { StepTester, RunObservation, StepOutcome, TestRequest } from '../harness/bisect/types.js';
import { writeJsonAtomic } from '../harness/util/fsutil.js';

/** Bad from generation `culprit` on; generations in `broken` do not build. Reads the real checkout. */
class PositionTester implements StepTester {
  readonly builds: string[] = [];
  constructor(
    private readonly culprit: number,
    private readonly broken: ReadonlySet<number>,
  ) {}
  describe(): string {
    return `bad from generation ${this.culprit}`;
  }
  async test(rev: string, worktree: string, req: TestRequest): Promise<StepOutcome> {
    const src = await readFile(join(worktree, 'main.c'), 'utf8');
    const gen = Number(/#define GENERATION (\d+)/.exec(src)?.[1] ?? NaN);
    if (!this.builds.includes(rev)) this.builds.push(rev);
    if (this.broken.has(gen)) return { kind: 'build-broken', detail: 'does not compile', durationMs: 0 };
    const runs: RunObservation[] = Array.from({ length: req.runs }, () => ({
      result: gen >= this.culprit ? 'fail' : 'pass',
      durationMs: 0,
    }));
    return { kind: 'runs', runs };
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const commits = Number(arg('--commits') ?? 64);
const positions = (
  arg('--positions') ??
  `1,2,${commits / 4 + 1},${commits / 2},${commits / 2 + 1},${(3 * commits) / 4},${commits - 1},${commits}`
)
  .split(',')
  .map(Number)
  .filter((n) => n >= 1 && n <= commits);
const root = await mkdtemp(join(tmpdir(), 'faultline-bench-bisect-'));
const bound = Math.ceil(Math.log2(commits));
const rows: {
  culprit: number;
  broken: number[];
  steps: number;
  skips: number;
  endpoints: number;
  builds: number;
  bound: number;
  within: boolean;
  ok: boolean;
  found: boolean;
}[] = [];
try {
  // culprit beyond the range: the repo itself has no bug, the tester decides by generation.
  const repo = await createToyRepo(join(root, 'repo'), { commits, culprit: commits + 1 });
  let i = 0;
  for (const culprit of positions) {
    for (const broken of [[], [culprit - 2, culprit + 3].filter((g) => g > 0 && g < commits && g !== culprit - 1)]) {
      const tester = new PositionTester(culprit, new Set(broken));
      const r = await runBisect(
        {
          repo: repo.dir,
          good: repo.hashes[0] ?? '',
          bad: 'main',
          spec: `bench culprit ${culprit}`,
          resultsDir: join(root, `r${i++}`),
          policy: { endpointRuns: 1 },
        },
        tester,
      );
      const found = r.culprit?.hash === repo.hashes[culprit];
      const limit = bound + r.stats.skips + r.stats.endpointChecks;
      const builds = tester.builds.length;
      // ok: right culprit, every tested revision built exactly once. The bound is exact without skips;
      // a skip makes git test a neighbour of the midpoint, which can cost one more step.
      const unique = new Set(tester.builds).size === builds && builds === r.stats.revisionsTested;
      rows.push({
        culprit,
        broken,
        steps: r.stats.bisectSteps,
        skips: r.stats.skips,
        endpoints: r.stats.endpointChecks,
        builds,
        bound: limit,
        within: builds <= limit,
        ok: found && unique && (broken.length > 0 || builds <= limit),
        found,
      });
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}

process.stdout.write(
  `bisect over ${commits} commits: builds vs ceil(log2 ${commits}) = ${bound} + skips + endpoints\n`,
);
process.stdout.write('culprit  broken      steps  skips  endpoints  builds  bound  within  culprit found  ok\n');
for (const r of rows) {
  process.stdout.write(
    `${String(r.culprit).padStart(7)}  ${(r.broken.join(',') || '-').padEnd(10)}  ${String(r.steps).padStart(5)}  ${String(r.skips).padStart(5)}  ${String(r.endpoints).padStart(9)}  ${String(r.builds).padStart(6)}  ${String(r.bound).padStart(5)}  ${(r.within ? 'yes' : `+${r.builds - r.bound}`).padStart(6)}  ${String(r.found).padStart(13)}  ${r.ok ? 'yes' : 'NO'}\n`,
  );
}
const clean = rows.filter((r) => r.broken.length === 0);
process.stdout.write(
  `without skips: ${Math.min(...clean.map((r) => r.builds))}..${Math.max(...clean.map((r) => r.builds))} builds (bound ${bound + 2}); with skips: ${rows.filter((r) => r.broken.length && !r.within).length} of ${rows.length - clean.length} runs over the bound by one step (git tests a midpoint neighbour after a skip); culprit always found and nothing built twice: ${rows.every((r) => r.ok) ? 'yes' : 'NO'}\n`,
);
const json = arg('--json');
if (json) await writeJsonAtomic(json, { commits, bound, rows });
if (!rows.every((r) => r.ok)) process.exitCode = 1;
