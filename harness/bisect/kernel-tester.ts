import { buildKernel, type BuildKernelOptions, type KernelBuild } from '../kernel/build.js';
import { cleanCheckoutState } from '../kernel/cache-key.js';
import { Git } from '../util/git.js';
import type { RunRecord } from '../results/types.js';
import type { RunRequest } from '../run/request.js';
import { runTests } from '../run/run.js';
import { allSuites } from '../suites/registry.js';
import { BuildBrokenError, FaultlineError, UsageError, errorMessage } from '../util/errors.js';
import { evaluateRecord, isFatalSplat, type Evaluation, type TestSpec } from './spec.js';
import type { RevisionTester, RunObservation, StepOutcome, TestRequest } from './types.js';

/** Kernel build options a bisect/series passes through (the tree is always faultline's worktree). */
export type KernelBuildSettings = Omit<BuildKernelOptions, 'kernelSrc' | 'ref'>;
/** Run settings; the kernel, selftests and run id are filled in per revision. */
export type RunSettings = Omit<RunRequest, 'kernel' | 'selftestsDir' | 'selftestsTree' | 'runId' | 'retries'>;

/** The suite that runs a program (uffd-unit-tests -> uffd), for the RunRequest. */
export function suiteForProgram(program: string): string {
  const s = allSuites().find((x) => x.programs.includes(program));
  if (!s) {
    const known = allSuites()
      .flatMap((x) => x.programs)
      .join(', ');
    throw new UsageError(`no suite runs '${program}': the test spec must name one of ${known}`);
  }
  return s.name;
}

/**
 * Build the revision (cached: a revisited revision is a cache hit) with the kernel build module.
 * The worktree is faultline's, just checked out (or am'd, reverted) at rev and written by nothing
 * but the build into its own obj dir: when HEAD is rev its state is known without a scan.
 */
export async function buildRevision(
  worktree: string,
  settings: KernelBuildSettings,
  rev?: string,
): Promise<KernelBuild> {
  const known =
    rev !== undefined && (await new Git(worktree).head()) === rev ? { knownState: cleanCheckoutState(rev) } : {};
  return buildKernel({ ...settings, kernelSrc: worktree, selftests: true, ownedTree: true, ...known });
}

/**
 * A guest that never came up because the kernel itself died (panic/oops during boot). Judged by
 * the boot never finishing, not by infraError: a run that explains a guest death by its console
 * splat may leave infraError unset.
 */
function bootFailure(record: Pick<RunRecord, 'infraError' | 'guest' | 'splats'>): string | undefined {
  if (record.guest.bootMs !== undefined) return undefined;
  const crash = record.splats.find(isFatalSplat);
  if (!crash) return undefined;
  return record.infraError !== undefined
    ? `${record.infraError} (${crash.title})`
    : `kernel died during boot: ${crash.title}`;
}

/**
 * One run's verdict. A kernel that dies at boot cannot run the test (skip), except for --splat:
 * a matching splat is the answer wherever it happened, boot included.
 */
export function judgeRun(
  spec: TestSpec,
  record: Pick<RunRecord, 'subtests' | 'infraError' | 'guest' | 'splats'>,
): Evaluation | { kind: 'boot-failed'; detail: string } {
  const ev = evaluateRecord(spec, record);
  if (spec.kind === 'splat' && ev.kind === 'fail') return ev;
  const boot = bootFailure(record);
  return boot !== undefined ? { kind: 'boot-failed', detail: boot } : ev;
}

/**
 * Production RevisionTester: build the worktree's revision with harness/kernel/build.ts, boot it
 * with harness/run/run.ts `runTests`, and judge each run with the spec. Build broken -> skip;
 * kernel died during boot -> skip; guest/harness trouble -> infra (the engine retries).
 */
export class KernelTester implements RevisionTester {
  private readonly runCounts = new Map<string, number>();

  constructor(
    private readonly spec: TestSpec,
    private readonly build: KernelBuildSettings,
    private readonly runSettings: RunSettings,
  ) {}

  describe(): string {
    return `kernel build (${(this.build.kconfig ?? ['base', 'uffd']).join(',')}) + faultline run ${this.runSettings.suites.join(',')} [${this.runSettings.backings.join(',')}]${this.runSettings.filter ? ` -f ${this.runSettings.filter}` : ''}`;
  }

  async test(rev: string, worktree: string, req: TestRequest): Promise<StepOutcome> {
    const t0 = Date.now();
    let kb: KernelBuild;
    try {
      kb = await buildRevision(worktree, this.build, rev);
    } catch (e) {
      if (e instanceof BuildBrokenError)
        return { kind: 'build-broken', detail: e.firstError || e.message, durationMs: Date.now() - t0 };
      if (e instanceof FaultlineError)
        return { kind: 'infra', detail: `build: ${e.message}`, durationMs: Date.now() - t0 };
      throw e;
    }
    const buildMs = Date.now() - t0;
    const runs: RunObservation[] = [];
    for (let i = 0; i < req.runs; i++) {
      const n = this.runCounts.get(rev) ?? 0;
      this.runCounts.set(rev, n + 1);
      let record: RunRecord;
      let dir: string;
      try {
        ({ record, dir } = await runTests({
          ...this.runSettings,
          kernel: { kind: 'path', bzImage: kb.bzImage, release: kb.release, configHash: kb.configHash },
          selftestsDir: kb.selftestsDir,
          retries: 0,
          runId: `${req.label.replace(/[^\w.-]+/g, '-')}-${rev.slice(0, 12)}-run${n}`,
        }));
      } catch (e) {
        if (e instanceof FaultlineError) return { kind: 'infra', detail: errorMessage(e), durationMs: Date.now() - t0 };
        throw e;
      }
      const ev = judgeRun(this.spec, record);
      if (ev.kind !== 'pass' && ev.kind !== 'fail')
        return { kind: ev.kind, detail: ev.detail, durationMs: Date.now() - t0 };
      runs.push({
        result: ev.kind,
        durationMs: record.durationMs,
        detail: ev.detail,
        runDir: dir,
        ...(ev.value !== undefined ? { value: ev.value } : {}),
        ...(ev.unit !== undefined ? { unit: ev.unit } : {}),
      });
    }
    return { kind: 'runs', runs, buildMs, cacheHit: kb.cacheHit };
  }
}
