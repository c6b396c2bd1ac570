import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { bootableFromBuild, pathSpecOf, type BootableKernel } from '../kernel/bootable.js';
import { buildKernel, type BuildKernelOptions } from '../kernel/build.js';
import { cleanCheckoutState } from '../kernel/cache-key.js';
import type { RunRequest, RunViewWriter } from '../run/request.js';
import { runTests } from '../run/run.js';
import { buildSelftests } from '../selftests/build.js';
import { buildUserProgram } from '../selftests/user-program.js';
import { BuildBrokenError, FaultlineError, UsageError } from '../util/errors.js';
import { sha256 } from '../util/fsutil.js';
import { Git } from '../vcs/git.js';
import { compiledFiles } from './command.js';
import { RevisionTester } from './tester.js';
import {
  ProgramCompileError,
  type BuildRequest,
  type ResultSettings,
  type RevisionBuild,
  type RevisionBuilder,
} from './types.js';
import type { RevisionRunner, RunContext, TestedRun } from './types.js';

/** Kernel build options a bisect/series passes through (the tree is always faultline's worktree). */
export type KernelBuildSettings = Omit<BuildKernelOptions, 'kernelSrc' | 'ref'>;
/** Run settings; the kernel, selftests and run id are filled in per revision. */
export type RunSettings = Omit<RunRequest, 'kernel' | 'selftestsDir' | 'selftestsTree' | 'runId' | 'retries'>;

const DEFAULT_KCONFIG = ['base', 'uffd'];
const DEFAULT_CONFIG_BASE = 'defconfig';
/** Bisect and series judge single runs under their own repetition: no reruns inside a run (a retry would hide a failure). */
const RETRIES = 0;

/** A timeout that ends by the deadline (at least a minute: a step started just before it still runs). */
function untilDeadline(deadline: number, timeoutMs: number): number {
  return Math.min(timeoutMs, Math.max(60_000, deadline - Date.now()));
}

/** A --program's or known-issues file's digest: the same file name with other text must not reuse cached results. */
function digestOf(path: string): string {
  try {
    return sha256(readFileSync(path, 'utf8'));
  } catch {
    return 'unreadable';
  }
}

/**
 * Kernel revisions: each is built in faultline's worktree with harness/kernel/build.ts (cached by
 * tree state; the worktree's persistent O= dir makes the next revision's build incremental, with
 * ccache) into a bootable kernel with its selftests. A revision that does not compile is a failed
 * build (ok: false), never an error.
 */
export class KernelBuilder implements RevisionBuilder<BootableKernel> {
  private readonly seen = new Set<string>();

  /**
   * warningBaseline (series): the worktree's first build really runs make even when the artifacts
   * are cached: its log is the warning baseline for the patches, and it fills the worktree's obj
   * dir so every patch build after it is incremental. deadline (epoch ms, a nightly's bisect
   * budget): no make runs past it.
   */
  constructor(
    private readonly buildSettings: KernelBuildSettings,
    private readonly o: { warningBaseline?: boolean; deadline?: number } = {},
  ) {}

  describe(): string {
    return `faultline build (${(this.buildSettings.kconfig ?? DEFAULT_KCONFIG).join(',')}, base ${this.buildSettings.base ?? DEFAULT_CONFIG_BASE})`;
  }

  /** What decides the kernel: fragments and base (jobs, progress and ccache only change how fast). */
  settings(): ResultSettings {
    return {
      kconfig: this.buildSettings.kconfig ?? DEFAULT_KCONFIG,
      configBase: this.buildSettings.base ?? DEFAULT_CONFIG_BASE,
    };
  }

  async build(rev: string, worktree: string, request: BuildRequest = {}): Promise<RevisionBuild<BootableKernel>> {
    const t0 = Date.now();
    const first = !this.seen.has(worktree);
    this.seen.add(worktree);
    // The worktree is faultline's, just checked out (or am'd, reverted) at rev and written by
    // nothing but the build into its own obj dir: when HEAD is rev its state is known without a scan.
    const known = (await new Git(worktree).head()) === rev ? { knownState: cleanCheckoutState(rev) } : {};
    try {
      const kb = await buildKernel({
        ...this.buildSettings,
        ...((first && this.o.warningBaseline) || request.compile ? { force: true } : {}),
        ...(request.untrusted ? { ccacheReadOnly: true } : {}),
        kernelSrc: worktree,
        selftests: buildSelftests,
        ownedTree: true,
        ...known,
        ...(this.o.deadline !== undefined
          ? { buildTimeoutMs: untilDeadline(this.o.deadline, this.buildSettings.buildTimeoutMs ?? 4 * 3600_000) }
          : {}),
      });
      // A cache hit compiled nothing here: its log is the one of the make that produced the
      // artifacts (same tree, .config and compiler), which names what that make compiled.
      const log = await readFile(kb.buildLog, 'utf8').catch(() => undefined);
      return {
        ok: true,
        ...(log !== undefined ? { log, compiled: compiledFiles(log) } : {}),
        full: first && !kb.cacheHit,
        durationMs: Date.now() - t0,
        cacheHit: kb.cacheHit,
        artifact: bootableFromBuild(kb),
      };
    } catch (e) {
      if (!(e instanceof BuildBrokenError)) throw e;
      const firstError = e.firstError || e.message;
      return { ok: false, log: e.detail ?? '', full: false, firstError, durationMs: Date.now() - t0, cacheHit: false };
    }
  }
}

/**
 * Guest runs of a built kernel revision: `faultline run` (harness/run/run.ts) on its bzImage and
 * selftests, with the user's --program files compiled against the revision's own uapi headers.
 */
export class GuestRunner implements RevisionRunner<BootableKernel> {
  /** deadline (epoch ms, a nightly's bisect budget): no boot or suite waits past it. */
  constructor(
    private readonly runSettings: RunSettings,
    private readonly o: { deadline?: number; views?: RunViewWriter } = {},
  ) {}

  /**
   * What each run runs, in words: a verdict ("passes", "no regressions") means little without the
   * suite, filter and backings it was reached on. E.g. "faultline run: suite uffd, all tests,
   * backings hugetlb,shmem,anon, --quick".
   */
  describe(): string {
    const s = this.runSettings;
    const programs = s.programs?.length ? `, programs ${s.programs.map((p) => basename(p)).join(',')}` : '';
    return [
      `faultline run: ${s.suites.length ? `suite ${s.suites.join(',')}` : 'no suite'}${programs}`,
      s.filter ? `tests matching '${s.filter}'` : 'all tests',
      `backings ${s.backings.join(',')}`,
      ...(s.quick ? ['--quick'] : []),
      ...(s.knownIssues?.length ? [`known issues from ${s.knownIssues.map((f) => basename(f)).join(',')}`] : []),
    ].join(', ');
  }

  /**
   * Every run setting (suites, backings, --quick, filter, memory, vCPUs, accel, guest RAM, hugepages,
   * timeouts, command line, ...) but where results are written, the built kernel's config hash and
   * the programs' sources. Taken whole rather than picked: a setting added to RunRequest is keyed
   * without a change here.
   */
  settings(k: Pick<BootableKernel, 'info'> | undefined): ResultSettings {
    const { resultsRoot, ...run } = this.runSettings;
    return {
      ...run,
      retries: RETRIES,
      configHash: k?.info.configHash ?? null,
      ...(run.programs?.length ? { programSources: run.programs.map(digestOf) } : {}),
      // The lists' contents decide which failures are known: an edited list must not reuse results.
      ...(run.knownIssues?.length ? { knownIssueSources: run.knownIssues.map(digestOf) } : {}),
    };
  }

  /** Compile the --program files against this revision (cached by source and header set). */
  async prepare(rev: string, worktree: string): Promise<void> {
    const programs = this.runSettings.programs ?? [];
    if (programs.length === 0) return;
    for (const p of programs) {
      try {
        await buildUserProgram(p, worktree);
      } catch (e) {
        if (e instanceof UsageError) throw new ProgramCompileError(`${e.message} (at ${rev.slice(0, 12)})`);
        throw e;
      }
    }
  }

  async run(ctx: RunContext<BootableKernel>): Promise<TestedRun> {
    const k = ctx.artifact;
    if (!k) throw new FaultlineError(`internal: no kernel build for ${ctx.rev.slice(0, 12)}`);
    const { deadline } = this.o;
    const { record, dir } = await runTests(
      {
        ...this.runSettings,
        ...(deadline !== undefined
          ? {
              timeoutSec: Math.ceil(untilDeadline(deadline, this.runSettings.timeoutSec * 1000) / 1000),
              bootTimeoutSec: Math.ceil(untilDeadline(deadline, this.runSettings.bootTimeoutSec * 1000) / 1000),
            }
          : {}),
        kernel: pathSpecOf(k),
        ...(k.selftestsDir !== undefined ? { selftestsDir: k.selftestsDir } : {}),
        // The tree whose uapi headers the --program files are compiled against: this revision's
        // checkout (a cached build's own tree may have been another, since removed, worktree).
        selftestsTree: ctx.worktree,
        retries: RETRIES,
        runId: ctx.runId,
      },
      this.o.views ? { views: this.o.views } : {},
    );
    return { record, dir };
  }
}

/**
 * The kernel revision tester: builds each revision (KernelBuilder) and runs it in guests
 * (GuestRunner). bisect, series and the nightly's culprit loop all make theirs here, from their
 * build and run settings; `warningBaseline` (series) and `deadline` (a culprit loop's budget) as
 * the two classes take them; `views`, the files each run writes besides results.json.
 */
export function kernelRevisionTester(
  build: KernelBuildSettings,
  run: RunSettings,
  o: { warningBaseline?: boolean; deadline?: number; views?: RunViewWriter } = {},
): RevisionTester<BootableKernel> {
  const deadline = o.deadline !== undefined ? { deadline: o.deadline } : {};
  return new RevisionTester<BootableKernel>(
    new KernelBuilder(build, { ...(o.warningBaseline === true ? { warningBaseline: true } : {}), ...deadline }),
    new GuestRunner(run, { ...deadline, ...(o.views ? { views: o.views } : {}) }),
  );
}
