import t from 'tap';
import { kernelCmdline, minMemFor1gPages, qemuArgs, type QemuConfig } from './qemu-args.js';

const base: QemuConfig = {
  qemu: 'qemu-system-x86_64',
  kernel: '/k/bzImage',
  initrd: '/k/initramfs.cpio',
  accel: 'tcg',
  memMiB: 1024,
  smp: 2,
  guestRam: 'anon',
  sshPort: 40222,
  hugepages2m: 64,
  hugepages1g: 0,
};
const after = (args: string[], flag: string): string[] =>
  args.flatMap((a, i) => (a === flag ? [args[i + 1] ?? ''] : []));

t.test('TCG command line: console on stdio, hostfwd on 127.0.0.1 only, no reboot on panic', async (t) => {
  const a = qemuArgs(base);
  t.same(after(a, '-accel'), ['tcg,thread=multi']);
  t.same(after(a, '-cpu'), ['max']);
  t.same(after(a, '-netdev'), ['user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40222-:22']);
  t.ok(a.includes('-no-reboot'));
  t.same(after(a, '-serial'), ['chardev:con0']);
  t.same(after(a, '-kernel'), ['/k/bzImage']);
  t.same(after(a, '-smp'), ['2']);
  t.same(after(a, '-object'), ['memory-backend-ram,id=mem0,size=1024M']);
  t.match(after(a, '-append')[0], /console=ttyS0,115200 panic=-1 .*faultline\.hugepages=64/);
});

t.test('KVM uses the host CPU model', async (t) => {
  const a = qemuArgs({ ...base, accel: 'kvm' });
  t.same(after(a, '-accel'), ['kvm']);
  t.same(after(a, '-cpu'), ['host']);
});

t.test('guest RAM backings map to QEMU memory backends', async (t) => {
  t.same(after(qemuArgs({ ...base, guestRam: 'shmem' }), '-object'), [
    'memory-backend-memfd,id=mem0,size=1024M,share=on',
  ]);
  t.same(after(qemuArgs({ ...base, guestRam: 'hugetlb' }), '-object'), [
    'memory-backend-memfd,id=mem0,size=1024M,hugetlb=on,hugetlbsize=2M,share=on',
  ]);
  t.same(after(qemuArgs({ ...base, guestRam: 'hugetlb', hugetlbPath: '/dev/hugepages' }), '-object'), [
    'memory-backend-file,id=mem0,size=1024M,mem-path=/dev/hugepages,share=on,prealloc=on',
  ]);
});

t.test('1 GiB hugepages are reserved on the kernel command line', async (t) => {
  t.match(kernelCmdline({ hugepages2m: 32, hugepages1g: 2 }), /hugepagesz=1G hugepages=2 default_hugepagesz=2M/);
  t.notMatch(kernelCmdline({ hugepages2m: 32, hugepages1g: 0 }), /hugepagesz/);
  t.match(
    kernelCmdline({ hugepages2m: 32, hugepages1g: 0, extraCmdline: 'hung_task_timeout_secs=10' }),
    /hung_task_timeout_secs=10$/,
  );
});

t.test('guest RAM on hugetlb: the host check names how many pages are missing', async (t) => {
  const { checkHostHugepages } = await import('../run/run.js');
  const meminfo = 'HugePages_Total:      10\nHugePages_Free:       10\nHugepagesize:       2048 kB\n';
  await t.rejects(
    checkHostHugepages(1024, meminfo),
    /needs 512 free 2 MiB host hugepages for --mem 1024, the host has 10: 502 missing; run 'echo 512 > \/proc\/sys\/vm\/nr_hugepages'/,
  );
  await t.resolves(checkHostHugepages(16, meminfo));
});

t.test('--numa N: one memory backend per node, vCPUs dealt out, memory-only nodes past the vCPUs', async (t) => {
  const two = qemuArgs({ ...base, numaNodes: 2 });
  t.same(after(two, '-machine'), ['q35']);
  t.same(after(two, '-object'), ['memory-backend-ram,id=mem0,size=512M', 'memory-backend-ram,id=mem1,size=512M']);
  t.same(after(two, '-numa'), ['node,nodeid=0,memdev=mem0,cpus=0-0', 'node,nodeid=1,memdev=mem1,cpus=1-1']);
  t.same(after(two, '-smp'), ['2,sockets=2,cores=1,threads=1'], 'one socket per node');
  const three = qemuArgs({ ...base, numaNodes: 3, guestRam: 'shmem' });
  t.same(after(three, '-object'), [
    'memory-backend-memfd,id=mem0,size=340M,share=on',
    'memory-backend-memfd,id=mem1,size=340M,share=on',
    'memory-backend-memfd,id=mem2,size=344M,share=on',
  ]);
  t.same(after(three, '-numa'), [
    'node,nodeid=0,memdev=mem0,cpus=0-0',
    'node,nodeid=1,memdev=mem1,cpus=1-1',
    'node,nodeid=2,memdev=mem2',
  ]);
  const six = qemuArgs({ ...base, smp: 6, numaNodes: 4 });
  t.same(after(six, '-smp'), ['6,sockets=3,cores=2,threads=1'], 'whole sockets: 3 nodes with 2 vCPUs, 1 memory-only');
  t.same(
    after(six, '-numa').map((n) => n.replace(/^node,nodeid=\d,memdev=mem\d,?/, '')),
    ['cpus=0-1', 'cpus=2-3', 'cpus=4-5', ''],
  );
  t.same(after(qemuArgs({ ...base, numaNodes: 1 }), '-machine'), ['q35,memory-backend=mem0'], 'one node is no NUMA');
});

t.test('1 GiB pages need whole GiBs above 4 GiB in the guest', async (t) => {
  t.equal(minMemFor1gPages(0, 64), 0);
  t.equal(minMemFor1gPages(1, 64), 4096);
  t.equal(minMemFor1gPages(2, 64), 5120);
});

t.test('snapshots: QMP on a unix socket; a restore starts paused for migrate-incoming', async (t) => {
  t.notOk(qemuArgs(base).includes('-qmp'), 'no QMP unless asked');
  const a = qemuArgs({ ...base, qmpSocket: '/tmp/q.sock', incoming: true });
  t.same(after(a, '-qmp'), ['unix:/tmp/q.sock,server=on,wait=off']);
  t.same(after(a, '-incoming'), ['defer']);
});

t.test('an isolated guest: restricted user network with only the SSH forward, QEMU under seccomp', async (t) => {
  for (const c of [base, { ...base, accel: 'kvm' as const }, { ...base, qmpSocket: '/tmp/q.sock', incoming: true }]) {
    const a = qemuArgs(c);
    const netdev = after(a, '-netdev');
    t.equal(netdev.length, 1, 'one network backend');
    const opts = (netdev[0] ?? '').split(',');
    t.ok(opts.includes('restrict=on'), 'restrict=on: the guest opens no connection to the host or beyond');
    t.same(
      opts.filter((o) => /^(hostfwd|guestfwd)=/.test(o)),
      ['hostfwd=tcp:127.0.0.1:40222-:22'],
      'the SSH forward on 127.0.0.1 is the only way in, nothing forwarded out',
    );
    t.same(after(a, '-nic'), [], 'no second network');
    t.same(after(a, '-sandbox'), ['on,obsolete=deny,elevateprivileges=deny,resourcecontrol=deny']);
    t.notMatch(after(a, '-sandbox')[0] ?? '', /spawn=deny/, 'snapshots migrate through exec:, which spawns');
  }
});
