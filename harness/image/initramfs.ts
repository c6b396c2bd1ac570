import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
  mkdtemp,
  rename,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { basename, dirname, extname, join } from 'node:path';
import { FaultlineError } from '../util/errors.js';
import { cacheDir, exists, listFiles, sha256 } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { requireTool, run } from '../util/proc.js';
import { PROJECT_ROOT } from '../util/project.js';
import { guestKeys, type GuestKeys } from './keys.js';
import { inputsStamp, recordInputs, unchangedImage } from './image-inputs.js';
import { resolveModules } from './modules.js';

/**
 * The guest's root filesystem: an uncompressed newc initramfs (uncompressed because
 * decompression is slow under TCG) holding static busybox, the host's OpenSSH sshd
 * with the shared libraries ldd reports, the network driver modules when the
 * kernel has them as modules, and images/init.sh as /init. Cached by content hash.
 */
export interface Initramfs {
  path: string;
  hash: string;
  keys: GuestKeys;
  modules: string[];
}

export interface InitramfsOptions {
  /** lib/modules/<release> of the kernel, when its virtio drivers are modules. */
  modulesDir?: string;
}

/**
 * Tools kselftest's shell scripts call that static busybox lacks or implements differently:
 * charge_reserved_hugetlb.sh finds its writer with `pgrep -f` (busybox-static has no pgrep) and
 * stops it with `killall --wait` (busybox takes --wait for a process name and returns at once),
 * so with busybox the writer outlives the test, which then fails to unmount and hangs its runner.
 */
const GUEST_TOOLS: readonly { name: string; pkg: string }[] = [
  { name: 'pgrep', pkg: 'procps' },
  { name: 'pkill', pkg: 'procps' },
  { name: 'killall', pkg: 'psmisc' },
];

/** Drivers the guest needs for its devices; those built in are skipped. */
const GUEST_MODULES = ['virtio_pci', 'virtio_net'];
const IMAGES_DIR = join(PROJECT_ROOT, 'images');

/** Shared libraries (and the ELF interpreter) a dynamic binary needs, per ldd. */
export function parseLdd(output: string): string[] {
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    if (arrow?.[1]) libs.push(arrow[1]);
    else {
      const direct = /^\s*(\/\S+)\s+\(0x/.exec(line);
      if (direct?.[1]) libs.push(direct[1]);
    }
  }
  return [...new Set(libs)];
}

/** Every host file an image was staged from: what the inputs record checks by stat. */
type Sources = Set<string>;

async function copyInto(
  root: string,
  sources: Sources,
  hostPath: string,
  guestPath = hostPath,
  mode?: number,
): Promise<void> {
  sources.add(hostPath);
  const dest = join(root, guestPath);
  await mkdir(dirname(dest), { recursive: true });
  await copyFile(hostPath, dest); // follows symlinks: the guest gets real files
  if (mode !== undefined) await chmod(dest, mode);
}

async function addDynamicBinary(root: string, sources: Sources, binary: string): Promise<void> {
  await copyInto(root, sources, binary);
  const r = await run('ldd', [binary], { timeoutMs: 30_000, allowFailure: true });
  if (r.exitCode !== 0 && !/not a dynamic executable/.test(r.all))
    throw new FaultlineError(`ldd ${binary} failed: ${r.all.trim()}`);
  for (const lib of parseLdd(r.stdout)) await copyInto(root, sources, lib);
}

async function stage(root: string, keys: GuestKeys, opts: InitramfsOptions, sources: Sources): Promise<string[]> {
  const busybox = await requireTool('busybox', 'busybox-static');
  const bb = await run(busybox, ['--help'], { timeoutMs: 10_000, allowFailure: true });
  if (!/BusyBox/.test(bb.all)) throw new FaultlineError(`${busybox} is not BusyBox: install busybox-static`);
  const sshd = await requireTool('sshd', 'openssh-server');
  await requireTool('ldd', 'libc-bin');

  await copyInto(root, sources, busybox, '/bin/busybox', 0o755);
  // Applet links made here rather than by `busybox --install` at boot: that costs a
  // few hundred syscalls on the boot path, slow under TCG.
  const applets = (await run(busybox, ['--list-full'], { timeoutMs: 10_000 })).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  for (const rel of applets.includes('bin/sh') ? applets : [...applets, 'bin/sh']) {
    if (rel === 'bin/busybox' || rel.includes('..')) continue;
    await mkdir(join(root, dirname(rel)), { recursive: true });
    await symlink('/bin/busybox', join(root, rel)).catch(() => undefined);
  }
  await addDynamicBinary(root, sources, sshd);
  for (const tool of GUEST_TOOLS) {
    const host = await requireTool(tool.name, tool.pkg);
    // Drop busybox's applet of that name wherever it is linked, or PATH could still find it.
    for (const rel of applets.filter((a) => basename(a) === tool.name)) await rm(join(root, rel), { force: true });
    await addDynamicBinary(root, sources, host);
  }
  // OpenSSH >= 9.8 splits the per-connection process into sshd-session.
  for (const helper of ['/usr/lib/openssh/sshd-session', '/usr/lib/openssh/sshd-auth']) {
    if (await exists(helper)) await addDynamicBinary(root, sources, helper);
  }
  if (!sshd.startsWith('/usr/sbin/')) await copyInto(root, sources, sshd, '/usr/sbin/sshd', 0o755);

  await copyInto(root, sources, join(IMAGES_DIR, 'init.sh'), '/init', 0o755);
  await copyInto(root, sources, join(IMAGES_DIR, 'sshd_config'), '/etc/ssh/sshd_config', 0o644);
  await writeFile(join(root, 'etc', 'ssh', 'ssh_host_ed25519_key'), keys.hostPrivate, { mode: 0o600 });
  await writeFile(join(root, 'etc', 'ssh', 'ssh_host_ed25519_key.pub'), keys.hostPublic + '\n');
  await mkdir(join(root, 'root', '.ssh'), { recursive: true });
  await writeFile(join(root, 'root', '.ssh', 'authorized_keys'), keys.clientPublic + '\n', { mode: 0o600 });
  await writeFile(
    join(root, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534:sshd privsep:/run/sshd:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  await writeFile(join(root, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n', {
    mode: 0o600,
  });
  await writeFile(join(root, 'etc', 'hostname'), 'faultline\n');
  await writeFile(join(root, 'etc', 'profile'), 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n');

  const loaded: string[] = [];
  if (opts.modulesDir) {
    await requireTool('xz', 'xz-utils');
    const mods = await resolveModules(opts.modulesDir, GUEST_MODULES);
    for (const f of ['modules.dep', 'modules.builtin']) sources.add(join(opts.modulesDir, f));
    const modDir = join(root, 'lib', 'modules', 'faultline');
    await mkdir(modDir, { recursive: true });
    for (const m of mods) {
      sources.add(m.path);
      const dest = join(modDir, `${m.name}.ko`);
      // Decompress on the host: busybox insmod cannot read .ko.xz.
      if (m.path.endsWith('.xz')) {
        await copyFile(m.path, `${dest}.xz`);
        await run('xz', ['-d', '-f', `${dest}.xz`], { timeoutMs: 60_000 });
      } else if (m.path.endsWith('.zst')) await run('zstd', ['-dqf', m.path, '-o', dest], { timeoutMs: 60_000 });
      else await copyFile(m.path, dest);
      loaded.push(m.name);
    }
    await mkdir(join(root, 'etc', 'faultline'), { recursive: true });
    await writeFile(join(root, 'etc', 'faultline', 'modules'), loaded.join('\n') + '\n');
  }
  return loaded;
}

/**
 * Content hash over every staged path, mode and byte, and each symlink's target: a change in any
 * input gives a new image. lstat, not stat: the applet links point at /bin/busybox, which on the
 * host is the host's busybox, and hashing it through each of ~270 links cost ~1.5 s a run.
 */
export async function hashTree(root: string): Promise<string> {
  const parts: string[] = ['initramfs-v2'];
  for (const rel of await listFiles(root)) {
    const p = join(root, rel);
    const st = await lstat(p);
    parts.push(rel, String(st.mode), st.isSymbolicLink() ? `-> ${await readlink(p)}` : sha256(await readFile(p)));
  }
  return sha256(parts.join('\n'));
}

/** The image's path in the cache. */
async function imagePath(hash: string): Promise<string> {
  return join(await cacheDir('initramfs'), `initramfs-${hash}.cpio`);
}

/** What the inputs stamp covers besides the host files: the staging code (this module and modules'), the keys and PATH. */
async function fixedInputs(keys: GuestKeys): Promise<string[]> {
  const self = fileURLToPath(import.meta.url);
  const modulesCode = join(dirname(self), `modules${extname(self)}`);
  const code = sha256(Buffer.concat([await readFile(self), await readFile(modulesCode)]));
  return [`code ${code}`, `keys ${sha256(JSON.stringify(keys))}`, `PATH ${process.env['PATH'] ?? ''}`];
}

export async function buildInitramfs(opts: InitramfsOptions = {}): Promise<Initramfs> {
  const keys = await guestKeys();
  const variant = `modules ${opts.modulesDir ?? 'none'}`;
  const fixed = await fixedInputs(keys);
  const unchanged = await unchangedImage(variant, fixed, imagePath);
  if (unchanged) {
    const path = await imagePath(unchanged.hash);
    log.debug(`initramfs inputs unchanged: ${path}`);
    return { path, hash: unchanged.hash, keys, modules: unchanged.modules };
  }
  const root = await mkdtemp(join(tmpdir(), 'faultline-initramfs-'));
  try {
    const sources: Sources = new Set();
    const modules = await stage(root, keys, opts, sources);
    const hash = (await hashTree(root)).slice(0, 24);
    const out = await imagePath(hash);
    if (await exists(out)) log.debug(`initramfs cache hit ${out}`);
    else await writeImage(root, out, modules);
    const stamp = await inputsStamp([...sources], fixed);
    if (stamp) await recordInputs(variant, { hash, modules, sources: [...sources].sort(), stamp });
    return { path: out, hash, keys, modules };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * `names` (paths under `root`, in order) as an uncompressed newc archive at `out`, owned by
 * root; `dereference`: a symlink's target's content goes in, not the link.
 */
export async function writeNewc(
  root: string,
  names: readonly string[],
  out: string,
  dereference = false,
): Promise<void> {
  await requireTool('cpio', 'cpio');
  const args = ['--quiet', '-o', '-H', 'newc', '-R', '0:0', ...(dereference ? ['--dereference'] : []), '-O', out];
  await run('cpio', args, { timeoutMs: 120_000, cwd: root, input: names.join('\n') + '\n' });
}

/** The staged tree as an uncompressed newc archive at `out` (written aside, then renamed). */
async function writeImage(root: string, out: string, modules: readonly string[]): Promise<void> {
  const files = await listFiles(root);
  const dirs = new Set<string>();
  for (const f of files) for (let d = dirname(f); d !== '.'; d = dirname(d)) dirs.add(d);
  // Extra mount points init needs even though nothing is staged inside them.
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', 'root', 'var', 'var/empty', 'usr', 'usr/bin', 'sbin']) {
    await mkdir(join(root, d), { recursive: true });
    dirs.add(d);
  }
  const tmp = `${out}.tmp-${process.pid}`;
  await writeNewc(root, [...dirs].sort().concat(files), tmp);
  await rename(tmp, out);
  log.info(`built initramfs ${out}${modules.length ? ` (modules: ${modules.join(', ')})` : ''}`);
}
