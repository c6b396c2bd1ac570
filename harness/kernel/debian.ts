import { join } from 'node:path';
import { readdir, rm, mkdir, writeFile } from 'node:fs/promises';
import { FaultlineError, UsageError } from '../util/errors.js';
import { cacheDir, exists } from '../util/fsutil.js';
import { requireTool, run } from '../util/proc.js';
import { log } from '../util/log.js';
import { fillCacheEntry } from '../util/lock.js';

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

export interface AptOptions {
  /** Passed as `-o KEY=VALUE` to apt-get/apt-cache. */
  aptOptions?: readonly string[];
}

const APT_TIMEOUT_MS = 20 * 60_000;

function aptArgs(o: AptOptions): string[] {
  return (o.aptOptions ?? []).flatMap((kv) => ['-o', kv]);
}

async function aptCache(args: string[], o: AptOptions): Promise<string> {
  await requireTool('apt-cache', 'apt');
  return (await run('apt-cache', [...aptArgs(o), ...args], { timeoutMs: 120_000 })).stdout;
}

/** Compare Debian versions with dpkg itself (the only correct implementation). */
async function dpkgGreater(a: string, b: string): Promise<boolean> {
  const r = await run('dpkg', ['--compare-versions', a, 'gt', b], { timeoutMs: 10_000, allowFailure: true });
  return r.exitCode === 0;
}

async function newest(versions: string[]): Promise<string | undefined> {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || (await dpkgGreater(v, best))) best = v;
  return best;
}

/** Versions apt knows for each package (one madison call: "pkg | version | origin" lines). */
async function versionsOf(pkgs: string[], o: AptOptions): Promise<Map<string, string[]>> {
  const out = await aptCache(['madison', ...pkgs], o);
  const map = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const [pkg, ver] = line.split('|').map((x) => x.trim());
    if (!pkg || !ver) continue;
    const list = map.get(pkg) ?? [];
    if (!list.includes(ver)) list.push(ver);
    map.set(pkg, list);
  }
  return map;
}

/** Find the newest unsigned amd64 image of a series whose source version also has linux-source-<series>. */
async function resolveDebianKernel(
  series: string,
  o: AptOptions = {},
): Promise<{ imagePackage: string; version: string }> {
  if (!/^\d+\.\d+$/.test(series))
    throw new UsageError(`kernel series '${series}' is not like 6.12: pass --debian-kernel MAJOR.MINOR`);
  const names = (await aptCache(['pkgnames', `linux-image-${series}`], o)).split('\n');
  const re = new RegExp(`^linux-image-${series.replace('.', '\\.')}[.-][^ ]*-amd64-unsigned$`);
  const images = names.filter((n) => re.test(n) && !/-(rt|cloud)-amd64/.test(n));
  const sourcePkg = `linux-source-${series}`;
  const versions = await versionsOf([sourcePkg, ...images], o);
  const sourceVersions = versions.get(sourcePkg) ?? [];
  if (images.length === 0 || sourceVersions.length === 0) {
    throw new FaultlineError(
      `apt knows no linux-image-${series}.*-amd64-unsigned or ${sourcePkg}: run 'apt-get update' (or 'npm run setup'), or pass --kernel PATH`,
    );
  }
  const candidates: { imagePackage: string; version: string }[] = [];
  for (const img of images)
    for (const v of versions.get(img) ?? [])
      if (sourceVersions.includes(v)) candidates.push({ imagePackage: img, version: v });
  const best = await newest(candidates.map((c) => c.version));
  const pick = candidates.find((c) => c.version === best);
  if (!pick)
    throw new FaultlineError(
      `no linux-image-${series} version matches an available ${sourcePkg} version (${sourceVersions.join(', ')})`,
    );
  return pick;
}

/**
 * Download and unpack a package once, under the entry's lock: two faultline processes on a cold
 * cache (CI runs test files in parallel) must not delete each other's half-unpacked tree.
 */
async function downloadAndExtract(
  pkg: string,
  version: string,
  dest: string,
  o: AptOptions,
  finish: (root: string) => Promise<void> = async () => {},
): Promise<void> {
  const marker = join(dest, '.complete');
  await fillCacheEntry(`debian-${pkg}_${version}`, `${pkg}=${version}`, {
    cached: async () => ((await exists(marker)) ? true : undefined),
    fill: async () => {
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
  await run('apt-get', [...aptArgs(o), 'download', `${pkg}=${version}`], { timeoutMs: APT_TIMEOUT_MS, cwd: dl });
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
export async function ensureDebianKernel(series: string, o: AptOptions = {}): Promise<DebianKernel> {
  const { imagePackage, version } = await resolveDebianKernel(series, o);
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
export async function ensureDebianSource(series: string, version?: string, o: AptOptions = {}): Promise<DebianSource> {
  const pkg = `linux-source-${series}`;
  const ver = version ?? (await newest((await versionsOf([pkg], o)).get(pkg) ?? []));
  if (!ver) throw new FaultlineError(`apt knows no ${pkg}: run 'apt-get update' (or 'npm run setup')`);
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
