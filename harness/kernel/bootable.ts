import { open } from 'node:fs/promises';
import type { KernelInfo } from '../results/types.js';
import { FaultlineError, UsageError } from '../util/errors.js';
import { exists, sha256File } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { buildKernel, type BuildKernelOptions, type KernelBuild } from './build.js';
import { ensureDebianKernel, ensureDebianSource, type DebianOptions } from './debian.js';

/**
 * The one way to get a kernel ready to boot: Debian's packaged kernel, a bzImage on disk, or one
 * built from a tree (harness/kernel/build.ts). `faultline run`, nightly, bisect and series all
 * come through here; bisect and series build each revision themselves (they must tell a broken
 * build from a broken kernel) and turn the build into a BootableKernel with bootableFromBuild.
 */

/** Which kernel to boot. */
export type KernelSpec =
  /** Debian's packaged kernel of a series (default "6.12"), downloaded with apt-get download. */
  | { kind: 'debian'; series: string }
  /** A bzImage on disk; `modulesDir` (lib/modules/<release>) when its virtio drivers are modules. */
  | { kind: 'path'; bzImage: string; modulesDir?: string; release?: string; configHash?: string }
  /** Built from a tree (cached by tree state + .config + compiler): `faultline build` then run. */
  | { kind: 'build'; kernelSrc: string; ref?: string; kconfig: string[]; base?: string };

/** A kernel ready to boot, with what the guest image needs to know about it. */
export interface BootableKernel {
  bzImage: string;
  modulesDir?: string;
  info: KernelInfo;
  /** The kernel tree matching it, when known (Debian's linux-source for a packaged kernel). */
  sourceTree?: string;
  /** Selftests already built from the same tree (source builds). */
  selftestsDir?: string;
}

/**
 * How to acquire it: apt options and resolution policy (--refresh, --offline: debian-resolve.ts)
 * for packaged kernels, build options for source builds.
 */
export interface AcquireOptions extends DebianOptions {
  /** For a kernel built from a tree; `selftests` builds the tree's test programs along (run/ hands it in). */
  build?: Pick<BuildKernelOptions, 'progress' | 'jobs' | 'selftests'>;
}

/** The x86 boot protocol puts "HdrS" at offset 0x202 of a bzImage. */
async function assertBzImage(path: string): Promise<void> {
  if (!(await exists(path))) throw new UsageError(`--kernel ${path}: no such file`);
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, 0x202);
    if (buf.toString('latin1') !== 'HdrS') {
      throw new UsageError(
        `--kernel ${path} is not an x86 bzImage (no HdrS boot header): pass arch/x86/boot/bzImage or /boot/vmlinuz-*`,
      );
    }
  } finally {
    await fh.close();
  }
}

/** A source build as a bootable kernel: its tree and its selftests go with it. */
export function bootableFromBuild(b: KernelBuild): BootableKernel {
  return {
    bzImage: b.bzImage,
    sourceTree: b.tree,
    ...(b.selftests ? { selftestsDir: b.selftestsDir } : {}),
    info: { source: 'build', path: b.bzImage, release: b.release, configHash: b.configHash },
  };
}

/** The spec that boots an acquired kernel again without acquiring it (for runs and nightly jobs). */
export function pathSpecOf(k: BootableKernel): KernelSpec {
  return {
    kind: 'path',
    bzImage: k.bzImage,
    ...(k.modulesDir !== undefined ? { modulesDir: k.modulesDir } : {}),
    ...(k.info.release !== undefined ? { release: k.info.release } : {}),
    ...(k.info.configHash !== undefined ? { configHash: k.info.configHash } : {}),
  };
}

async function debianKernel(series: string, o: DebianOptions): Promise<BootableKernel> {
  const k = await ensureDebianKernel(series, o);
  const src = await ensureDebianSource(series, k.version, o);
  return {
    bzImage: k.bzImage,
    modulesDir: k.modulesDir,
    sourceTree: src.tree,
    info: {
      source: 'debian-package',
      path: k.bzImage,
      release: k.release,
      package: k.imagePackage,
      packageVersion: k.version,
      configHash: (await sha256File(k.config)).slice(0, 16),
    },
  };
}

async function pathKernel(spec: Extract<KernelSpec, { kind: 'path' }>): Promise<BootableKernel> {
  await assertBzImage(spec.bzImage);
  if (spec.modulesDir !== undefined && !(await exists(spec.modulesDir))) {
    throw new FaultlineError(`--modules ${spec.modulesDir}: no such directory`);
  }
  return {
    bzImage: spec.bzImage,
    ...(spec.modulesDir !== undefined ? { modulesDir: spec.modulesDir } : {}),
    info: {
      source: 'path',
      path: spec.bzImage,
      ...(spec.release !== undefined ? { release: spec.release } : {}),
      ...(spec.configHash !== undefined ? { configHash: spec.configHash } : {}),
    },
  };
}

export async function acquireKernel(spec: KernelSpec, opts: AcquireOptions = {}): Promise<BootableKernel> {
  const started = Date.now();
  const k = await acquire(spec, opts);
  // A run's resolve phase (bench/first-test.ts reads it): near 0 ms when the caches answer.
  log.debug(`kernel ${k.info.release ?? k.bzImage} acquired in ${Date.now() - started} ms`);
  return k;
}

async function acquire(spec: KernelSpec, opts: AcquireOptions): Promise<BootableKernel> {
  switch (spec.kind) {
    case 'debian':
      return debianKernel(spec.series, {
        ...(opts.aptOptions ? { aptOptions: opts.aptOptions } : {}),
        ...(opts.refresh ? { refresh: true } : {}),
        ...(opts.offline ? { offline: true } : {}),
      });
    case 'path':
      return pathKernel(spec);
    case 'build':
      return bootableFromBuild(
        await buildKernel({
          kernelSrc: spec.kernelSrc,
          ...(spec.kconfig.length > 0 ? { kconfig: spec.kconfig } : {}),
          ...(spec.ref !== undefined ? { ref: spec.ref } : {}),
          ...(spec.base !== undefined ? { base: spec.base } : {}),
          ...opts.build,
        }),
      );
  }
}
