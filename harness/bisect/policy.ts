import type { RunObservation, RunPolicy, StepVerdict } from './types.js';

/**
 * The flaky-test rule (also printed by `faultline bisect --help`: FLAKY_RULE in harness/cli/bisect.ts; keep the two in sync).
 *
 * K = failThreshold (default 1): a revision is BAD once K of its runs fail.
 * Fixed mode (--runs N): every step runs exactly N times; bad if failures >= K, else good
 *   (i.e. good needs at least N-K+1 passes).
 * Adaptive mode (default, at most --max-runs M runs per step): runs one at a time and stops as soon
 *   as failures >= K (bad) or passes >= P (good). P is derived from the bad endpoint's observed
 *   failure rate q: the smallest P such that a revision failing at rate q would reach P passes
 *   before K failures with probability <= 1 - target (default target 0.95), capped at M-K+1 so a
 *   step always decides within M runs. A test that failed every endpoint run (q = 1) gets P = 1:
 *   one run per step. Results that disagree (a failure among passes with K > 1) keep it running.
 * Endpoints and the culprit verification run E = endpointRuns times (default 3) with the same
 *   K rule; those runs are what q is measured on.
 * Build broken / boot failed / test absent: skip. Infra errors: retried infraRetries times, then skip.
 * A failed run: the subtest failed, errored or was flaky, the metric crossed its threshold, or the
 *   guest died with a kernel splat on the console (not infra); with --splat, a splat whose title
 *   matches (whatever else happened, a guest it killed or a boot it stopped included).
 *
 * Confidence of a verdict: posterior probability (equal priors) of that verdict given the step's
 * runs, with per-run failure rates of good and bad revisions estimated from every run of every
 * revision classified so far, Jeffreys-smoothed: (failures + 0.5) / (runs + 1).
 * Culprit confidence: P(parent good | its runs) x P(culprit bad | its runs), pooling the bisect
 * and verification runs of each; if both hold, the culprit is a good->bad transition.
 */

export const DEFAULT_POLICY: RunPolicy = {
  mode: 'adaptive',
  runs: 8,
  failThreshold: 1,
  endpointRuns: 3,
  targetConfidence: 0.95,
  infraRetries: 2,
};

export interface Tally {
  pass: number;
  fail: number;
}

export function tallyOf(runs: readonly RunObservation[]): Tally {
  let pass = 0;
  let fail = 0;
  for (const r of runs) {
    if (r.result === 'pass') pass++;
    else fail++;
  }
  return { pass, fail };
}

/** Probability that a revision failing at rate q reaches `passes` passes before `k` failures. */
export function missProbability(q: number, passes: number, k: number): number {
  // Negative binomial: sum over j < k failures interleaved before the last of `passes` passes.
  let sum = 0;
  let coeff = 1; // C(passes - 1 + j, j)
  for (let j = 0; j < k; j++) {
    if (j > 0) coeff = (coeff * (passes - 1 + j)) / j;
    sum += coeff * Math.pow(1 - q, passes) * Math.pow(q, j);
  }
  return sum;
}

/** Passes needed to call a step good (adaptive: from the bad endpoint's failure rate). */
export function passThreshold(policy: RunPolicy, badEndpoint: Tally): number {
  const cap = Math.max(1, policy.runs - policy.failThreshold + 1);
  if (policy.mode === 'fixed') return cap;
  const n = badEndpoint.pass + badEndpoint.fail;
  const q = n === 0 ? 1 : badEndpoint.fail / n;
  if (q >= 1) return 1;
  if (q <= 0) return cap;
  let p = 1;
  while (p < cap && missProbability(q, p, policy.failThreshold) > 1 - policy.targetConfidence) p++;
  return p;
}

export type Decision = { verdict: 'good' | 'bad' } | { more: number };

/**
 * Given the runs so far at one revision, decide or ask for more.
 * `fixedRuns` set: exactly that many runs (fixed mode, endpoints, verification).
 */
export function decide(policy: RunPolicy, p: number, t: Tally, fixedRuns?: number): Decision {
  const k = policy.failThreshold;
  const n = t.pass + t.fail;
  const wanted = fixedRuns ?? (policy.mode === 'fixed' ? policy.runs : undefined);
  if (wanted !== undefined) {
    if (n < wanted) return { more: wanted - n };
    return { verdict: t.fail >= k ? 'bad' : 'good' };
  }
  if (t.fail >= k) return { verdict: 'bad' };
  if (t.pass >= p) return { verdict: 'good' };
  if (n >= policy.runs) return { verdict: t.fail >= k ? 'bad' : 'good' };
  return { more: 1 };
}

export interface Rates {
  goodFailRate: number;
  badFailRate: number;
}

/** Per-run failure rates of good and bad revisions from all classified runs (Jeffreys-smoothed). */
export function estimateRates(
  classified: ReadonlyArray<{ verdict: StepVerdict; runs: readonly RunObservation[] }>,
): Rates {
  const g = { pass: 0, fail: 0 };
  const b = { pass: 0, fail: 0 };
  for (const c of classified) {
    if (c.verdict === 'skip') continue;
    const t = tallyOf(c.runs);
    const into = c.verdict === 'good' ? g : b;
    into.pass += t.pass;
    into.fail += t.fail;
  }
  return {
    goodFailRate: (g.fail + 0.5) / (g.pass + g.fail + 1),
    badFailRate: (b.fail + 0.5) / (b.pass + b.fail + 1),
  };
}

/** P(verdict | runs) with equal priors and the given failure rates. */
export function confidenceOf(verdict: StepVerdict, t: Tally, rates: Rates): number {
  if (verdict === 'skip') return 0;
  const lb = Math.pow(rates.badFailRate, t.fail) * Math.pow(1 - rates.badFailRate, t.pass);
  const lg = Math.pow(rates.goodFailRate, t.fail) * Math.pow(1 - rates.goodFailRate, t.pass);
  if (lb + lg === 0) return 0.5;
  const pBad = lb / (lb + lg);
  return verdict === 'bad' ? pBad : 1 - pBad;
}
