/**
 * Each distinct kernel of a nightly is prepared once, before any guest starts: packaged kernels
 * are downloaded, source kernels built (harness/kernel/build.ts), and the selftests and the guest
 * image built into the cache. Parallel jobs then only read the cache (no two guests racing to
 * download or compile the same thing).
 */
import { resolve } from 'node:path';
import { buildInitramfs } from '../image/initramfs.js';
import { acquireKernel, pathSpecOf, type KernelSpec } from '../kernel/bootable.js';
import { buildSelftests } from '../selftests/build.js';
import { FaultlineError, UsageError, errorMessage } from '../util/errors.js';
import { Git } from '../vcs/git.js';
import { log } from '../util/log.js';
import type { Job, Plan, PlanKernel } from '../results/nightly.js';

export interface PreparedKernel {
  buildKey: string;
  spec: KernelSpec;
  /** Prebuilt selftests dir (manifest.json inside), shared by the kernel's jobs. */
  selftestsDir?: string;
  /** Kernel tree for the selftests when no prebuilt dir is available. */
  selftestsTree?: string;
  /** The commit a tree kernel's `ref:` stood at when it was built: what tonight tested. */
  commit?: string;
}

export type KernelPreparer = (
  kernel: PlanKernel,
  config: { name: string; fragments: string[] },
  buildKey: string,
) => Promise<PreparedKernel>;

/**
 * The commit a tree kernel's ref names now: resolved once per night, so every job (and a
 * --resume) tests the same commit even when the branch moves meanwhile.
 */
export async function resolveKernelCommit(k: PlanKernel): Promise<string | undefined> {
  if (k.kind !== 'tree' || k.ref === undefined) return undefined;
  try {
    return await new Git(resolve(k.tree)).resolveCommit(k.ref);
  } catch (e) {
    throw new UsageError(
      `kernel '${k.name}': ref '${k.ref}' does not resolve to a commit in ${k.tree} (${errorMessage(e)}): fix ref: or the tree`,
    );
  }
}

/** The plan's kernel as a spec: a packaged kernel, or a build of a local tree (cached by tree, ref and config). */
function specOf(k: PlanKernel, fragments: string[]): KernelSpec {
  if (k.kind === 'debian') return { kind: 'debian', series: k.series };
  if (/^[a-z]+:\/\//.test(k.tree)) {
    throw new UsageError(
      `kernel '${k.name}': tree ${k.tree} is a URL; faultline builds from a local checkout: clone it and give its path (ref: selects the revision)`,
    );
  }
  return {
    kind: 'build',
    kernelSrc: resolve(k.tree),
    kconfig: [...k.kconfig, ...fragments],
    ...(k.ref !== undefined ? { ref: k.ref } : {}),
    ...(k.configBase !== undefined ? { base: k.configBase } : {}),
  };
}

export const defaultKernelPreparer =
  (aptOptions: readonly string[] = []): KernelPreparer =>
  async (k, config, buildKey) => {
    const wanted = specOf(k, config.fragments);
    // Warm every cache a run reads: kernel (+ Debian source), selftests, initramfs.
    const bootable = await acquireKernel(wanted, {
      aptOptions,
      build: { progress: 'plain', selftests: buildSelftests },
    });
    // Jobs boot what was acquired here; a packaged kernel is looked up again (from the cache).
    const spec = wanted.kind === 'debian' ? wanted : pathSpecOf(bootable);
    const tree = bootable.sourceTree;
    let selftestsDir = bootable.selftestsDir;
    if (selftestsDir === undefined && tree) selftestsDir = (await buildSelftests({ tree })).dir;
    await buildInitramfs(bootable.modulesDir ? { modulesDir: bootable.modulesDir } : {});
    log.info(`kernel ${k.name} (${buildKey}) ready: ${bootable.info.release ?? bootable.bzImage}`);
    return {
      buildKey,
      spec,
      ...(selftestsDir !== undefined ? { selftestsDir } : {}),
      ...(tree !== undefined ? { selftestsTree: tree } : {}),
    };
  };

/**
 * Prepare each distinct kernel among `jobs` once, serially; failures are returned per build key.
 * A tree kernel's ref is built at its pinned commit (`commits`, by kernel name: tonight's).
 */
export async function prepareKernels(
  plan: Plan,
  jobs: readonly Job[],
  preparer: KernelPreparer,
  commits: Readonly<Record<string, string>> = {},
): Promise<Map<string, PreparedKernel | { error: string }>> {
  const out = new Map<string, PreparedKernel | { error: string }>();
  for (const job of jobs) {
    if (out.has(job.buildKey)) continue;
    const planned = plan.kernels.find((x) => x.name === job.kernel);
    const pinned = planned ? commits[planned.name] : undefined;
    const k = planned?.kind === 'tree' && pinned !== undefined ? { ...planned, ref: pinned } : planned;
    const c =
      k?.kind === 'debian' ? { name: 'debian', fragments: [] } : plan.configs.find((x) => x.name === job.config);
    if (!k || !c) {
      out.set(job.buildKey, { error: `job ${job.id} names kernel/config not in the plan` });
      continue;
    }
    try {
      const prepared = await preparer(k, c, job.buildKey);
      out.set(job.buildKey, pinned !== undefined ? { ...prepared, commit: pinned } : prepared);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      const detail = e instanceof FaultlineError && e.detail ? `\n${e.detail}` : '';
      log.warn(`kernel ${k.name}/${c.name} could not be prepared: ${errorMessage(e)}`);
      out.set(job.buildKey, { error: `kernel ${k.name}/${c.name} could not be prepared: ${errorMessage(e)}${detail}` });
    }
  }
  return out;
}
