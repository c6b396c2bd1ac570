import type { Accel, GuestRam } from '../results/types.js';

/** Everything that determines the QEMU command line; built by a pure function so it can be tested. */
export interface QemuConfig {
  qemu: string;
  kernel: string;
  initrd: string;
  accel: Accel;
  memMiB: number;
  smp: number;
  guestRam: GuestRam;
  /** Path for memory-backend-file when guestRam is hugetlb on a hugetlbfs mount; memfd otherwise. */
  hugetlbPath?: string;
  sshPort: number;
  hugepages2m: number;
  hugepages1g: number;
  extraCmdline?: string;
  /** Guest NUMA nodes (QEMU -numa); 1 or absent: none. */
  numaNodes?: number;
  /** QMP on this unix socket (saving and restoring snapshots go through it). */
  qmpSocket?: string;
  /** Start paused, waiting for QMP migrate-incoming (a restore from a snapshot). */
  incoming?: boolean;
  /**
   * bench/isolation-cost.ts only: without restrict=on and -sandbox, to measure what the guest's
   * isolation costs side by side. faultline itself never sets it.
   */
  withoutIsolation?: boolean;
}

/**
 * Guest RAM (MiB) that lets the kernel reserve `n` 1 GiB pages at boot. A 1 GiB page
 * needs a free, 1 GiB-aligned GiB: q35 maps at most 2 GiB below 4 GiB (where the kernel
 * and initrd sit) and the rest from 4 GiB up, and the kernel's own early allocations
 * take the top of RAM. Measured with Debian 6.12: one page fails with 2 and 3 GiB of
 * guest RAM and succeeds with 4.
 */
export function minMemFor1gPages(n: number, hugepages2m: number): number {
  return n === 0 ? 0 : Math.max(3072 + 1024 * n, n * 1024 + hugepages2m * 2 + 512);
}

export function kernelCmdline(c: Pick<QemuConfig, 'hugepages2m' | 'hugepages1g' | 'extraCmdline'>): string {
  const parts = [
    'console=ttyS0,115200',
    // Reboot (= QEMU exits, with -no-reboot) on panic so a dead guest is noticed at once.
    'panic=-1',
    'rdinit=/init',
    'loglevel=7',
    // The selftests and benchmarks do not care about these and TCG pays dearly for them.
    'mitigations=off',
    'random.trust_cpu=on',
    `faultline.hugepages=${c.hugepages2m}`,
  ];
  if (c.hugepages1g > 0) parts.push('hugepagesz=1G', `hugepages=${c.hugepages1g}`, 'default_hugepagesz=2M');
  if (c.extraCmdline) parts.push(c.extraCmdline);
  return parts.join(' ');
}

function memoryBackend(c: QemuConfig, id: string, sizeMiB: number): string {
  const size = `size=${sizeMiB}M`;
  switch (c.guestRam) {
    case 'anon':
      return `memory-backend-ram,id=${id},${size}`;
    case 'shmem':
      return `memory-backend-memfd,id=${id},${size},share=on`;
    case 'hugetlb':
      return c.hugetlbPath
        ? `memory-backend-file,id=${id},${size},mem-path=${c.hugetlbPath},share=on,prealloc=on`
        : `memory-backend-memfd,id=${id},${size},hugetlb=on,hugetlbsize=2M,share=on`;
  }
}

/** Sockets for a NUMA guest: the most nodes that can each hold whole sockets' worth of the vCPUs. */
function numaSockets(c: QemuConfig): number {
  const nodes = c.numaNodes ?? 1;
  let sockets = Math.min(nodes, c.smp);
  while (c.smp % sockets !== 0) sockets--;
  return sockets;
}

/**
 * Guest memory and CPUs: one backend for the machine, or with NUMA one backend per node
 * (sizes in whole 2 MiB pages, the last node takes the rest), one socket per node that
 * has vCPUs (cores of one socket split across nodes make the kernel WARN in
 * topology_sane()), and memory-only nodes past those, as with a CXL or HBM node.
 */
function memoryArgs(c: QemuConfig): string[] {
  const nodes = c.numaNodes ?? 1;
  if (nodes <= 1)
    return [
      '-machine',
      'q35,memory-backend=mem0',
      '-object',
      memoryBackend(c, 'mem0', c.memMiB),
      '-smp',
      String(c.smp),
    ];
  const per = Math.floor(c.memMiB / nodes / 2) * 2;
  const sockets = numaSockets(c);
  const perSocket = c.smp / sockets;
  const args = ['-machine', 'q35', '-smp', `${c.smp},sockets=${sockets},cores=${perSocket},threads=1`];
  for (let i = 0; i < nodes; i++) {
    const size = i === nodes - 1 ? c.memMiB - per * (nodes - 1) : per;
    const cpus = i < sockets ? `,cpus=${i * perSocket}-${(i + 1) * perSocket - 1}` : '';
    args.push('-object', memoryBackend(c, `mem${i}`, size), '-numa', `node,nodeid=${i},memdev=mem${i}${cpus}`);
  }
  return args;
}

/**
 * QEMU's seccomp filter: no obsolete syscalls, no setuid/setgid, no scheduler or
 * priority changes. spawn stays allowed: snapshots migrate through `exec:cat`
 * (QEMU 7.2 has no `file:` migration URI), which forks a shell.
 */
const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,resourcecontrol=deny';

export function qemuArgs(c: QemuConfig): string[] {
  return [
    ...memoryArgs(c),
    '-accel',
    c.accel === 'kvm' ? 'kvm' : 'tcg,thread=multi',
    '-cpu',
    c.accel === 'kvm' ? 'host' : 'max',
    '-m',
    `${c.memMiB}M`,
    '-kernel',
    c.kernel,
    '-initrd',
    c.initrd,
    '-append',
    kernelCmdline(c),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-vga',
    'none',
    '-no-reboot',
    '-chardev',
    'stdio,id=con0,signal=off',
    '-serial',
    'chardev:con0',
    // restrict=on: the guest (a test program, or a hostile kernel) opens no connection
    // through slirp, so it reaches neither the host's loopback (10.0.2.2, 10.0.2.3) nor
    // any other address; only the SSH forward below, which the host opens, gets in.
    '-netdev',
    `user,id=net0${c.withoutIsolation ? '' : ',restrict=on'},hostfwd=tcp:127.0.0.1:${c.sshPort}-:22`,
    '-device',
    'virtio-net-pci,netdev=net0',
    '-device',
    'virtio-rng-pci',
    ...(c.withoutIsolation ? [] : ['-sandbox', QEMU_SANDBOX]),
    ...(c.qmpSocket ? ['-qmp', `unix:${c.qmpSocket},server=on,wait=off`] : []),
    ...(c.incoming ? ['-incoming', 'defer'] : []),
  ];
}
