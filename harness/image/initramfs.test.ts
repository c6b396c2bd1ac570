import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLdd } from './initramfs.js';
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
