import {
  appendFile,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  utimes,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UsageError } from '../util/errors.js';
import { cacheDir, exists, sha256 } from '../util/fsutil.js';
import { hashByIdentity } from '../util/file-hash.js';
import { log } from '../util/log.js';
import { writeNewc } from './initramfs.js';

/**
 * The initramfs a booted guest loads: the base image with a second newc archive appended that
 * holds the run's test binaries in the guest's program directory. The kernel unpacks
 * concatenated archives in order, so a booted guest has its binaries before init runs and
 * nothing is pushed over SSH (1.3 s for the uffd suite's 2.9 MiB under TCG, 26 s for mm's
 * 25 MiB). Restored guests never read it: a snapshot is keyed on the base image, and the
 * binaries a restored guest holds are checked by hash as ever (run/stage.ts).
 */

/** Boot images kept (each is the base image plus a run's binaries, 20-45 MB): the least recently used go first. */
const MAX_BOOT_IMAGES = 6;
/**
 * An image used more recently than this is never pruned: another run may be between choosing it
 * and QEMU opening it (QEMU reads the whole file at its start; an unlinked open file stays readable).
 */
const PRUNE_AFTER_MS = 10 * 60_000;

/** The key of a boot image: the base image and each binary's name, mode and content. */
async function bootImageKey(baseHash: string, files: readonly string[], guestDir: string): Promise<string> {
  const parts = await Promise.all(
    files.map(async (f) => `${basename(f)} ${((await stat(f)).mode & 0o7777).toString(8)} ${await hashByIdentity(f)}`),
  );
  return sha256(JSON.stringify({ layout: 1, baseHash, guestDir, parts: parts.sort() })).slice(0, 24);
}

/** Names that cannot stand in a newline-separated cpio list or a guest directory. */
function checkNames(files: readonly string[]): void {
  const names = new Set<string>();
  for (const f of files) {
    const name = basename(f);
    if (/[\n\r]/.test(f) || name === '.' || name === '..' || name.length === 0)
      throw new UsageError(`test binary ${JSON.stringify(f)}: its name cannot go into the guest's initramfs`);
    if (names.has(name))
      throw new UsageError(`two test binaries are named ${name}: the guest's program directory holds one`);
    names.add(name);
  }
}

/** The binaries as a newc archive at `out`: GUEST_DIR and its files, owned by root, contents not links. */
async function writePayload(files: readonly string[], guestDir: string, out: string): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'faultline-payload-'));
  try {
    const rel = guestDir.replace(/^\/+/, '');
    await mkdir(join(root, rel), { recursive: true });
    for (const f of files) await symlink(f, join(root, rel, basename(f)));
    // Only the directory itself: its parent is the base's (/root), whose mode sshd checks.
    await writeNewc(root, [rel, ...files.map((f) => `${rel}/${basename(f)}`)], out, true);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Drop the least recently used boot images beyond MAX_BOOT_IMAGES, and the leftovers of builds
 * that were killed; nothing used within PRUNE_AFTER_MS. Other runs prune too: a file gone
 * meanwhile is no error.
 */
async function pruneBootImages(dir: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => n.startsWith('boot-'));
  const aged = await Promise.all(
    names.map(async (n) => ({ n, at: (await stat(join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })),
  );
  const images = aged.filter((a) => /^boot-[0-9a-f]{24}\.cpio$/.test(a.n)).sort((a, b) => b.at - a.at);
  const leftovers = aged.filter((a) => !/^boot-[0-9a-f]{24}\.cpio$/.test(a.n));
  for (const { n, at } of [...images.slice(MAX_BOOT_IMAGES), ...leftovers]) {
    if (Date.now() - at > PRUNE_AFTER_MS) await rm(join(dir, n), { force: true });
  }
}

/**
 * The boot image for `base` (hash `baseHash`) with `files` in `guestDir`: cached by content, built
 * once (base copied, the payload archive appended, renamed into place). No files: the base itself.
 */
export async function bootImage(
  base: { path: string; hash: string },
  files: readonly string[],
  guestDir: string,
): Promise<string> {
  if (files.length === 0) return base.path;
  checkNames(files);
  const dir = await cacheDir('initramfs');
  const out = join(dir, `boot-${await bootImageKey(base.hash, files, guestDir)}.cpio`);
  if (await exists(out)) {
    const now = new Date();
    await utimes(out, now, now).catch(() => undefined);
    return out;
  }
  const t0 = Date.now();
  const tmp = `${out}.tmp-${process.pid}`;
  const payload = `${out}.payload-${process.pid}`;
  try {
    await writePayload(files, guestDir, payload);
    await copyFile(base.path, tmp);
    // The kernel wants each appended archive to start 4-byte aligned (cpio pads to 512 already).
    const pad = (4 - ((await stat(tmp)).size % 4)) % 4;
    await appendFile(tmp, Buffer.concat([Buffer.alloc(pad), await readFile(payload)]));
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
    await rm(payload, { force: true });
  }
  log.debug(`boot initramfs ${out}: ${files.length} test binaries appended in ${Date.now() - t0} ms`);
  await pruneBootImages(dir);
  return out;
}
