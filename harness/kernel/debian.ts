import { join } from 'node:path';
import { readdir, rm, mkdir, writeFile } from 'node:fs/promises';
import { FaultlineError, OfflineMissingError } from '../util/errors.js';
import { cacheDir, exists } from '../util/fsutil.js';
import { requireTool, run } from '../util/proc.js';
import { log } from '../util/log.js';
import { fillCacheEntry } from '../util/lock.js';
import {
  aptArgs,
  checkSeries,
  imagePackagesOf,
  readResolution,
  resolveDebianSeries,
  type AptOptions,
  type KernelChoice,
  type ResolvePolicy,
} from './debian-resolve.js';
import { newestDebianVersion } from './debian-version.js';

/** Cache subfolder of Debian's packages and the trees extracted from them (faultline-owned trees). */
export const DEBIAN_CACHE_DIR = 'debian';

/**
 * Debian's packaged kernels and their source, fetched with the host's own apt
 * configuration (`apt-get download`), so no mirror is ever named here. Extra apt
 * options (e.g. a different sources list) come from the user via `aptOptions`.
 */
export interface DebianKernel {
  /** The kernel series asked for, e.g. "6.12". */
  series: string;
  imagePackage: string;
  version: string;
  bzImage: string;
  /** Root of the extracted package: lib/modules/<release>/... lives under it. */
  root: string;
  release: string;
  modulesDir: string;
  config: string;
}

export interface DebianSource {
  series: string;
  version: string;
  /** The extracted kernel tree (read-only for us: builds go to O= dirs). */
  tree: string;
}

/** Where the package versions come from (debian-resolve.ts) and whether apt may be asked at all. */
export type DebianOptions = AptOptions & ResolvePolicy;

const APT_TIMEOUT_MS = 20 * 60_000;

const complete = (dir: string): Promise<boolean> => exists(join(dir, '.complete'));

/** The newest complete linux-source-<series> on disk (--offline), undefined when there is none. */
async function sourceOnDisk(series: string): Promise<string | undefined> {
  const root = await cacheDir(DEBIAN_CACHE_DIR);
  const prefix = `linux-source-${series}_`;
  const versions: string[] = [];
  for (const e of await readdir(root)) {
    if (e.startsWith(prefix) && (await complete(join(root, e)))) versions.push(e.slice(prefix.length));
  }
  return newestDebianVersion(versions);
}

/**
 * --offline asks no apt: the cached resolution of any age when its packages are on disk, else the
 * newest image on disk with its linux-source (a cache filled before resolutions were recorded).
 */
async function offlineChoice(series: string, o: AptOptions): Promise<KernelChoice> {
  checkSeries(series);
  const root = await cacheDir(DEBIAN_CACHE_DIR);
  const onDisk = async (c: { imagePackage: string; version: string }): Promise<boolean> =>
    (await complete(join(root, `${c.imagePackage}_${c.version}`))) &&
    (await complete(join(root, `linux-source-${series}_${c.version}`)));
  const cached = await readResolution(series, o.aptOptions ?? []);
  if (cached && (await onDisk(cached))) return cached;
  const found: { imagePackage: string; version: string }[] = [];
  for (const e of await readdir(root)) {
    const [imagePackage = '', version = ''] = e.split('_');
    if (imagePackagesOf(series, imagePackage).length === 1 && (await onDisk({ imagePackage, version })))
      found.push({ imagePackage, version });
  }
  const best = newestDebianVersion(found.map((f) => f.version));
  const pick = found.find((f) => f.version === best);
  if (!pick)
    throw new OfflineMissingError(
      `--offline: Debian's ${series} kernel is not in ${root} (it needs linux-image-${series}.*-amd64-unsigned and linux-source-${series} from apt): run once without --offline`,
    );
  return { ...pick, newestSource: pick.version };
}

/**
 * Download and unpack a package once, under the entry's lock: two faultline processes on a cold
 * cache (CI runs test files in parallel) must not delete each other's half-unpacked tree.
 */
async function downloadAndExtract(
  pkg: string,
  version: string,
  dest: string,
  o: DebianOptions,
  finish: (root: string) => Promise<void> = async () => {},
): Promise<void> {
  const marker = join(dest, '.complete');
  await fillCacheEntry(`debian-${pkg}_${version}`, `${pkg}=${version}`, {
    cached: async () => ((await exists(marker)) ? true : undefined),
    fill: async () => {
      if (o.offline)
        throw new OfflineMissingError(
          `--offline: ${pkg}=${version} is not in ${dest} (apt-get download would fetch it): run once without --offline`,
        );
      await fetchPackage(pkg, version, dest, o);
      await finish(join(dest, 'root'));
      await writeFile(marker, `${pkg}=${version}\n`);
      return true;
    },
  });
}

async function fetchPackage(pkg: string, version: string, dest: string, o: AptOptions): Promise<void> {
  await requireTool('apt-get', 'apt');
  await requireTool('dpkg-deb', 'dpkg');
  await rm(dest, { recursive: true, force: true });
  const dl = join(dest, 'deb');
  await mkdir(dl, { recursive: true });
  log.info(`downloading ${pkg}=${version} with apt-get download`);
  await run('apt-get', [...aptArgs(o.aptOptions), 'download', `${pkg}=${version}`], {
    timeoutMs: APT_TIMEOUT_MS,
    cwd: dl,
  });
  const debs = (await readdir(dl)).filter((f) => f.endsWith('.deb'));
  if (debs.length !== 1)
    throw new FaultlineError(`apt-get download ${pkg} produced ${debs.length} .deb files in ${dl}`);
  await run('dpkg-deb', ['-x', join(dl, debs[0] ?? ''), join(dest, 'root')], { timeoutMs: 10 * 60_000 });
  await rm(dl, { recursive: true, force: true });
}

/** The kernel and config an unpacked linux-image package carries in boot/. */
async function bootFiles(root: string, dest: string): Promise<{ vmlinuz: string; config: string; release: string }> {
  const boot = await readdir(join(root, 'boot')).catch(() => []);
  const vmlinuz = boot.find((f) => f.startsWith('vmlinuz-'));
  const config = boot.find((f) => f.startsWith('config-'));
  if (!vmlinuz || !config) throw new FaultlineError(`${dest} has no vmlinuz/config in boot/: delete it and retry`);
  return { vmlinuz, config, release: vmlinuz.slice('vmlinuz-'.length) };
}

/** Download (once, cached) and unpack Debian's kernel image package. */
export async function ensureDebianKernel(series: string, o: DebianOptions = {}): Promise<DebianKernel> {
  const { imagePackage, version } = o.offline ? await offlineChoice(series, o) : await resolveDebianSeries(series, o);
  const dest = join(await cacheDir(DEBIAN_CACHE_DIR), `${imagePackage}_${version}`);
  // The package ships no modules.dep (the postinst runs depmod): made once, before the entry is complete.
  await downloadAndExtract(imagePackage, version, dest, o, async (root) => {
    const depmod = await requireTool('depmod', 'kmod');
    await run(depmod, ['-b', root, (await bootFiles(root, dest)).release], { timeoutMs: 5 * 60_000 });
  });
  const root = join(dest, 'root');
  const { vmlinuz, config, release } = await bootFiles(root, dest);
  const modulesDir = join(root, 'lib', 'modules', release);
  return {
    series,
    imagePackage,
    version,
    root,
    release,
    bzImage: join(root, 'boot', vmlinuz),
    modulesDir,
    config: join(root, 'boot', config),
  };
}

/** Download (once, cached) linux-source-<series> at `version` (newest if omitted) and extract its tree. */
export async function ensureDebianSource(
  series: string,
  version?: string,
  o: DebianOptions = {},
): Promise<DebianSource> {
  const pkg = `linux-source-${series}`;
  const ver = version ?? (o.offline ? await sourceOnDisk(series) : (await resolveDebianSeries(series, o)).newestSource);
  if (!ver)
    throw new OfflineMissingError(
      `--offline: no ${pkg} in ${await cacheDir(DEBIAN_CACHE_DIR)} (apt-get download would fetch it): run once without --offline`,
    );
  const dest = join(await cacheDir(DEBIAN_CACHE_DIR), `${pkg}_${ver}`);
  await downloadAndExtract(pkg, ver, dest, o);
  const tree = join(dest, 'tree');
  const treeMarker = join(dest, '.tree-complete');
  await fillCacheEntry(`debian-tree-${pkg}_${ver}`, `the ${pkg} ${ver} tree`, {
    cached: async () => ((await exists(treeMarker)) ? true : undefined),
    fill: async () => {
      await extractTree(dest, tree, `${pkg}=${ver}`);
      return true;
    },
  });
  return { series, version: ver, tree };
}

async function extractTree(dest: string, tree: string, pkgVer: string): Promise<void> {
  await requireTool('xz', 'xz-utils');
  const srcDir = join(dest, 'root', 'usr', 'src');
  const tarball = (await readdir(srcDir)).find((f) => /^linux-source-.*\.tar\.xz$/.test(f));
  if (!tarball) throw new FaultlineError(`${pkgVer} carries no linux-source-*.tar.xz in /usr/src`);
  await rm(tree, { recursive: true, force: true });
  await mkdir(tree, { recursive: true });
  log.info(`extracting ${tarball} (about 15 s)`);
  await run('tar', ['-xJf', join(srcDir, tarball), '-C', tree, '--strip-components=1'], { timeoutMs: 20 * 60_000 });
  await writeFile(join(dest, '.tree-complete'), `${pkgVer}\n`);
}
