import type { Splat, SplatKind } from '../results/types.js';

/**
 * What a splat says about the kernel that printed it, the one rule every consumer asks (run,
 * bisect, compare): `fatal` the kernel or the task that hit it died (panic, oops, BUG);
 * `stall` it stopped making progress (lockups, hung tasks, RCU stalls); `memory` a sanitizer
 * caught memory corruption, after which nothing the kernel does can be trusted; `warning` a
 * WARN, after which the kernel goes on as designed.
 */
export type SplatSeverity = 'fatal' | 'stall' | 'memory' | 'warning';

/** A Record, not a list: a new splat kind does not compile until its severity is decided here. */
const SEVERITY: Readonly<Record<SplatKind, SplatSeverity>> = {
  panic: 'fatal',
  oops: 'fatal',
  bug: 'fatal',
  'soft-lockup': 'stall',
  'hard-lockup': 'stall',
  'hung-task': 'stall',
  'rcu-stall': 'stall',
  kasan: 'memory',
  kfence: 'memory',
  ubsan: 'memory',
  warning: 'warning',
};

export function splatSeverity(kind: SplatKind): SplatSeverity {
  return SEVERITY[kind];
}

/**
 * The kernel, or the task that hit the splat, stopped: what was running cannot finish, so a run
 * it happened in cannot call the kernel good. A sanitizer report or a WARN lets the run go on.
 */
export function isFatalSplat(s: Pick<Splat, 'kind'>): boolean {
  const severity = SEVERITY[s.kind];
  return severity === 'fatal' || severity === 'stall';
}

/**
 * A splat that may be a dying guest's last words: every kind but a WARNING (a sanitizer report
 * precedes many crashes, and panics itself under panic_on_warn or kasan.fault=panic).
 */
export function explainsDeadGuest(s: Pick<Splat, 'kind'>): boolean {
  return SEVERITY[s.kind] !== 'warning';
}
