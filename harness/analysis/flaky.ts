import { nightlyContext, runEntries, type HistoryEntry } from '../history/index.js';
import { kernelIdentity } from './kernel-identity.js';

/**
 * Tests whose status flipped between pass and fail/error while the kernel stayed the same:
 * keys are `${nightlyContext}|${test id}`, matching compareRuns' keys for a nightly.
 */
export function knownFlakyKeys(
  entries: readonly HistoryEntry[],
  opts: { planName?: string; lastNights?: number } = {},
): Set<string> {
  let runs = runEntries(entries).filter(
    (e) => e.kernelName !== undefined && (opts.planName === undefined || e.planName === opts.planName),
  );
  if (opts.lastNights !== undefined) {
    const nights = [...new Set(runs.map((r) => r.nightlyId ?? r.runId))].slice(-opts.lastNights);
    const keep = new Set(nights);
    runs = runs.filter((r) => keep.has(r.nightlyId ?? r.runId));
  }
  const seen = new Map<string, { good: boolean; bad: boolean }>();
  for (const r of runs) {
    const ctx = nightlyContext(r.kernelName ?? '', r.config ?? '', r.guestRam ?? 'none');
    const kid = kernelIdentity(r);
    for (const [id, status] of r.tests) {
      const k = `${ctx}|${id}\u0000${kid}`;
      const s = seen.get(k) ?? { good: false, bad: false };
      if (status === 'pass') s.good = true;
      if (status === 'fail' || status === 'error') s.bad = true;
      seen.set(k, s);
    }
  }
  const out = new Set<string>();
  for (const [k, s] of seen) {
    if (!(s.good && s.bad)) continue;
    out.add(k.slice(0, k.indexOf('\u0000')));
  }
  return out;
}
