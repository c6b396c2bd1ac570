/**
 * What the guest's isolation costs (issue 24): a snapshot-restored run with QEMU's user network
 * restricted (restrict=on) and its seccomp sandbox (-sandbox on), as faultline runs every guest,
 * against the same guest without them, side by side in one run. Each round restores both (order
 * alternating, so load hits them alike) and times restore-to-ready, then a run's traffic over
 * SSH: pushing the uffd selftests (as a run does) and running uffd-unit-tests' zeropage tests.
 * Prints medians and the isolated/open ratio of the total. Goal: under 5% (1.05).
 * Usage: node dist/bench/isolation-cost.js [--rounds N]
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitSnapshot, factsCommand, findSnapshot, parseGuestFacts, snapshotKey } from '../harness/vm/snapshot.js';
import { bootGuest, restoreGuest } from '../harness/run/boot.js';
import { ensureMinimalKernel } from '../harness/testkit/minimal-kernel.js';
import { benchGuests } from './lib/bare-initramfs.js';
import { median } from '../harness/stats/descriptive.js';

const argv = process.argv.slice(2);
const rounds = Number(argv[argv.indexOf('--rounds') + 1] ?? 5) || 5;
const sec = (ms: number): string => (ms / 1000).toFixed(2);

const { kernel, image, bare, accel, common } = await benchGuests();
// The uffd selftests of Debian's 6.12 tree (built once, cached): what a run pushes and runs.
const selftests = (await ensureMinimalKernel({ progress: 'off' })).selftestsDir;
if (!selftests) throw new Error('the minimal kernel build has no selftests');
const bin = join(selftests, 'bin');
const binaries = (await readdir(bin)).map((f) => join(bin, f));
const consoleDir = await mkdtemp(join(tmpdir(), 'bench-isolation-'));
const opts = (tag: string) => ({
  consolePath: join(consoleDir, `${tag}-${Date.now()}.log`),
  bootTimeoutSec: 300,
  keys: image.keys,
});
const modes = {
  isolated: { ...common, initrd: image.path },
  open: { ...common, initrd: image.path, withoutIsolation: true },
};
type Mode = keyof typeof modes;
console.log(`kernel ${kernel.info.release ?? ''}, accel ${accel.accel} (${accel.note}), ${rounds} rounds`);

/** The mode's snapshot, saved from a boot the first time (not timed). */
async function ensureSnapshot(mode: Mode): Promise<string> {
  const key = await snapshotKey(modes[mode]);
  if (!('none' in (await findSnapshot(key.key)))) return key.key;
  // Nothing staged: every timed run pushes the binaries itself.
  const b = await bootGuest(modes[mode], opts(`save-${mode}`), key.key);
  try {
    if (!b.saved) throw new Error(`${mode}: the boot saved no snapshot`);
    const guest = parseGuestFacts(await b.ssh.check(factsCommand));
    await commitSnapshot(key.key, b.saved, { ...key, bootMs: b.bootMs, guest }, b.guest.console.all);
  } finally {
    b.ssh.close();
    await b.guest.stop();
  }
  return key.key;
}

/** One restored run: ready, then push the selftests and run the zeropage unit tests. */
async function restoredRun(mode: Mode, key: string): Promise<{ readyMs: number; runMs: number }> {
  const entry = await findSnapshot(key);
  if ('none' in entry) throw new Error(`${mode}: no snapshot to restore: ${entry.none}`);
  const r = await restoreGuest(modes[mode], entry, opts(mode));
  try {
    const t0 = Date.now();
    await r.ssh.check('mkdir -p /tmp/selftests');
    await r.ssh.push(binaries, '/tmp/selftests', 120_000);
    await r.ssh.check('cd /tmp/selftests && ./uffd-unit-tests -f zeropage >/dev/null 2>&1; true', 300_000);
    return { readyMs: r.bootMs, runMs: Date.now() - t0 };
  } finally {
    r.ssh.close();
    await r.guest.stop();
  }
}

const keys = { isolated: await ensureSnapshot('isolated'), open: await ensureSnapshot('open') };
const times: Record<Mode, { ready: number[]; run: number[] }> = {
  isolated: { ready: [], run: [] },
  open: { ready: [], run: [] },
};
for (let i = 0; i < rounds; i++) {
  const order: Mode[] = i % 2 === 0 ? ['isolated', 'open'] : ['open', 'isolated'];
  for (const mode of order) {
    const t = await restoredRun(mode, keys[mode]);
    times[mode].ready.push(t.readyMs);
    times[mode].run.push(t.runMs);
  }
  console.log(
    `round ${i + 1}: isolated ${sec(times.isolated.ready[i] ?? NaN)} + ${sec(times.isolated.run[i] ?? NaN)} s, open ${sec(times.open.ready[i] ?? NaN)} + ${sec(times.open.run[i] ?? NaN)} s (ready + push and zeropage)`,
  );
}
const total = (m: Mode) => median(times[m].ready.map((r, i) => r + (times[m].run[i] ?? NaN)));
for (const m of ['isolated', 'open'] as const)
  console.log(
    `${m}: ready median ${sec(median(times[m].ready))} s, push + zeropage median ${sec(median(times[m].run))} s, total median ${sec(total(m))} s`,
  );
console.log(`isolated/open total ${(total('isolated') / total('open')).toFixed(3)} (goal < 1.05)`);
await rm(consoleDir, { recursive: true, force: true });
await rm(bare, { force: true });
