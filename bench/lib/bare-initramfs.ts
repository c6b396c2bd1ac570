import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireKernel } from '../../harness/kernel/bootable.js';
import { buildInitramfs } from '../../harness/image/initramfs.js';
import { chooseAccel } from '../../harness/vm/accel.js';
import { freePort, Guest, requireQemu } from '../../harness/vm/guest.js';
import { requireTool, run } from '../../harness/util/proc.js';

/** A busybox initramfs whose init prints BARE-INIT-START and powers off: the bare kernel's boot-to-init. */
async function bareInitramfs(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'bench-bare-'));
  await mkdir(join(root, 'bin'));
  await copyFile(await requireTool('busybox', 'busybox-static'), join(root, 'bin', 'busybox'));
  await writeFile(join(root, 'init'), '#!/bin/busybox sh\necho BARE-INIT-START\n/bin/busybox poweroff -f\n');
  await chmod(join(root, 'init'), 0o755);
  const out = join(root, '..', `bare-${Date.now()}.cpio`);
  await run('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '-O', out], {
    timeoutMs: 60_000,
    cwd: root,
    input: 'bin\nbin/busybox\ninit\n',
  });
  await rm(root, { recursive: true, force: true });
  return out;
}

/**
 * What the boot benchmarks compare on: Debian's 6.12 kernel with faultline's initramfs and
 * with the bare one, and the guest settings both boot with.
 */
export async function benchGuests() {
  const kernel = await acquireKernel({ kind: 'debian', series: '6.12' });
  const qemu = await requireQemu();
  const image = await buildInitramfs(kernel.modulesDir ? { modulesDir: kernel.modulesDir } : {});
  const bare = await bareInitramfs();
  const accel = await chooseAccel('auto', { qemu, kernel: kernel.bzImage, initrd: image.path });
  const common = {
    qemu,
    kernel: kernel.bzImage,
    accel: accel.accel,
    memMiB: 1024,
    smp: 2,
    guestRam: 'anon' as const,
    hugepages2m: 64,
    hugepages1g: 0,
  };
  /** The bare kernel's boot: milliseconds from QEMU's start to the bare init's first line. */
  const bootBare = async (consoleDir: string): Promise<number> => {
    const port = await freePort();
    const guest = await Guest.start(
      { ...common, initrd: bare, sshPort: port },
      { consolePath: join(consoleDir, `bare-${port}.log`), lifetimeMs: 300_000 },
    );
    const m = await guest.console.waitFor(/BARE-INIT-START/, 300_000);
    const ms = Date.now() - guest.startedAt;
    await guest.stop();
    if (!m) throw new Error('bare initramfs never reached init');
    return ms;
  };
  return { kernel, qemu, image, bare, accel, common, bootBare };
}
