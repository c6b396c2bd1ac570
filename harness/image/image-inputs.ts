import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, exists, sha256, writeJsonAtomic } from '../util/fsutil.js';
import { lazyValidator, str, strings } from '../util/schema.js';

/**
 * What an initramfs was staged from, so that the next run can take the cached image without
 * staging it again (copying sshd and its libraries, ldd, decompressing modules: ~0.5 s of
 * every run). The stamp covers each host file's identity (size, mtime, inode), the keys, the
 * PATH the tools were found on and the staging code itself: any change stages anew.
 */
export interface ImageInputs {
  schema: 'faultline.initramfs-inputs/1';
  /** The image's content hash (its file name in the cache). */
  hash: string;
  modules: string[];
  /** Every host file copied or read into the image. */
  sources: string[];
  stamp: string;
}

const validate = lazyValidator<ImageInputs>({
  type: 'object',
  required: ['schema', 'hash', 'modules', 'sources', 'stamp'],
  properties: {
    schema: { type: 'string', const: 'faultline.initramfs-inputs/1' },
    hash: { type: 'string', pattern: '^[0-9a-f]{24}$' },
    modules: strings,
    sources: strings,
    stamp: str,
  },
});

/** The stamp of these sources as they are now; undefined when one is gone. */
export async function inputsStamp(sources: readonly string[], fixed: readonly string[]): Promise<string | undefined> {
  const parts = [...fixed];
  for (const path of [...sources].sort()) {
    const st = await stat(path).catch(() => undefined);
    if (!st) return undefined;
    parts.push(`${path} ${st.size} ${st.mtimeMs} ${st.ino}`);
  }
  return sha256(parts.join('\n'));
}

async function recordPath(variant: string): Promise<string> {
  return join(await cacheDir('initramfs'), `inputs-${sha256(variant).slice(0, 16)}.json`);
}

/** The image recorded for `variant` when its inputs are unchanged and the image is still cached. */
export async function unchangedImage(
  variant: string,
  fixed: readonly string[],
  imagePath: (hash: string) => Promise<string>,
): Promise<ImageInputs | undefined> {
  const text = await readFile(await recordPath(variant), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return undefined; // a damaged record only costs a staging
  }
  if (!validate(rec)) return undefined;
  if ((await inputsStamp(rec.sources, fixed)) !== rec.stamp) return undefined;
  return (await exists(await imagePath(rec.hash))) ? rec : undefined;
}

export async function recordInputs(variant: string, rec: Omit<ImageInputs, 'schema'>): Promise<void> {
  await writeJsonAtomic(await recordPath(variant), { schema: 'faultline.initramfs-inputs/1', ...rec });
}
