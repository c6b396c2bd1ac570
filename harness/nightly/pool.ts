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

/**
 * Run `items` on `concurrency` lanes. With `ahead`, a lane hands out its next item as soon as
 * the current one starts, with a `turn` that resolves when the current one is done: the next
 * job prepares its guest while the lane is busy (it must not run tests before its turn). A
 * lane takes an item ahead only while every lane can still get one, so the tail stays balanced.
 */
export async function runPool<T, R>(
  items: readonly T[],
  concurrency: number,
  worker: (item: T, slot: number, turn: Promise<void>) => Promise<R>,
  signal?: AbortSignal,
  ahead = false,
): Promise<PoolOutcome<T, R>[]> {
  const outcomes = new Array<PoolOutcome<T, R>>(items.length);
  let next = 0;
  const lanes = Math.max(1, Math.min(concurrency, items.length));
  const start = (i: number, slot: number, turn: Promise<void>): Promise<void> => {
    const item = items[i] as T;
    return worker(item, slot, turn).then(
      (result) => void (outcomes[i] = { item, result }),
      (error: unknown) => void (outcomes[i] = { item, error }),
    );
  };
  async function lane(slot: number, first: Promise<void>): Promise<void> {
    let current = first;
    while (next < items.length && !signal?.aborted) {
      if (!(ahead && items.length - next >= lanes)) await current;
      if (next >= items.length || signal?.aborted) break;
      const started = start(next++, slot, current);
      await current;
      current = started;
    }
    await current;
  }
  // Every lane gets its first job before any takes one ahead.
  const firsts: Promise<void>[] = [];
  for (let s = 0; s < lanes && next < items.length && !signal?.aborted; s++)
    firsts.push(start(next++, s, Promise.resolve()));
  await Promise.all(firsts.map((f, s) => lane(s, f)));
  return outcomes.filter((o): o is PoolOutcome<T, R> => o !== undefined);
}
