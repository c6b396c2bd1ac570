import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import type { JSONSchemaType } from 'ajv';
import { FaultlineError, UsageError, errorMessage } from '../util/errors.js';
import { cacheDir, exists, sha256, writeJsonAtomic } from '../util/fsutil.js';
import { lazyValidator, readJsonFile, str } from '../util/schema.js';
import { requireTool, run } from '../util/proc.js';
import { log } from '../util/log.js';
import { newestDebianVersion } from './debian-version.js';

/**
 * Which Debian kernel package a series means: asked of apt (`apt-cache pkgnames` + `madison`,
 * about 2 s here) once, then answered from a resolution record in the cache until it goes stale.
 */

export interface AptOptions {
  /** Passed as `-o KEY=VALUE` to apt-get/apt-cache. */
  aptOptions?: readonly string[];
}

/** How a series is resolved: `--refresh` asks apt even when the record is fresh; `--offline` never asks. */
export interface ResolvePolicy {
  refresh?: boolean;
  offline?: boolean;
}

/** What apt answered for a series, and when: the record kept in <cache>/resolved/. */
export interface DebianResolution {
  schema: 'faultline.debian-resolution/1';
  series: string;
  /** The apt options it was asked with (another sources list may answer differently). */
  aptOptions: string[];
  /** The newest unsigned amd64 image of the series whose version linux-source-<series> also has. */
  imagePackage: string;
  version: string;
  /** The newest linux-source-<series> (a tree for builds that need no matching image). */
  newestSource: string;
  resolvedAt: string;
  /** apt's package lists when it answered (aptListsStamp): `apt-get update` since makes the record stale. */
  aptLists: string;
}

const resolutionSchema: JSONSchemaType<DebianResolution> = {
  type: 'object',
  properties: {
    schema: { type: 'string', const: 'faultline.debian-resolution/1' },
    series: str,
    aptOptions: { type: 'array', items: str },
    imagePackage: str,
    version: str,
    newestSource: str,
    resolvedAt: str,
    aptLists: str,
  },
  required: ['schema', 'series', 'aptOptions', 'imagePackage', 'version', 'newestSource', 'resolvedAt', 'aptLists'],
  additionalProperties: false,
};
const validResolution = lazyValidator(resolutionSchema);

/**
 * A record is trusted for 24 h, and only while apt's package lists are the ones it was read
 * from. The lists stamp catches every `apt-get update` that could change the answer; the TTL
 * bounds what the stamp cannot see (apt options that move the lists elsewhere), at the cadence
 * of a nightly: each day's first run asks apt again, and Debian publishes a new kernel every
 * few weeks, so a day's delay never hides one for long. `--refresh` asks at once.
 */
export const RESOLUTION_TTL_MS = 24 * 3600_000;

const APT_LISTS_DIR = '/var/lib/apt/lists';

/** apt-get update renames new lists into the directory, which moves its mtime: one stat, no apt. */
export async function aptListsStamp(dir = APT_LISTS_DIR): Promise<string> {
  const st = await stat(dir).catch(() => undefined);
  return st ? `${dir}@${st.mtimeMs}` : `${dir}@none`;
}

/** Why the record cannot answer now, or undefined when it can. */
export function staleness(r: DebianResolution, nowMs: number, aptLists: string): string | undefined {
  const age = nowMs - Date.parse(r.resolvedAt);
  if (!(age >= 0 && age < RESOLUTION_TTL_MS)) return `resolved ${(age / 3600_000).toFixed(1)} h ago (TTL 24 h)`;
  if (r.aptLists !== aptLists) return "apt's package lists changed since (apt-get update)";
  return undefined;
}

async function resolutionPath(series: string, aptOptions: readonly string[]): Promise<string> {
  const options = sha256(JSON.stringify(aptOptions)).slice(0, 12);
  return join(await cacheDir('resolved'), `debian-${series}-${options}.json`);
}

/** The record for a series, or undefined when there is none or it is unreadable (a warning: it is asked again). */
export async function readResolution(
  series: string,
  aptOptions: readonly string[],
): Promise<DebianResolution | undefined> {
  const path = await resolutionPath(series, aptOptions);
  if (!(await exists(path))) return undefined;
  try {
    const r = validResolution.checked(await readJsonFile(path), path, 'Debian kernel resolution');
    if (r.series === series && JSON.stringify(r.aptOptions) === JSON.stringify(aptOptions)) return r;
    log.warn(`${path} is for another series or apt options: ignored, the kernel is resolved again`);
  } catch (e) {
    log.warn(`${errorMessage(e)}: ignored, the kernel is resolved again`);
  }
  return undefined;
}

export function aptArgs(aptOptions: readonly string[] = []): string[] {
  return aptOptions.flatMap((kv) => ['-o', kv]);
}

async function aptCache(args: string[], o: AptOptions): Promise<string> {
  await requireTool('apt-cache', 'apt');
  return (await run('apt-cache', [...aptArgs(o.aptOptions), ...args], { timeoutMs: 120_000 })).stdout;
}

/** The unsigned amd64 images of a series in `apt-cache pkgnames linux-image-<series>` (no rt, no cloud). */
export function imagePackagesOf(series: string, pkgnames: string): string[] {
  const re = new RegExp(`^linux-image-${series.replace('.', '\\.')}[.-][^ ]*-amd64-unsigned$`);
  return pkgnames.split('\n').filter((n) => re.test(n) && !/-(rt|cloud)-amd64/.test(n));
}

/** Versions per package in `apt-cache madison` output ("pkg | version | origin" lines). */
export function parseMadison(out: string): Map<string, string[]> {
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

export type KernelChoice = Pick<DebianResolution, 'imagePackage' | 'version' | 'newestSource'>;

/** The newest image whose version linux-source-<series> also has (its tree builds the selftests). */
export function chooseKernel(series: string, images: readonly string[], versions: Map<string, string[]>): KernelChoice {
  const sourcePkg = `linux-source-${series}`;
  const sourceVersions = versions.get(sourcePkg) ?? [];
  const newestSource = newestDebianVersion(sourceVersions);
  if (images.length === 0 || newestSource === undefined) {
    throw new FaultlineError(
      `apt knows no linux-image-${series}.*-amd64-unsigned or ${sourcePkg}: run 'apt-get update' (or 'npm run setup'), or pass --kernel PATH`,
    );
  }
  const candidates = images.flatMap((imagePackage) =>
    (versions.get(imagePackage) ?? [])
      .filter((v) => sourceVersions.includes(v))
      .map((version) => ({ imagePackage, version })),
  );
  const best = newestDebianVersion(candidates.map((c) => c.version));
  const pick = candidates.find((c) => c.version === best);
  if (!pick)
    throw new FaultlineError(
      `no linux-image-${series} version matches an available ${sourcePkg} version (${sourceVersions.join(', ')})`,
    );
  return { ...pick, newestSource };
}

export function checkSeries(series: string): void {
  if (!/^\d+\.\d+$/.test(series))
    throw new UsageError(`kernel series '${series}' is not like 6.12: pass --debian-kernel MAJOR.MINOR`);
}

/** Ask apt (one pkgnames, one madison) and keep the answer. */
async function askApt(series: string, o: AptOptions): Promise<DebianResolution> {
  const aptLists = await aptListsStamp();
  const images = imagePackagesOf(series, await aptCache(['pkgnames', `linux-image-${series}`], o));
  const versions = parseMadison(await aptCache(['madison', `linux-source-${series}`, ...images], o));
  const record: DebianResolution = {
    schema: 'faultline.debian-resolution/1',
    series,
    aptOptions: [...(o.aptOptions ?? [])],
    ...chooseKernel(series, images, versions),
    resolvedAt: new Date().toISOString(),
    aptLists,
  };
  await writeJsonAtomic(await resolutionPath(series, o.aptOptions ?? []), record);
  return record;
}

/** The kernel of a series, from a fresh record when there is one (no apt), else from apt. Not for --offline. */
export async function resolveDebianSeries(
  series: string,
  o: AptOptions & Pick<ResolvePolicy, 'refresh'> = {},
): Promise<DebianResolution> {
  checkSeries(series);
  if (!o.refresh) {
    const cached = await readResolution(series, o.aptOptions ?? []);
    const stale = cached && staleness(cached, Date.now(), await aptListsStamp());
    if (cached && !stale) {
      log.debug(`Debian ${series}: ${cached.imagePackage}=${cached.version} (resolved ${cached.resolvedAt})`);
      return cached;
    }
    if (cached) log.debug(`Debian ${series}: the cached resolution is stale (${stale ?? ''}): asking apt`);
  }
  return askApt(series, o);
}
