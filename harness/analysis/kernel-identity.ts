import type { KernelInfo } from '../results/types.js';

/**
 * Which kernel a run ran, for "did the kernel change?": release, package version, config and
 * image path. compare's per-context kernel sets and flaky detection must agree on it, or a
 * flip on one kernel would read as a flake in one and a regression in the other.
 */
export function kernelIdentity(r: {
  kernel: Pick<KernelInfo, 'release' | 'packageVersion' | 'configHash' | 'path'>;
}): string {
  return [r.kernel.release ?? '', r.kernel.packageVersion ?? '', r.kernel.configHash ?? '', r.kernel.path].join('|');
}
