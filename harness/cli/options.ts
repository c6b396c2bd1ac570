import { UsageError } from '../util/errors.js';
import { BACKINGS, GUEST_RAMS, type Backing, type GuestRam } from '../results/types.js';

/** Validation of CLI values shared by the commands: one line naming the flag and the fix. */

export function parseList(value: string | readonly string[] | undefined): string[] {
  const parts = (Array.isArray(value) ? value : value === undefined ? [] : [value]) as string[];
  return parts.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter(Boolean);
}

export function parseBackings(value: string | readonly string[] | undefined): Backing[] {
  const list = parseList(value);
  if (list.length === 0) throw new UsageError(`--backing is empty: choose from ${BACKINGS.join(', ')}`);
  for (const b of list) {
    if (!(BACKINGS as readonly string[]).includes(b)) throw new UsageError(`unknown backing '${b}' in --backing: choose from ${BACKINGS.join(', ')}`);
  }
  return list as Backing[];
}

export function parseGuestRam(value: string): GuestRam {
  if (!(GUEST_RAMS as readonly string[]).includes(value)) throw new UsageError(`unknown --guest-ram '${value}': choose from ${GUEST_RAMS.join(', ')}`);
  return value as GuestRam;
}

export function positiveInt(flag: string, value: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be an integer in ${min}..${max}, got '${String(value)}'`);
  return n;
}
