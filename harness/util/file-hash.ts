import { stat } from 'node:fs/promises';
import { sha256File } from './fsutil.js';

/** SHA-256 by path and identity (size, mtime, inode): a file unchanged since it was hashed is not read again. */
const hashes = new Map<string, Promise<string>>();

/** The file's SHA-256, hashed once per identity in this process (a run's guests, reboots and boot images share it). */
export async function hashByIdentity(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
  let h = hashes.get(key);
  if (!h) {
    h = sha256File(path);
    hashes.set(key, h);
  }
  return h;
}
