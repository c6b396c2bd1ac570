import { basename } from 'node:path';
import { FaultlineError } from '../util/errors.js';
import { hashByIdentity } from '../util/file-hash.js';
import { shellQuote } from '../util/proc.js';
import type { StagedBinaries } from '../results/types.js';
import type { SshSession } from '../ssh/transport.js';

/**
 * The test binaries in a guest. A booted guest unpacked them from its initramfs
 * (image/payload.ts); a guest restored from a snapshot holds those of the run that saved it.
 * The guest reports the SHA-256 of each file the run wants, and only the missing or
 * different ones are pushed (a changed binary is never run stale).
 * Files the run does not want are removed, so a script cannot find an old binary by name.
 */

/** The marker between the hashes and the directory listing in the guest's answer. */
const LISTING = '--- faultline listing ---';

/** The shell command that prints `HASH  NAME` for each wanted file present in `dir`, then every name in it. */
export function guestHashCommand(dir: string, names: readonly string[]): string {
  // sha256sum names the missing ones on stderr and exits 1: the listing still follows. Without
  // names it would read stdin (the SSH channel, never closed): none then.
  const hashes = names.length > 0 ? `sha256sum -- ${names.map(shellQuote).join(' ')} 2>/dev/null; ` : '';
  return `mkdir -p ${shellQuote(dir)} && cd ${shellQuote(dir)} && { ${hashes}echo '${LISTING}'; ls -A; }`;
}

/** The guest's answer: hash by file name, and every name in the directory. */
export function parseGuestHashes(out: string): { hashes: Map<string, string>; names: string[] } {
  const lines = out.split('\n');
  const at = lines.indexOf(LISTING);
  if (at < 0) throw new FaultlineError(`the guest did not list its test binaries (answer: ${out.slice(0, 200)})`);
  const hashes = new Map<string, string>();
  for (const line of lines.slice(0, at)) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m?.[1] && m[2]) hashes.set(m[2], m[1]);
  }
  return { hashes, names: lines.slice(at + 1).filter(Boolean) };
}

/** Make `dir` in the guest hold exactly `files` (by base name), pushing only what the guest lacks. */
export async function stageBinaries(
  ssh: SshSession,
  files: readonly string[],
  dir: string,
  timeoutMs: number,
): Promise<StagedBinaries> {
  const t0 = Date.now();
  const wanted = new Map(files.map((f) => [basename(f), f]));
  const [want, answer] = await Promise.all([
    Promise.all([...wanted].map(async ([name, path]) => [name, await hashByIdentity(path)] as const)),
    ssh.check(guestHashCommand(dir, [...wanted.keys()]), timeoutMs),
  ]);
  const guest = parseGuestHashes(answer);
  const stale = want
    .filter(([name, hash]) => guest.hashes.get(name) !== hash)
    .map(([name]) => wanted.get(name) ?? name);
  const extra = guest.names.filter((n) => !wanted.has(n));
  if (extra.length > 0) await ssh.check(`cd ${shellQuote(dir)} && rm -rf -- ${extra.map(shellQuote).join(' ')}`);
  const bytes = stale.length > 0 ? await ssh.push(stale, dir, timeoutMs) : 0;
  return {
    kept: want.length - stale.length,
    pushed: stale.length,
    removed: extra.length,
    bytes,
    ms: Date.now() - t0,
  };
}
