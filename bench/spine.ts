/**
 * Spine benchmarks, measured side by side in one run on the same kernel and accel:
 *  1. boot-to-SSH-ready of the harness guest vs the same kernel booting a bare busybox
 *     initramfs to its first init line;
 *  2. SFTP push (faultline, ssh2) of the test binaries vs OpenSSH scp of the same files
 *     to the same guest;
 *  3. (optional, --run) a warm-cache `faultline run` and the share of its wall time spent
 *     outside the guest's test processes.
 * Usage: node dist/bench/spine.js [--rounds N] [--run]
 */
import { execa } from 'execa';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSelftests } from '../harness/selftests/build.js';
import type { Guest } from '../harness/vm/guest.js';
import type { SshSession } from '../harness/ssh/transport.js';
import { bootGuest } from '../harness/run/boot.js';
import { requireTool } from '../harness/util/proc.js';
import { readRunRecord } from '../harness/results/record.js';
import { PROJECT_ROOT } from '../harness/util/project.js';
import { benchGuests } from './lib/bare-initramfs.js';
import { median } from '../harness/stats/descriptive.js';

const argv = process.argv.slice(2);
const rounds = Number(argv[argv.indexOf('--rounds') + 1] ?? 3) || 3;

const { kernel, image, bare, accel, common, bootBare } = await benchGuests();
const consoleDir = await mkdtemp(join(tmpdir(), 'bench-console-'));
console.log(`kernel ${kernel.info.release ?? ''}, accel ${accel.accel} (${accel.note}), ${rounds} rounds`);

async function bootHarness(): Promise<{ guest: Guest; ssh: SshSession; ms: number }> {
  const b = await bootGuest(
    { ...common, initrd: image.path },
    { consolePath: join(consoleDir, `h-${Date.now()}.log`), bootTimeoutSec: 300, keys: image.keys },
  );
  return { guest: b.guest, ssh: b.ssh, ms: b.bootMs };
}

const harnessBoot: number[] = [];
const bareBoot: number[] = [];
for (let i = 0; i < rounds; i++) {
  bareBoot.push(await bootBare(consoleDir));
  const h = await bootHarness();
  harnessBoot.push(h.ms);
  h.ssh.close();
  await h.guest.stop();
}
console.log(
  `boot: harness to SSH-ready median ${(median(harnessBoot) / 1000).toFixed(2)} s, bare busybox to first init line median ${(median(bareBoot) / 1000).toFixed(2)} s, ratio ${(median(harnessBoot) / median(bareBoot)).toFixed(2)} (goal <= 1.3)`,
);

// Push: same guest, same files, alternating tools.
const tests = await buildSelftests({ tree: kernel.sourceTree ?? '' });
const files = tests.programs.filter((p) => p.status === 'built' && p.path).map((p) => p.path ?? '');
let bytes = 0;
for (const f of files) bytes += (await stat(f)).size;
const h = await bootHarness();
const scp = await requireTool('scp', 'openssh-client');
const sftpMs: number[] = [];
const scpMs: number[] = [];
for (let i = 0; i < rounds; i++) {
  await h.ssh.check('rm -rf /root/push-a /root/push-b && mkdir -p /root/push-a /root/push-b');
  let t = Date.now();
  await h.ssh.push(files, '/root/push-a', 300_000);
  sftpMs.push(Date.now() - t);
  t = Date.now();
  await execa(
    scp,
    [
      '-q',
      '-i',
      image.keys.clientPrivatePath,
      '-P',
      String(h.guest.config.sshPort),
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      ...files,
      'root@127.0.0.1:/root/push-b/',
    ],
    { timeout: 300_000 },
  );
  scpMs.push(Date.now() - t);
}
h.ssh.close();
await h.guest.stop();
const mib = bytes / 1048576;
const sftpTput = mib / (median(sftpMs) / 1000);
const scpTput = mib / (median(scpMs) / 1000);
console.log(
  `push: ${files.length} files, ${mib.toFixed(1)} MiB: faultline SFTP ${sftpTput.toFixed(2)} MiB/s, OpenSSH scp ${scpTput.toFixed(2)} MiB/s, ratio ${(sftpTput / scpTput).toFixed(2)} (goal >= 0.8)`,
);

if (argv.includes('--run')) {
  const resultsRoot = await mkdtemp(join(tmpdir(), 'bench-run-'));
  const t = Date.now();
  await execa(
    'node',
    [join(PROJECT_ROOT, 'bin', 'faultline.js'), 'run', '--results', resultsRoot, '--run-id', 'warm'],
    { timeout: 3 * 3600_000, reject: false },
  );
  const wall = Date.now() - t;
  const rec = await readRunRecord(join(resultsRoot, 'warm', 'results.json'));
  const outside = wall - rec.timing.testsMs;
  console.log(
    `warm-cache faultline run (default suite): wall ${(wall / 1000).toFixed(1)} s, inside guest test processes ${(rec.timing.testsMs / 1000).toFixed(1)} s, harness overhead ${((100 * outside) / wall).toFixed(1)}% (boot ${(rec.timing.bootMs / 1000).toFixed(1)} s, push ${(rec.timing.pushMs / 1000).toFixed(1)} s, prepare ${(rec.timing.prepareMs / 1000).toFixed(1)} s; goal < 10%)`,
  );
}
await rm(consoleDir, { recursive: true, force: true });
await rm(bare, { force: true });
