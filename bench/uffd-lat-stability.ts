/**
 * Run-to-run stability of the latency benchmark: the same uffd-lat cases in N fresh
 * VMs (one `faultline run` each), then the coefficient of variation of each case's
 * p50 across the runs (goal <= 10% under TCG), and the timestamping overhead against
 * the first-touch baseline (goal <= 2%).
 * Usage: node dist/bench/uffd-lat-stability.js [--runs 5] [--backing shmem] [--filter missing-copy] [--cmdline idle=poll]
 */
import { execa } from 'execa';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRunRecord } from '../harness/results/record.js';
import { PROJECT_ROOT } from '../harness/util/project.js';
import type { RunRecord } from '../harness/results/types.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
};
const runs = Number(opt('--runs', '5'));
const backing = opt('--backing', 'anon,shmem');
const filter = opt('--filter', '');
/** e.g. idle=poll: keeps idle vCPUs spinning, so the handler's wake-up does not go through the host scheduler. */
const cmdline = opt('--cmdline', '');
const root = await mkdtemp(join(tmpdir(), 'bench-lat-'));
const records: RunRecord[] = [];
for (let i = 0; i < runs; i++) {
  const args = ['run', '--suite', 'uffd-lat', '--backing', backing, '--results', root, '--run-id', `r${i}`];
  if (filter) args.push('--filter', filter);
  if (cmdline) args.push('--cmdline', cmdline);
  const r = await execa('node', [join(PROJECT_ROOT, 'bin', 'faultline.js'), ...args], {
    reject: false,
    timeout: 3600_000,
    all: true,
  });
  if (r.exitCode !== 0) console.error(`run ${i} exited ${String(r.exitCode)}\n${String(r.all).slice(-800)}`);
  records.push(await readRunRecord(join(root, `r${i}`, 'results.json')));
}
const p50s = new Map<string, number[]>();
for (const rec of records)
  for (const s of rec.subtests) {
    const v = s.metrics?.find((m) => m.name === 'total_p50')?.value;
    if (v !== undefined && s.status === 'pass') p50s.set(s.id, [...(p50s.get(s.id) ?? []), v]);
  }
console.log(
  `${runs} fresh-VM runs${cmdline ? ` (guest cmdline ${cmdline})` : ''}, accel ${records[0]?.qemu?.accel ?? '?'}, clocksource ${records[0]?.guest?.clocksource ?? '?'}`,
);
console.log('case'.padEnd(48), 'mean p50'.padStart(12), 'CV'.padStart(8));
for (const [id, xs] of p50s) {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  console.log(
    id.padEnd(48),
    `${(mean / 1000).toFixed(1)} us`.padStart(12),
    `${((100 * sd) / mean).toFixed(1)}%`.padStart(8),
    xs.length === runs ? '' : `(${xs.length} runs)`,
  );
}
const clock = records.flatMap((rec) =>
  rec.subtests
    .filter((s) => s.id === 'uffd-lat/clock-overhead')
    .map((s) => s.metrics?.find((m) => m.name === 'clock_p50')?.value ?? NaN),
);
const touch = records.flatMap((rec) =>
  rec.subtests
    .filter((s) => s.id === 'uffd-lat/first-touch/anon')
    .map((s) => s.metrics?.find((m) => m.name === 'total_p50')?.value ?? NaN),
);
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
if (clock.length && touch.length) {
  console.log(
    `timestamp overhead: clock_gettime pair p50 ${med(clock).toFixed(0)} ns vs first-touch p50 ${med(touch).toFixed(0)} ns = ${((100 * med(clock)) / med(touch)).toFixed(2)}% (goal <= 2%)`,
  );
}
