import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, run } from '../../harness/util/proc.js';

/** A busybox initramfs whose init prints BARE-INIT-START and powers off: the bare kernel's boot-to-init. */
export async function bareInitramfs(): Promise<string> {
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
