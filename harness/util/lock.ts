import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FaultlineError } from './errors.js';
import { cacheDir } from './fsutil.js';
import { log } from './log.js';

/** A lock file just created holds no pid yet; past this age an empty one is a crashed owner's. */
const EMPTY_LOCK_GRACE_MS = 10_000;

/**
 * Run `fn` holding the lock file `path` (the owner's pid inside). Two faultline processes that
 * fill the same cache entry (parallel e2e files, nightly shards, a helper's run) take turns:
 * a builder that removes and restages an entry while another compiles in it poisons the cache.
 * A dead owner's lock is taken over; waiting past `deadlineMs` is an error naming the owner.
 */
export async function withLock<T>(path: string, what: string, deadlineMs: number, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const until = Date.now() + deadlineMs;
  let warned = false;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = await lockOwner(path);
      if (owner === 'gone') continue;
      if (owner === 'stale') {
        await removeStale(path);
        continue;
      }
      if (Date.now() > until)
        throw new FaultlineError(
          `${what} is locked${typeof owner === 'number' ? ` by pid ${owner}` : ''} (${path}) for too long: wait for it or remove the lock`,
        );
      if (!warned && owner !== 'starting') log.info(`waiting for another faultline (pid ${owner}) using ${what}`);
      warned ||= owner !== 'starting';
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

/** How long a process waits for another to fill the cache entry it needs (a build takes minutes). */
const CACHE_FILL_DEADLINE_MS = 30 * 60_000;

/**
 * A cache entry: `cached` if it is complete; otherwise filled by `fill` under the cache's lock
 * `name`, after asking `cached` again (another process may have filled it while this one waited).
 */
export async function fillCacheEntry<T>(
  name: string,
  what: string,
  entry: { cached: () => Promise<T | undefined>; fill: () => Promise<T> },
): Promise<T> {
  const hit = await entry.cached();
  if (hit !== undefined) return hit;
  return withLock(
    join(await cacheDir('locks'), name),
    what,
    CACHE_FILL_DEADLINE_MS,
    async () => (await entry.cached()) ?? entry.fill(),
  );
}

type LockOwner = number | 'starting' | 'stale' | 'gone';

/**
 * The live owner's pid; 'starting' while a fresh lock has no pid yet; 'stale' when its owner
 * died; 'gone' when the lock was released meanwhile (take it: try again at once).
 */
async function lockOwner(path: string): Promise<LockOwner> {
  // Released meanwhile: take it. Unreadable for another reason: wait, within the deadline.
  const missing = (e: unknown): 'gone' | 'starting' =>
    (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'starting';
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return missing(e);
  }
  const pid = Number(text.trim());
  if (text.trim() === '') {
    let age: number;
    try {
      age = Date.now() - (await stat(path)).mtimeMs;
    } catch (e) {
      return missing(e);
    }
    return age > EMPTY_LOCK_GRACE_MS ? 'stale' : 'starting';
  }
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : 'stale';
}

/**
 * Remove a dead owner's lock. Two waiters can both find it stale: the first removes it and takes
 * the lock, and a plain unlink by the second would remove the first's fresh lock. So the lock is
 * moved aside atomically, and put back when what was moved turns out to be a live lock.
 */
async function removeStale(path: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await rename(path, aside);
  } catch {
    return; // released or taken over meanwhile
  }
  if ((await lockOwner(aside)) !== 'stale') await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
