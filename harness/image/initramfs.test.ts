import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashTree, parseLdd } from './initramfs.js';
import { parseModulesDep, resolveModules } from './modules.js';
import { which } from '../util/proc.js';

t.test('parseLdd on the real ldd output of the host sshd: libraries and the ELF interpreter', async (t) => {
  const sshd = await which('sshd');
  if (!sshd) return t.fail('sshd missing: run npm run setup');
  const r = await execa('ldd', [sshd]);
  const libs = parseLdd(r.stdout);
  t.ok(
    libs.some((l) => /\/libc\.so\.6$/.test(l)),
    'libc',
  );
  t.ok(
    libs.some((l) => /ld-linux-x86-64\.so\.2$/.test(l)),
    'interpreter',
  );
  t.ok(
    libs.every((l) => l.startsWith('/')),
    'absolute paths only (no vdso)',
  );
  t.equal(new Set(libs).size, libs.length);
});

t.test('modules: dependencies first, built-ins skipped, a missing module named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'faultline-mods-'));
  mkdirSync(join(dir, 'kernel'), { recursive: true });
  // The shape of a real modules.dep line for Debian's virtio_net.
  writeFileSync(
    join(dir, 'modules.dep'),
    [
      'kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz',
      'kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz',
      'kernel/net/core/failover.ko.xz:',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'modules.builtin'), 'kernel/drivers/virtio/virtio_pci.ko\n');
  const mods = await resolveModules(dir, ['virtio_net', 'virtio_pci']);
  const order = mods.map((m) => m.name);
  t.equal(order.length, 3);
  t.ok(order.indexOf('failover') < order.indexOf('net_failover'), 'failover before net_failover');
  t.ok(order.indexOf('net_failover') < order.indexOf('virtio_net'), 'net_failover before virtio_net');
  t.notOk(order.includes('virtio_pci'), 'built-in skipped');
  await t.rejects(resolveModules(dir, ['virtio_blk']), /module virtio_blk .* is neither built in nor in/);
  t.equal(parseModulesDep('a/b-c.ko: \n').get('b_c')?.path, 'a/b-c.ko', 'dashes normalised to underscores');
});

t.test(
  'the image hash covers the staged bytes and link targets, never what a link points at on the host',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'faultline-hash-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const root = join(dir, 'root');
    const host = join(dir, 'host-busybox');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin', 'busybox'), 'guest busybox');
    writeFileSync(host, 'host busybox v1');
    // As staged: the applet links are absolute, so on the host they resolve outside the tree.
    symlinkSync(host, join(root, 'bin', 'sh'));
    const first = await hashTree(root);
    writeFileSync(host, 'host busybox v2');
    t.equal(await hashTree(root), first, 'a host file behind a link is not the image');
    rmSync(join(root, 'bin', 'sh'));
    symlinkSync('/bin/busybox', join(root, 'bin', 'sh'));
    const relinked = await hashTree(root);
    t.not(relinked, first, 'a link to elsewhere is another image');
    writeFileSync(join(root, 'bin', 'busybox'), 'guest busybox, patched');
    t.not(await hashTree(root), relinked, 'a staged byte is another image');
  },
);
