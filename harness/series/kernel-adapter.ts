import { readFile } from 'node:fs/promises';
import type { KernelBuild } from '../kernel/build.js';
import type { RunRecord } from '../results/types.js';
import { runTests } from '../run/run.js';
import { BuildBrokenError, FaultlineError } from '../util/errors.js';
import { buildRevision, type KernelBuildSettings, type RunSettings } from '../bisect/kernel-tester.js';
import { compiledFiles } from './command-adapter.js';
import type { BuildResult, ResultSettings, SeriesBuilder, SeriesTester } from './types.js';

/** The series compares single runs under its own --repeat: no reruns inside a run (a retry would hide a failure). */
const SERIES_RETRIES = 0;
const DEFAULT_KCONFIG = ['base', 'uffd'];
const DEFAULT_CONFIG_BASE = 'defconfig';

/**
 * Production series builder/tester: every patch is built in faultline's worktree with
 * harness/kernel/build.ts (its persistent O= dir is keyed by the worktree, so patch builds are
 * incremental, with ccache), and tested with runTests on the resulting bzImage + selftests.
 */
export class KernelSeriesBuilder implements SeriesBuilder<KernelBuild> {
  private readonly seen = new Set<string>();
  constructor(private readonly buildSettings: KernelBuildSettings) {}

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

  async build(rev: string, worktree: string): Promise<BuildResult<KernelBuild>> {
    const t0 = Date.now();
    const first = !this.seen.has(worktree);
    this.seen.add(worktree);
    try {
      // The worktree's first build really runs make even when the artifacts are cached: its log is
      // the warning baseline for the patches, and it fills the worktree's obj dir so every patch
      // build after it is incremental (the compile would otherwise happen at patch 1 instead).
      const kb = await buildRevision(worktree, { ...this.buildSettings, ...(first ? { force: true } : {}) }, rev);
      // A cache hit compiled nothing here: its warnings are unknown, not absent.
      const log = kb.cacheHit ? undefined : await readFile(kb.buildLog, 'utf8').catch(() => undefined);
      return {
        ok: true,
        ...(log !== undefined ? { log, compiled: compiledFiles(log) } : {}),
        full: first && !kb.cacheHit,
        durationMs: Date.now() - t0,
        cacheHit: kb.cacheHit,
        artifact: kb,
      };
    } catch (e) {
      if (e instanceof BuildBrokenError) {
        return {
          ok: false,
          log: e.detail ?? '',
          full: false,
          firstError: e.firstError,
          durationMs: Date.now() - t0,
          cacheHit: false,
        };
      }
      throw e;
    }
  }
}

export class KernelSeriesTester implements SeriesTester<KernelBuild> {
  constructor(private readonly runSettings: RunSettings) {}

  describe(): string {
    return `faultline run ${this.runSettings.suites.join(',')} [${this.runSettings.backings.join(',')}]${this.runSettings.filter ? ` -f ${this.runSettings.filter}` : ''}`;
  }

  /**
   * Every run setting (suites, backings, --quick, filter, memory, vCPUs, accel, guest RAM, hugepages,
   * timeouts, command line, ...) but where results are written, and the built kernel's config hash.
   * Taken whole rather than picked: a setting added to RunRequest is keyed without a change here.
   */
  settings(kb: Pick<KernelBuild, 'configHash'> | undefined): ResultSettings {
    const { resultsRoot, ...run } = this.runSettings;
    return { ...run, retries: SERIES_RETRIES, configHash: kb?.configHash ?? null };
  }

  async test(
    rev: string,
    _worktree: string,
    kb: KernelBuild | undefined,
    o: { repeat: number; label: string },
  ): Promise<RunRecord[]> {
    if (!kb) throw new FaultlineError(`internal: no kernel build for ${rev.slice(0, 12)}`);
    const out: RunRecord[] = [];
    for (let i = 0; i < o.repeat; i++) {
      const { record } = await runTests({
        ...this.runSettings,
        kernel: { kind: 'path', bzImage: kb.bzImage, release: kb.release, configHash: kb.configHash },
        selftestsDir: kb.selftestsDir,
        retries: SERIES_RETRIES,
        runId: `series-${o.label.replace(/[^\w.-]+/g, '-')}-${rev.slice(0, 12)}-${i}`,
      });
      out.push(record);
    }
    return out;
  }
}
