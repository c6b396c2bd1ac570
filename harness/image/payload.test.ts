import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { run } from '../util/proc.js';
import { bootImage } from './payload.js';

const root = mkdtempSync(join(tmpdir(), 'faultline-payload-test-'));
process.env['FAULTLINE_CACHE'] = join(root, 'cache');

interface Entry {
  name: string;
  mode: number;
  uid: number;
  data: Buffer;
}

/**
 * Walk concatenated newc archives the way the kernel's initramfs unpacker does: NUL padding
 * between archives is skipped, but an archive must start 4-byte aligned.
 */
function unpackLikeTheKernel(buf: Buffer): { archives: number; entries: Entry[] } {
  const entries: Entry[] = [];
  let at = 0;
  let archives = 0;
  const align = (n: number) => (n + 3) & ~3;
  while (at < buf.length) {
    if (buf[at] === 0) {
      at++;
      continue;
    }
    if (at % 4 !== 0) throw new Error(`an archive starts at ${at}, not 4-byte aligned`);
    const magic = buf.toString('latin1', at, at + 6);
    if (magic !== '070701') throw new Error(`no newc header at ${at} (${magic})`);
    const field = (i: number) => parseInt(buf.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const [mode, uid, size, nameSize] = [field(1), field(2), field(6), field(11)];
    const name = buf.toString('utf8', at + 110, at + 110 + nameSize - 1);
    const dataAt = align(at + 110 + nameSize);
    at = align(dataAt + size);
    if (name === 'TRAILER!!!') {
      archives++;
      continue;
    }
    entries.push({ name, mode, uid, data: buf.subarray(dataAt, dataAt + size) });
  }
  return { archives, entries };
}

async function baseImage(): Promise<{ path: string; hash: string }> {
  const tree = join(root, 'base');
  mkdirSync(join(tree, 'root'), { recursive: true });
  writeFileSync(join(tree, 'init'), '#!/bin/sh\n');
  const path = join(root, 'base.cpio');
  await run('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '-O', path], {
    cwd: tree,
    input: 'init\nroot\n',
    timeoutMs: 30_000,
  });
  return { path, hash: 'b'.repeat(24) };
}

function program(dir: string, name: string, content: string, mode: number): string {
  mkdirSync(join(root, dir), { recursive: true });
  const path = join(root, dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

t.test('a boot image is the base archive followed by one holding the binaries, as the kernel reads it', async (t) => {
  const base = await baseImage();
  const tool = program('a', 'uffd-unit-tests', 'ELF uffd', 0o755);
  const data = program('b', 'notes.txt', 'text', 0o644);
  const path = await bootImage(base, [tool, data], '/root/faultline');
  const { archives, entries } = unpackLikeTheKernel(readFileSync(path));
  t.equal(archives, 2, 'two archives: the base, then the binaries');
  const byName = new Map(entries.map((e) => [e.name, e]));
  t.ok(byName.has('init'), "the base's files come first");
  const got = byName.get('root/faultline/uffd-unit-tests');
  t.equal(got?.data.toString(), 'ELF uffd', 'a binary with its content (not a link)');
  t.equal((got?.mode ?? 0) & 0o7777, 0o755, 'executable stays executable');
  t.equal(got?.uid, 0, 'owned by root');
  t.equal((byName.get('root/faultline/notes.txt')?.mode ?? 0) & 0o7777, 0o644);
  t.equal(((byName.get('root/faultline')?.mode ?? 0) & 0o170000).toString(8), '40000', 'its directory');

  t.equal(await bootImage(base, [data, tool], '/root/faultline'), path, 'the same binaries: the same cached image');
  writeFileSync(tool, 'ELF uffd v2');
  const changed = await bootImage(base, [tool, data], '/root/faultline');
  t.not(changed, path, 'a changed binary: another image');
  const v2 = unpackLikeTheKernel(readFileSync(changed)).entries.find(
    (e) => e.name === 'root/faultline/uffd-unit-tests',
  );
  t.equal(v2?.data.toString(), 'ELF uffd v2', 'holding the new content');
  chmodSync(data, 0o755);
  t.not(await bootImage(base, [tool, data], '/root/faultline'), changed, 'a changed mode: another image');
  t.equal(await bootImage(base, [], '/root/faultline'), base.path, 'no binaries: the base itself');
});

t.test('binaries the guest directory cannot hold are refused with what is wrong', async (t) => {
  const base = await baseImage();
  const one = program('c', 'same', 'x', 0o755);
  const two = program('d', 'same', 'y', 0o755);
  await t.rejects(bootImage(base, [one, two], '/root/faultline'), /two test binaries are named same/);
  const odd = program('e', 'new\nline', 'z', 0o755);
  await t.rejects(bootImage(base, [odd], '/root/faultline'), /cannot go into the guest's initramfs/);
});

t.test('old boot images beyond the newest six, and leftovers of killed builds, are pruned', async (t) => {
  const base = await baseImage();
  const dir = join(root, 'cache', 'initramfs');
  const old = new Date(Date.now() - 3600_000);
  const stale = Array.from({ length: 8 }, (_, i) => join(dir, `boot-${String(i).repeat(24)}.cpio`));
  for (const p of [...stale, join(dir, 'boot-x.cpio.tmp-1'), join(dir, 'boot-recent.cpio.tmp-2')]) {
    writeFileSync(p, 'old');
    if (!p.endsWith('tmp-2')) utimesSync(p, old, old);
  }
  const fresh = await bootImage(base, [program('f', 'prune-probe', 'new', 0o755)], '/root/faultline');
  const left = readdirSync(dir).filter((n) => n.startsWith('boot-'));
  t.ok(left.includes(basename(fresh)), 'the image just made stays');
  t.equal(left.filter((n) => /^boot-[0-9a-f]{24}\.cpio$/.test(n)).length, 6, 'six images in all');
  t.notOk(left.includes('boot-x.cpio.tmp-1'), "an old killed build's leftover goes");
  t.ok(left.includes('boot-recent.cpio.tmp-2'), 'a recent one may be a build in progress: it stays');
});
