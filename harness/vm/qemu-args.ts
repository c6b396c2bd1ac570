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

function memoryBackend(c: QemuConfig): string {
  const size = `size=${c.memMiB}M`;
  switch (c.guestRam) {
    case 'anon':
      return `memory-backend-ram,id=mem0,${size}`;
    case 'shmem':
      return `memory-backend-memfd,id=mem0,${size},share=on`;
    case 'hugetlb':
      return c.hugetlbPath
        ? `memory-backend-file,id=mem0,${size},mem-path=${c.hugetlbPath},share=on,prealloc=on`
        : `memory-backend-memfd,id=mem0,${size},hugetlb=on,hugetlbsize=2M,share=on`;
  }
}

export function qemuArgs(c: QemuConfig): string[] {
  return [
    '-machine', 'q35,memory-backend=mem0',
    '-accel', c.accel === 'kvm' ? 'kvm' : 'tcg,thread=multi',
    '-cpu', c.accel === 'kvm' ? 'host' : 'max',
    '-smp', String(c.smp),
    '-m', `${c.memMiB}M`,
    '-object', memoryBackend(c),
    '-kernel', c.kernel,
    '-initrd', c.initrd,
    '-append', kernelCmdline(c),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-vga', 'none',
    '-no-reboot',
    '-chardev', 'stdio,id=con0,signal=off',
    '-serial', 'chardev:con0',
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${c.sshPort}-:22`,
    '-device', 'virtio-net-pci,netdev=net0',
    '-device', 'virtio-rng-pci',
  ];
}
