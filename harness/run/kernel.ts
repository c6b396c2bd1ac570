import { open } from 'node:fs/promises';
import { FaultlineError, UsageError } from '../util/errors.js';
import { exists, sha256File } from '../util/fsutil.js';
import { ensureDebianKernel, ensureDebianSource } from '../kernel/debian.js';
import { buildKernel } from '../kernel/build.js';
import type { KernelInfo } from '../results/types.js';
import type { KernelSpec } from './request.js';

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

export async function prepareKernel(spec: KernelSpec, aptOptions: readonly string[] = []): Promise<BootableKernel> {
  if (spec.kind === 'debian') {
    const k = await ensureDebianKernel(spec.series, { aptOptions });
    const src = await ensureDebianSource(spec.series, k.version, { aptOptions });
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
  if (spec.kind === 'build') {
    const b = await buildKernel({
      kernelSrc: spec.kernelSrc,
      kconfig: spec.kconfig,
      ...(spec.ref !== undefined ? { ref: spec.ref } : {}),
      ...(spec.base !== undefined ? { base: spec.base } : {}),
    });
    return {
      bzImage: b.bzImage,
      sourceTree: b.tree,
      ...(b.selftests ? { selftestsDir: b.selftestsDir } : {}),
      info: { source: 'build', path: b.bzImage, release: b.release, configHash: b.configHash },
    };
  }
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
