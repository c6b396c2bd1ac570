/**
 * A moving tree for the nightly culprit-loop tests and benchmarks: a clone of a kernel test
 * repository (objects shared, refs its own) whose branch `mm` moves night by night, a plan whose
 * kernel is that branch (tinyconfig + minimal,uffd: the config every kernel e2e builds, so the
 * artifact cache has the revisions), and a runner of one night at a commit.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNightly, type NightlyOutcome } from '../nightly/nightly.js';
import { readPlan } from '../nightly/plan.js';
import type { Plan } from '../results/nightly.js';
import { run } from '../util/proc.js';
import { NIGHTLY_VIEWS } from '../report/views.js';

export interface MovingTree {
  root: string;
  /** The clone: the plan's kernel tree. */
  repo: string;
  planFile: string;
  plan: Plan;
  /** One night with the branch moved to `commit` (the time it took goes to `onNight`). */
  night: (id: string, commit: string) => Promise<NightlyOutcome>;
  /** The clone's worktrees (its own checkout first). */
  worktrees: () => Promise<string[]>;
  /** Removes the clone, and the build worktrees faultline's kernel cache made of it (1.3 GB each). */
  cleanup: () => Promise<void>;
}

/** `planLines`: the plan after its name and kernel (backings, suites, filter, bisect:, ...). */
export async function movingTree(
  source: string,
  o: { name: string; planLines: readonly string[]; onNight?: (id: string, ms: number) => void },
): Promise<MovingTree> {
  const root = await mkdtemp(join(tmpdir(), `faultline-${o.name}-`));
  const repo = join(root, 'linux');
  const git = (args: string[]) => run('git', ['-C', repo, ...args], { timeoutMs: 10 * 60_000 });
  await run('git', ['clone', '--quiet', '--shared', '--no-checkout', source, repo], { timeoutMs: 10 * 60_000 });
  const planFile = join(root, 'plan.yaml');
  await writeFile(
    planFile,
    [
      `name: ${o.name}`,
      'kernels:',
      `  - { name: mm, tree: ${JSON.stringify(repo)}, ref: mm, config_base: tinyconfig, kconfig: [minimal, uffd] }`,
      ...o.planLines,
      '',
    ].join('\n'),
  );
  const plan = await readPlan(planFile);
  const worktrees = async (): Promise<string[]> =>
    (await git(['worktree', 'list', '--porcelain'])).stdout
      .split('\n')
      .filter((l) => l.startsWith('worktree '))
      .map((l) => l.slice('worktree '.length));
  return {
    root,
    repo,
    planFile,
    plan,
    worktrees,
    night: async (id, commit) => {
      await git(['branch', '--force', 'mm', commit]);
      const t0 = Date.now();
      const out = await runNightly({
        views: NIGHTLY_VIEWS,
        planFile,
        plan,
        resultsRoot: join(root, 'results'),
        nightlyId: id,
        parallel: 1,
        print: false,
      });
      o.onNight?.(id, Date.now() - t0);
      return out;
    },
    cleanup: async () => {
      // The kernel build checks the branch out in a cached worktree per repository: this clone's goes with it.
      for (const w of await worktrees().catch(() => [])) if (w !== repo) await rm(w, { recursive: true, force: true });
      await rm(root, { recursive: true, force: true });
    },
  };
}
