import t from 'tap';
import { execa } from 'execa';
import {
  mkdtempSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs, hashTree, parseLdd } from './initramfs.js';
import { inputsStamp, unchangedImage } from './image-inputs.js';
import { setVerbose } from '../util/log.js';
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

/** Run `fn` with faultline's log on and stderr captured: what it logged. */
async function logged<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let lines = '';
  process.stderr.write = (chunk: string | Uint8Array): boolean => {
    lines += String(chunk);
    return true;
  };
  setVerbose(true);
  try {
    return { value: await fn(), lines };
  } finally {
    process.stderr.write = write;
    setVerbose(false);
  }
}

t.test('an unchanged image is taken from its inputs record; a missing one is staged again', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'faultline-image-cache-'));
  const before = process.env['FAULTLINE_CACHE'];
  process.env['FAULTLINE_CACHE'] = cache;
  t.teardown(() => {
    if (before === undefined) delete process.env['FAULTLINE_CACHE'];
    else process.env['FAULTLINE_CACHE'] = before;
    rmSync(cache, { recursive: true, force: true });
  });
  const first = await logged(() => buildInitramfs());
  t.match(first.lines, /built initramfs /, 'the first build stages and writes the image');
  const record = readFileSync(join(cache, 'initramfs', readdirOne(join(cache, 'initramfs'), /^inputs-/)), 'utf8');
  const sources = (JSON.parse(record) as { sources: string[] }).sources;
  for (const want of [/\/sshd$/, /\/busybox$/, /\/libc\.so\.6$/, /images\/init\.sh$/])
    t.ok(
      sources.some((p) => want.test(p)),
      `the record lists ${String(want)}`,
    );

  const again = await logged(() => buildInitramfs());
  t.match(again.lines, /initramfs inputs unchanged/, 'the second takes the recorded image');
  t.notMatch(again.lines, /\$ ldd |built initramfs/, 'without staging (no ldd) or writing');
  t.same(again.value, first.value, 'the same image');

  rmSync(first.value.path);
  const rebuilt = await logged(() => buildInitramfs());
  t.match(rebuilt.lines, /built initramfs /, 'an image gone from the cache is staged and written again');
  t.equal(rebuilt.value.hash, first.value.hash, 'with the same content hash');
});

t.test('the inputs stamp follows each source file: mtime, a file replaced, a file gone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'faultline-stamp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'sshd');
  writeFileSync(src, 'build 1');
  const fixed = ['code x'];
  const stamp = await inputsStamp([src], fixed);
  t.equal(await inputsStamp([src], fixed), stamp, 'unchanged: the same stamp');
  t.not(await inputsStamp([src], ['code y']), stamp, 'other staging code: another stamp');
  utimesSync(src, new Date(), new Date(Date.now() + 5000));
  const touched = await inputsStamp([src], fixed);
  t.not(touched, stamp, 'a new mtime');
  // Same size and mtime, another inode: a package upgrade's rename over the old file.
  const { mtime } = await import('node:fs').then((fs) => fs.statSync(src));
  writeFileSync(join(dir, 'new'), 'build 2');
  utimesSync(join(dir, 'new'), mtime, mtime);
  renameSync(join(dir, 'new'), src);
  t.not(await inputsStamp([src], fixed), touched, 'a file replaced in place');
  rmSync(src);
  t.equal(await inputsStamp([src], fixed), undefined, 'a file gone: no stamp');
  t.equal(await unchangedImage('nothing recorded', fixed, () => Promise.resolve(src)), undefined, 'no record: stage');
});

function readdirOne(dir: string, re: RegExp): string {
  const hits = readdirSync(dir).filter((f) => re.test(f));
  if (hits.length !== 1) throw new Error(`${dir}: ${hits.length} files match ${String(re)}`);
  return hits[0] ?? '';
}
