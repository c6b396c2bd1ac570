/**
 * Ready guests from a snapshot (issue 15), side by side in one run on the same kernel and
 * accel: QEMU start to a guest ready for tests restored from a snapshot (loaded, resumed,
 * SSH answering, clock and RNG refreshed, kernel and boot id checked) vs a boot of the same
 * guest to ready vs the bare kernel booting a busybox initramfs to its first init line.
 * Rounds alternate the three so load on the machine hits them alike; prints medians and
 * ratios. Goal: restored below the bare kernel's boot-to-init.
 * With --nightly: the CI nightly plan (harness/nightly/fixtures/plans/e2e.yaml: Debian 6.12,
 * anon + shmem, quick uffd, 1 vCPU) repeated to --jobs jobs (default 8), run with snapshots
 * and then with --no-snapshot, 2 guests at a time; prints both wall times and the ratio.
 * Usage: node dist/bench/snapshot.js [--rounds N] [--nightly [--jobs N]]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitSnapshot, factsCommand, findSnapshot, parseGuestFacts, snapshotKey } from '../harness/vm/snapshot.js';
import { bootGuest, restoreGuest } from '../harness/run/boot.js';
import { readPlan } from '../harness/nightly/plan.js';
import { expandJobs } from '../harness/nightly/jobs.js';
import { runNightly } from '../harness/nightly/nightly.js';
import { PROJECT_ROOT } from '../harness/util/project.js';
import { benchGuests } from './lib/bare-initramfs.js';
import { median } from '../harness/stats/descriptive.js';
import { NIGHTLY_VIEWS } from '../harness/report/views.js';

const argv = process.argv.slice(2);
const rounds = Number(argv[argv.indexOf('--rounds') + 1] ?? 5) || 5;
const sec = (ms: number): string => (ms / 1000).toFixed(2);

const { kernel, image, bare, accel, common, bootBare } = await benchGuests();
const config = { ...common, initrd: image.path };
const consoleDir = await mkdtemp(join(tmpdir(), 'bench-console-'));
const opts = (tag: string) => ({
  consolePath: join(consoleDir, `${tag}-${Date.now()}.log`),
  bootTimeoutSec: 300,
  keys: image.keys,
});
console.log(`kernel ${kernel.info.release ?? ''}, accel ${accel.accel} (${accel.note}), ${rounds} rounds`);

/** Boot to ready; with `save`, save the snapshot on the way (not timed as a boot). */
async function bootReady(save?: Awaited<ReturnType<typeof snapshotKey>>): Promise<number> {
  const b = await bootGuest(config, opts('boot'), save?.key);
  try {
    if (save && b.saved) {
      const guest = parseGuestFacts(await b.ssh.check(factsCommand));
      const meta = await commitSnapshot(save.key, b.saved, { ...save, bootMs: b.bootMs, guest }, b.guest.console.all);
      console.log(`saved snapshot ${save.key}: ${(meta.bytes / 1048576).toFixed(0)} MiB in ${meta.saveMs} ms`);
    }
    return b.bootMs;
  } finally {
    b.ssh.close();
    await b.guest.stop();
  }
}

async function restoreReady(key: string): Promise<number> {
  const entry = await findSnapshot(key);
  if ('none' in entry) throw new Error(`no snapshot to restore: ${entry.none}`);
  const r = await restoreGuest(config, entry, opts('restore'));
  r.ssh.close();
  await r.guest.stop();
  return r.bootMs;
}

/** The CI nightly plan with and without snapshots (snapshots first: its first job saves the entry). */
async function nightlies(jobs: number): Promise<void> {
  const planFile = join(PROJECT_ROOT, 'harness', 'nightly', 'fixtures', 'plans', 'e2e.yaml');
  const base = await readPlan(planFile);
  const plan = { ...base, repeat: Math.max(1, Math.round(jobs / expandJobs({ ...base, repeat: 1 }).length)) };
  const walls: Record<string, number> = {};
  for (const noSnapshot of [false, true]) {
    const root = await mkdtemp(join(tmpdir(), 'bench-snapshot-nightly-'));
    const t0 = Date.now();
    const out = await runNightly({
      views: NIGHTLY_VIEWS,
      planFile,
      plan,
      resultsRoot: root,
      parallel: 2,
      compare: false,
      print: false,
      noSnapshot,
    });
    const label = noSnapshot ? 'booted' : 'snapshots';
    walls[label] = Date.now() - t0;
    const v = out.record.jobs.map((j) => j.verdict).join(' ');
    console.log(
      `nightly with ${label}: ${expandJobs(plan).length} jobs in ${sec(walls[label] ?? NaN)} s (verdicts ${v})`,
    );
    await rm(root, { recursive: true, force: true });
  }
  console.log(`nightly booted/snapshots ${((walls['booted'] ?? NaN) / (walls['snapshots'] ?? NaN)).toFixed(2)}x`);
}

if (argv.includes('--nightly')) {
  await nightlies(Number(argv[argv.indexOf('--jobs') + 1] ?? 8) || 8);
  await rm(consoleDir, { recursive: true, force: true });
  await rm(bare, { force: true });
  process.exit(0);
}

const key = await snapshotKey(config);
if ('none' in (await findSnapshot(key.key))) await bootReady(key);
const bareMs: number[] = [];
const bootMs: number[] = [];
const restoreMs: number[] = [];
for (let i = 0; i < rounds; i++) {
  bareMs.push(await bootBare(consoleDir));
  bootMs.push(await bootReady());
  restoreMs.push(await restoreReady(key.key));
  console.log(
    `round ${i + 1}: restored ${sec(restoreMs[i] ?? NaN)} s, booted ${sec(bootMs[i] ?? NaN)} s, bare to init ${sec(bareMs[i] ?? NaN)} s`,
  );
}
const [r, b, k] = [median(restoreMs), median(bootMs), median(bareMs)];
console.log(
  `ready from snapshot median ${sec(r)} s | boot to ready median ${sec(b)} s | bare kernel boot-to-init median ${sec(k)} s`,
);
console.log(
  `booted/restored ${(b / r).toFixed(1)}x; restored/bare-to-init ${(r / k).toFixed(2)} (goal < 1: restored below the bare boot)`,
);
await rm(consoleDir, { recursive: true, force: true });
await rm(bare, { force: true });
