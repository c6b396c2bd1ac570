/**
 * The minimal kernel (tinyconfig + minimal + uffd) of Debian's linux-source-6.12, built once and
 * cached, with its selftests unless told otherwise: for end-to-end tests and benchmarks that need
 * a kernel of their own to boot.
 */
import { ensureDebianSource } from '../kernel/debian.js';
import { buildKernel, type BuildKernelOptions, type KernelBuild } from '../kernel/build.js';
import { buildSelftests } from '../selftests/build.js';

export async function ensureMinimalKernel(
  o: { jobs?: number; progress?: BuildKernelOptions['progress']; selftests?: boolean } = {},
): Promise<KernelBuild> {
  const { tree } = await ensureDebianSource('6.12');
  return buildKernel({
    kernelSrc: tree,
    base: 'tinyconfig',
    kconfig: ['minimal', 'uffd'],
    ...(o.jobs !== undefined ? { jobs: o.jobs } : {}),
    ...(o.progress !== undefined ? { progress: o.progress } : {}),
    ...(o.selftests !== false ? { selftests: buildSelftests } : {}),
  });
}
