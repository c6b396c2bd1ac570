/**
 * Job expansion and shard selection. A job is one guest boot: one kernel build, one guest RAM
 * backend, one backing, one suite, one repetition. Ids are stable strings so shards, resume
 * state, history and merge all agree on them.
 */
import type { Job, Plan, PlanKernel, ShardSpec } from '../results/nightly.js';
import { UsageError } from '../util/errors.js';
import { sha256 } from '../util/fsutil.js';
import { timeoutFor } from './plan.js';

/** The job that runs a plan's own C programs (`programs:`): the program suite, no selftest suite. */
export const PROGRAM_JOB = 'program';

function buildKeyOf(k: PlanKernel, config: { name: string; fragments: string[] }): string {
  return k.kind === 'debian'
    ? `debian:${k.series}`
    : `tree:${k.tree}@${k.ref ?? 'HEAD'}:${[...k.kconfig, ...config.fragments].join(',')}`;
}

/** Expand a plan in a fixed order: kernel, config, guest RAM, backing, suite, repetition. */
export function expandJobs(plan: Plan): Job[] {
  const jobs: Job[] = [];
  for (const k of plan.kernels) {
    const configs = k.kind === 'debian' ? [{ name: 'debian', fragments: [] as string[] }] : plan.configs;
    for (const c of configs) {
      for (const guestRam of plan.guestRam) {
        for (const backing of plan.backings) {
          for (const suite of [...plan.suites, ...(plan.programs?.length ? [PROGRAM_JOB] : [])]) {
            const key = [k.name, c.name, guestRam, backing, suite].join('+');
            for (let rep = 1; rep <= plan.repeat; rep++) {
              jobs.push({
                id: `${key}+r${rep}`,
                key,
                kernel: k.name,
                config: c.name,
                buildKey: buildKeyOf(k, c),
                guestRam,
                backing,
                suite,
                rep,
                timeoutSec: timeoutFor(plan, suite),
              });
            }
          }
        }
      }
    }
  }
  return jobs;
}

export function parseShard(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count || count > 10_000) {
    throw new UsageError(
      `--shard '${text}' is not I/N with 1 <= I <= N (e.g. --shard 2/4; a Kubernetes Indexed Job passes $((JOB_COMPLETION_INDEX+1))/N)`,
    );
  }
  return { index, count };
}

export interface ShardAssignment {
  /** shards[i] holds the job ids of shard i+1, in plan order. */
  shards: string[][];
  /** Estimated load (ms) of each shard. */
  loadMs: number[];
  /** Hash of the whole assignment: shards that disagree (different history) are caught at merge. */
  fingerprint: string;
  /** Whether past durations were used (else round-robin by plan order). */
  balanced: boolean;
}

/**
 * Deterministic LPT (longest processing time first) greedy assignment. Every job lands in
 * exactly one shard. Jobs without a past duration are estimated at the median of known ones;
 * ties break by job id and shard index so every machine computes the same answer from the
 * same inputs (the plan and the durations file / history index they all share).
 */
export function assignShards(
  jobs: readonly Job[],
  count: number,
  pastDurationsMs: ReadonlyMap<string, number> = new Map(),
): ShardAssignment {
  const known = jobs
    .map((j) => pastDurationsMs.get(j.key))
    .filter((d): d is number => d !== undefined && Number.isFinite(d) && d > 0);
  const balanced = known.length > 0;
  const sortedKnown = [...known].sort((a, b) => a - b);
  const fallback = balanced ? (sortedKnown[Math.floor(sortedKnown.length / 2)] ?? 1) : 1;
  const est = (j: Job): number => {
    const d = pastDurationsMs.get(j.key);
    return d !== undefined && Number.isFinite(d) && d > 0 ? d : fallback;
  };
  const order = jobs.map((j, i) => ({ j, i, d: est(j) }));
  // Without history all estimates are equal and LPT reduces to round-robin in plan order.
  order.sort((a, b) => b.d - a.d || a.i - b.i);
  const loads = new Array<number>(count).fill(0);
  const members: { id: string; i: number }[][] = Array.from({ length: count }, () => []);
  for (const { j, i, d } of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if ((loads[s] ?? 0) < (loads[best] ?? 0)) best = s;
    loads[best] = (loads[best] ?? 0) + d;
    members[best]?.push({ id: j.id, i });
  }
  const shards = members.map((m) => m.sort((a, b) => a.i - b.i).map((x) => x.id));
  return { shards, loadMs: loads, fingerprint: sha256(JSON.stringify(shards)).slice(0, 16), balanced };
}

export function selectShard(
  jobs: readonly Job[],
  shard: ShardSpec,
  pastDurationsMs?: ReadonlyMap<string, number>,
): { jobs: Job[]; assignment: ShardAssignment } {
  const assignment = assignShards(jobs, shard.count, pastDurationsMs);
  const mine = new Set(assignment.shards[shard.index - 1] ?? []);
  return { jobs: jobs.filter((j) => mine.has(j.id)), assignment };
}
