import t from 'tap';
import { join } from 'node:path';
import { assignShards, expandJobs, parseShard, selectShard } from './jobs.js';
import type { Job } from '../results/nightly.js';
import { readPlan } from './plan.js';
import { mulberry32 } from '../stats/bootstrap.js';

const plan = await readPlan(join(import.meta.dirname, 'fixtures', 'plans', 'good.yaml'));
const jobs = expandJobs(plan);

function durations(js: readonly Job[], seed: number, knownFraction = 1): Map<string, number> {
  const rnd = mulberry32(seed);
  const m = new Map<string, number>();
  for (const j of js)
    if (!m.has(j.key) && rnd() < knownFraction) m.set(j.key, Math.round(60_000 + rnd() * 20 * 60_000));
  return m;
}

t.test('--shard parsing', async (t) => {
  t.same(parseShard('2/4'), { index: 2, count: 4 });
  t.same(parseShard(' 1/1 '), { index: 1, count: 1 });
  for (const bad of ['0/4', '5/4', '1/0', 'a/b', '1-4', '', '2/']) t.throws(() => parseShard(bad), /--shard/, bad);
});

t.test('every job lands in exactly one shard, for many shard counts, with and without history', async (t) => {
  for (const hist of [new Map<string, number>(), durations(jobs, 1), durations(jobs, 2, 0.5)]) {
    for (const n of [1, 2, 3, 5, 7, 16, jobs.length, jobs.length + 3]) {
      const a = assignShards(jobs, n, hist);
      const all = a.shards.flat();
      t.equal(all.length, jobs.length, `n=${n}: no job twice`);
      t.same(new Set(all), new Set(jobs.map((j) => j.id)), `n=${n}: no job missing`);
      // selectShard per index reproduces the same partition
      const union: string[] = [];
      for (let i = 1; i <= n; i++) union.push(...selectShard(jobs, { index: i, count: n }, hist).jobs.map((j) => j.id));
      t.same(union.sort(), jobs.map((j) => j.id).sort(), `n=${n}: shards selected one by one cover the plan`);
    }
  }
});

t.test('the assignment is deterministic: same inputs, same shards, on any machine', async (t) => {
  const hist = durations(jobs, 3);
  const a = assignShards(jobs, 4, hist);
  const b = assignShards([...jobs], 4, new Map([...hist.entries()].reverse()));
  t.same(a.shards, b.shards);
  t.equal(a.fingerprint, b.fingerprint);
  const c = assignShards(jobs, 4, durations(jobs, 4));
  t.not(a.fingerprint, c.fingerprint, 'different history, different (detectable) assignment');
});

t.test('without history: round-robin in plan order (equal counts)', async (t) => {
  const a = assignShards(jobs, 4);
  t.equal(a.balanced, false);
  const sizes = a.shards.map((s) => s.length);
  t.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes.join(',')}`);
  t.equal(a.shards[0]?.[0], jobs[0]?.id);
  t.equal(a.shards[1]?.[0], jobs[1]?.id);
});

t.test('with history: LPT balances the estimated load', async (t) => {
  const hist = durations(jobs, 5);
  const n = 4;
  const a = assignShards(jobs, n, hist);
  t.equal(a.balanced, true);
  const total = a.loadMs.reduce((x, y) => x + y, 0);
  const longest = Math.max(...jobs.map((j) => hist.get(j.key) ?? 0));
  const max = Math.max(...a.loadMs);
  // LPT guarantee: makespan <= OPT*(4/3) and, more usefully here, <= mean + longest job.
  t.ok(max <= total / n + longest, `max load ${max} <= mean ${total / n} + longest ${longest}`);
  // and clearly better than round-robin on the same durations. Seed 5 gives 18 distinct jobs of
  // 1.3 to 20.8 min, 3 reps each: the ideal shard is the mean, 131.3 min. Round-robin's slowest
  // shard is 157.0 min, 25.7 min over it: more than the longest job. LPT's slowest shard must be
  // within the shortest job (1.3 min) of the ideal, so it beats round-robin by more than the longest job.
  const rr = assignShards(jobs, n);
  const rrLoads = rr.shards.map((s) =>
    s.reduce((acc, id) => acc + (hist.get(jobs.find((j) => j.id === id)?.key ?? '') ?? 0), 0),
  );
  const rrMax = Math.max(...rrLoads);
  const shortest = Math.min(...jobs.map((j) => hist.get(j.key) ?? Infinity));
  t.ok(rrMax - total / n > longest, `the case: round-robin's worst shard ${rrMax} is over mean + longest job`);
  t.ok(max - total / n < shortest, `LPT ${max} within the shortest job ${shortest} of the mean ${total / n}`);
  t.ok(rrMax - max > longest, `LPT ${max} beats round-robin ${rrMax} by more than the longest job ${longest}`);
});

t.test('jobs without a past duration are estimated at the median of known ones', async (t) => {
  const hist = durations(jobs, 6, 0.3);
  const a = assignShards(jobs, 3, hist);
  t.equal(a.shards.flat().length, jobs.length);
  t.ok(a.loadMs.every((l) => l > 0));
});
