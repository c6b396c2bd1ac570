import { run } from '../util/proc.js';

/**
 * The QEMU processes whose parent is `pid`, each with its command line (pgrep -a): how the
 * end-to-end tests see the guests a run started, and check none is left.
 */
export async function qemuChildren(pid: number): Promise<{ pid: number; command: string }[]> {
  const r = await run('pgrep', ['-a', '-P', String(pid), '-f', 'qemu-system'], {
    timeoutMs: 10_000,
    allowFailure: true,
  });
  return r.stdout
    .split('\n')
    .map((line) => ({ pid: Number(line.split(' ')[0]), command: line.slice(line.indexOf(' ') + 1) }))
    .filter((c) => Number.isInteger(c.pid) && c.pid > 0);
}
