/**
 * A kernel report's call trace decoded to file:line by the kernel's own
 * scripts/decode_stacktrace.sh, against the vmlinux of the kernel that printed it.
 */
import { join } from 'node:path';
import { exists } from '../util/fsutil.js';
import { run, tail } from '../util/proc.js';

/** decode_stacktrace.sh runs addr2line per frame: seconds, minutes on a big vmlinux. */
const DECODE_TIMEOUT_MS = 120_000;

/** Whether a report's excerpt has a call trace to decode. */
export function hasCallTrace(excerpt: string): boolean {
  return /Call Trace:/.test(excerpt);
}

/** The report decoded (its lines), or why not in one line. */
export async function decodeStackTrace(
  excerpt: string,
  kernel: { tree: string; vmlinux: string },
): Promise<{ lines: string[] } | { why: string }> {
  const script = join(kernel.tree, 'scripts', 'decode_stacktrace.sh');
  if (!(await exists(script))) return { why: `${kernel.tree} has no scripts/decode_stacktrace.sh` };
  const r = await run('bash', [script, kernel.vmlinux, kernel.tree], {
    cwd: kernel.tree,
    input: excerpt,
    timeoutMs: DECODE_TIMEOUT_MS,
    allowFailure: true,
  });
  if (r.exitCode !== 0 || r.timedOut)
    return { why: `decode_stacktrace.sh ${r.timedOut ? 'timed out' : `failed: ${tail(r.stderr, 1).trim()}`}` };
  return { lines: r.stdout.trimEnd().split('\n') };
}
