import type { Splat } from '../results/types.js';

/**
 * Kernel reports that QEMU's TCG causes, not the kernel. Under multi-threaded TCG a vCPU can
 * run a stale translation of kernel text that another vCPU is patching (text_poke_bp writes an
 * int3 first, then the new bytes, then drops the int3). Seen here twice in one day at boot,
 * where static keys flip (sched_clock_cpu, enqueue_timer): "Oops: int3" with a Code: line whose
 * byte before RIP is the patched instruction's first byte, not 0xcc. On hardware the trap
 * leaves RIP just past an int3 that is in memory (or the kernel's poke handler takes it): a
 * trap at a byte that holds no int3 is the emulator's.
 */

const INT3_OOPS = /^Oops: int3:/;

/** The byte before RIP in an Oops' "Code:" line (RIP's byte is the one in <..>), lowercase hex. */
function byteBeforeRip(excerpt: string): string | undefined {
  const code = excerpt.split('\n').find((l) => /\bCode: /.test(l));
  return code ? /([0-9a-f]{2}) <[0-9a-f]{2}>/i.exec(code)?.[1]?.toLowerCase() : undefined;
}

/**
 * Whether `splats` (one guest's) are all int3 traps at code that holds no int3: at least one
 * report shows its Code: bytes and none shows 0xcc before RIP (the other CPUs' reports of the
 * same event, interleaved on the console, may have lost their Code: line).
 */
export function tcgStaleInt3(splats: readonly Splat[]): boolean {
  if (splats.length === 0 || !splats.every((s) => INT3_OOPS.test(s.title))) return false;
  const before = splats.map((s) => byteBeforeRip(s.excerpt)).filter((b) => b !== undefined);
  return before.length > 0 && before.every((b) => b !== 'cc');
}
