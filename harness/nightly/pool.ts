/**
 * A bounded worker pool: at most `concurrency` jobs run at once; a failing job does not
 * disturb the others (its error is returned with it), and an abort stops handing out work.
 */
import { availableParallelism, freemem, totalmem } from 'node:os';

/** Host memory kept for the host itself and faultline (MiB). */
const HOST_RESERVE_MIB = 1024;
/** QEMU's own overhead per guest on top of guest RAM (MiB). */
const QEMU_OVERHEAD_MIB = 256;

/**
 * Default parallel guests: one per core (guests mostly wait on the guest kernel's own work or
 * on SSH round-trips, and TCG is single-threaded per vCPU anyway) bounded by the memory left for
 * guests. `guestMemMiB` is the plan's per-guest RAM.
 */
export function defaultParallelism(guestMemMiB: number, hostGuestRamIsHugetlb = false): { jobs: number; why: string } {
  const cpus = availableParallelism();
  const availMiB = Math.floor(Math.min(freemem(), totalmem()) / (1024 * 1024));
  const byMem = Math.max(1, Math.floor((availMiB - HOST_RESERVE_MIB) / (guestMemMiB + QEMU_OVERHEAD_MIB)));
  const jobs = Math.max(1, Math.min(cpus, byMem));
  return {
    jobs,
    why: `${jobs} parallel guest(s): ${cpus} core(s), ${availMiB} MiB free / ${guestMemMiB + QEMU_OVERHEAD_MIB} MiB per guest${hostGuestRamIsHugetlb ? ' (hugetlb guest RAM also needs host hugepages)' : ''}`,
  };
}

export interface PoolOutcome<T, R> {
  item: T;
  result?: R;
  error?: unknown;
}

export async function runPool<T, R>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, slot: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<PoolOutcome<T, R>[]> {
  const outcomes = new Array<PoolOutcome<T, R>>(items.length);
  let next = 0;
  const lanes = Math.max(1, Math.min(concurrency, items.length));
  async function lane(slot: number): Promise<void> {
    while (next < items.length && !signal?.aborted) {
      const i = next++;
      const item = items[i] as T;
      try {
        outcomes[i] = { item, result: await worker(item, slot) };
      } catch (error) {
        outcomes[i] = { item, error };
      }
    }
  }
  await Promise.all(Array.from({ length: lanes }, (_, s) => lane(s)));
  return outcomes.filter((o): o is PoolOutcome<T, R> => o !== undefined);
}
