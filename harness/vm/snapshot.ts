import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { FaultlineError } from '../util/errors.js';
import { cacheDir, sha256, sha256File, writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { run, shellQuote } from '../util/proc.js';
import { lazyValidator } from '../util/schema.js';
import { stableStringify } from '../util/stable-json.js';
import { qemuArgs, type QemuConfig } from './qemu-args.js';
import type { Qmp } from './qmp.js';

/**
 * Ready guests from a QEMU migration snapshot. The first guest of a combination of
 * inputs (kernel, initramfs, QEMU command line, QEMU version) that reaches ready is
 * saved with QMP `stop` + `migrate` to a file and resumed; later guests of the same
 * combination start paused with `-incoming defer` and load it instead of booting.
 *
 * The entry is ~/.cache/faultline/snapshots/KEY/: the migration stream and meta.json,
 * written atomically after the stream is complete and naming its size and SHA-256. An
 * entry whose stream does not match is deleted and rebuilt by the next boot; the
 * checksum is verified while QEMU loads and the guest is not resumed before it matches.
 */

/** What a snapshot entry records: how to check it is whole and what guest it holds. */
export interface SnapshotMeta {
  schema: 'faultline.snapshot/1';
  key: string;
  /** The migration stream's file name in the entry directory. */
  file: string;
  bytes: number;
  sha256: string;
  savedAt: string;
  /** QMP stop to migration completed. */
  saveMs: number;
  /** QEMU start to ready of the boot that was saved. */
  bootMs: number;
  qemuVersion: string;
  inputs: SnapshotInputs;
  /** The saved guest's `uname -r` and boot id: a restored guest must show the same. */
  guest: { uname: string; bootId: string };
}

export interface SnapshotInputs {
  kernelSha256: string;
  initrdSha256: string;
  /** The QEMU command line with the per-guest parts (SSH port, QMP socket, file paths) blanked. */
  args: string[];
}

const validateMeta = lazyValidator<SnapshotMeta>({
  type: 'object',
  required: [
    'schema',
    'key',
    'file',
    'bytes',
    'sha256',
    'savedAt',
    'saveMs',
    'bootMs',
    'qemuVersion',
    'inputs',
    'guest',
  ],
  properties: {
    schema: { type: 'string', const: 'faultline.snapshot/1' },
    key: { type: 'string', pattern: '^[0-9a-f]{24}$' },
    file: { type: 'string', pattern: '^ram-[0-9a-f]{16}\\.bin$' },
    bytes: { type: 'integer', minimum: 1 },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    savedAt: { type: 'string' },
    saveMs: { type: 'number' },
    bootMs: { type: 'number' },
    qemuVersion: { type: 'string' },
    inputs: {
      type: 'object',
      required: ['kernelSha256', 'initrdSha256', 'args'],
      properties: {
        kernelSha256: { type: 'string' },
        initrdSha256: { type: 'string' },
        args: { type: 'array', items: { type: 'string' } },
      },
    },
    guest: {
      type: 'object',
      required: ['uname', 'bootId'],
      properties: { uname: { type: 'string', minLength: 1 }, bootId: { type: 'string', minLength: 1 } },
    },
  },
});

/** Snapshot entries kept (each is the guest's used RAM, ~120 MiB for the default guest): least recently used go first. */
const MAX_ENTRIES = 6;

/** A snapshot that cannot be used: the entry is deleted and the guest boots. */
export class SnapshotUnusable extends FaultlineError {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotUnusable';
  }
}

/** Why a guest with this configuration is never saved or restored (undefined: it can be). */
export function snapshotUnsupported(c: Omit<QemuConfig, 'sshPort'>): string | undefined {
  if (c.guestRam !== 'anon')
    return `guest RAM on host ${c.guestRam} is not restored from snapshots (only --guest-ram anon is)`;
  return undefined;
}

const versions = new Map<string, Promise<string>>();

function qemuVersion(qemu: string): Promise<string> {
  let v = versions.get(qemu);
  if (!v) {
    v = run(qemu, ['--version'], { timeoutMs: 10_000 }).then((r) => r.stdout.split('\n')[0]?.trim() ?? '');
    versions.set(qemu, v);
  }
  return v;
}

/** The entry's key: every input that shapes the saved guest, file contents rather than paths. */
export async function snapshotKey(
  c: Omit<QemuConfig, 'sshPort'>,
): Promise<{ key: string; inputs: SnapshotInputs; qemuVersion: string }> {
  const [kernelSha256, initrdSha256, version] = await Promise.all([
    sha256File(c.kernel),
    sha256File(c.initrd),
    qemuVersion(c.qemu),
  ]);
  const { qmpSocket: _q, incoming: _i, ...rest } = { ...c, sshPort: 0 };
  const args = qemuArgs({ ...rest, kernel: 'KERNEL', initrd: 'INITRD' });
  const inputs = { kernelSha256, initrdSha256, args };
  // `entry` names the layout of an entry (2: with the saved boot's console; 3: saved with a run's binaries staged).
  const key = sha256(stableStringify({ entry: 3, version, inputs })).slice(0, 24);
  return { key, inputs, qemuVersion: version };
}

/** The console of the saved guest's boot, kept beside its stream. */
const BOOT_CONSOLE = 'boot-console.log';

/** The console the saved guest printed while it booted (empty for entries saved before it was kept). */
export async function savedBootConsole(key: string): Promise<string> {
  return readFile(join(await entryDir(key), BOOT_CONSOLE), 'utf8').catch(() => '');
}

async function entryDir(key: string): Promise<string> {
  return cacheDir('snapshots', key);
}

/** The usable entry for `key`, or why there is none (a damaged entry is deleted on the way). */
export async function findSnapshot(key: string): Promise<{ meta: SnapshotMeta; path: string } | { none: string }> {
  const dir = await entryDir(key);
  const text = await readFile(join(dir, 'meta.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return { none: 'no snapshot of this guest yet' };
  let why: string | undefined;
  let meta: SnapshotMeta | undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (validateMeta(v) && v.key === key) meta = v;
    else why = 'its meta.json is not a faultline snapshot record';
  } catch {
    why = 'its meta.json is not JSON';
  }
  const path = meta ? join(dir, meta.file) : '';
  if (meta) {
    const size = await stat(path).then(
      (s) => s.size,
      () => -1,
    );
    if (size !== meta.bytes)
      why = size < 0 ? 'its stream is missing' : `its stream has ${size} bytes, not ${meta.bytes}`;
  }
  if (why || !meta) {
    await discardSnapshot(key, why ?? 'unreadable');
    return { none: `the snapshot was damaged (${why ?? 'unreadable'}) and was deleted` };
  }
  // Least recently used entries are pruned first.
  const now = new Date();
  await utimes(join(dir, 'meta.json'), now, now).catch(() => undefined);
  return { meta, path };
}

export async function discardSnapshot(key: string, why: string): Promise<void> {
  log.info(`snapshot ${key}: ${why}: deleting it (the next boot saves a new one)`);
  await rm(join(await entryDir(key)), { recursive: true, force: true });
}

/** Migration stream to a file through `exec:` (QEMU 7.2 has no `file:` URI). */
function execUri(command: 'cat >' | 'cat', path: string): string {
  return `exec:${command} ${shellQuote(path)}`;
}

/** A stream saved and not yet the entry; its SHA-256 is computed from the save on, beside what follows. */
export interface SavedStream {
  tmp: string;
  saveMs: number;
  digest: Promise<string>;
}

/**
 * Save the running guest: stop, migrate to a temporary file in the entry, resume. The
 * file becomes the entry only in commitSnapshot, after the guest proved ready.
 */
export async function saveSnapshot(qmp: Qmp, key: string, deadline: number): Promise<SavedStream> {
  const tmp = join(await entryDir(key), `ram-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const t0 = Date.now();
  await qmp.execute('stop');
  try {
    // QEMU caps migration at 128 MiB/s by default; a file has no other side to spare it for.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 2 ** 40 });
    await qmp.execute('migrate', { uri: execUri('cat >', tmp) });
    const status = await qmp.until(
      'query-migrate',
      (r) => {
        const s = (r as { status?: string }).status;
        return s === 'completed' || s === 'failed' || s === 'cancelled' ? s : undefined;
      },
      deadline,
    );
    if (status !== 'completed') throw new FaultlineError(`saving the guest failed: migration ${status}`);
    const digest = sha256File(tmp);
    // Awaited by commitSnapshot; a stream dropped before it (a report at boot) must not reject unheard.
    digest.catch(() => undefined);
    return { tmp, saveMs: Date.now() - t0, digest };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    await qmp.execute('cont');
  }
}

/** Make a saved stream the entry: checksum, rename, then meta.json (atomically) last; prune old entries. */
export async function commitSnapshot(
  key: string,
  saved: SavedStream,
  facts: Pick<SnapshotMeta, 'bootMs' | 'qemuVersion' | 'inputs' | 'guest'>,
  bootConsole: string,
): Promise<SnapshotMeta> {
  const dir = await entryDir(key);
  const [digest, st] = await Promise.all([saved.digest, stat(saved.tmp)]);
  const file = `ram-${digest.slice(0, 16)}.bin`;
  await rename(saved.tmp, join(dir, file));
  const meta: SnapshotMeta = {
    schema: 'faultline.snapshot/1',
    key,
    file,
    bytes: st.size,
    sha256: digest,
    savedAt: new Date().toISOString(),
    saveMs: saved.saveMs,
    ...facts,
  };
  // The saved guest's boot, for the console.log of every guest restored from it.
  await writeFileAtomic(join(dir, BOOT_CONSOLE), bootConsole);
  await writeJsonAtomic(join(dir, 'meta.json'), meta);
  // Streams of concurrent saves that lost the race, and leftovers of killed saves (a
  // .tmp young enough to be another save in progress stays).
  for (const f of await readdir(dir)) {
    if (f === file || f === 'meta.json' || f === BOOT_CONSOLE) continue;
    const age =
      Date.now() -
      (await stat(join(dir, f)).then(
        (s) => s.mtimeMs,
        () => 0,
      ));
    if (!f.endsWith('.tmp') || age > 600_000) await rm(join(dir, f), { force: true });
  }
  await pruneSnapshots(key);
  return meta;
}

async function pruneSnapshots(keep: string): Promise<void> {
  const root = await cacheDir('snapshots');
  const entries = await Promise.all(
    (await readdir(root)).map(async (k) => ({
      k,
      used: await stat(join(root, k, 'meta.json')).then(
        (s) => s.mtimeMs,
        () => 0,
      ),
    })),
  );
  const old = entries.filter((e) => e.k !== keep).sort((a, b) => b.used - a.used);
  for (const e of old.slice(MAX_ENTRIES - 1)) await rm(join(root, e.k), { recursive: true, force: true });
}

/**
 * Load the entry into a QEMU started with -incoming defer, checking the stream's
 * SHA-256 while QEMU reads it; the guest stays paused (the caller resumes it with `cont`).
 */
export async function loadSnapshot(
  qmp: Qmp,
  entry: { meta: SnapshotMeta; path: string },
  deadline: number,
): Promise<void> {
  const digest = sha256File(entry.path).catch((e: unknown) => `unreadable: ${String(e)}`);
  const damaged = async () => (await digest) !== entry.meta.sha256;
  let status: unknown;
  try {
    await qmp.execute('migrate-incoming', { uri: execUri('cat', entry.path) });
    status = await qmp.until(
      'query-status',
      (r) => {
        const s = (r as { status?: string }).status;
        return s === 'inmigrate' ? undefined : s;
      },
      deadline,
    );
  } catch (e) {
    // QEMU may reject a damaged stream itself (a corrupted section header): name the cause, not the symptom.
    if (await damaged()) throw new SnapshotUnusable('its stream does not match its checksum');
    throw e;
  }
  if (await damaged()) throw new SnapshotUnusable('its stream does not match its checksum');
  if (status !== 'paused') throw new SnapshotUnusable(`QEMU did not load it (state ${String(status)})`);
}

/**
 * What a restored guest runs first: the host's current time and a fresh RNG seed pushed
 * in (the saved guest's clock and entropy pool are the save's), then the facts that
 * prove it is the saved guest.
 */
export function honestyCommand(now = Date.now(), seed = randomBytes(64).toString('hex')): string {
  return [
    `date -u -s @${Math.round(now / 1000)} >/dev/null`,
    `printf %s ${seed} > /dev/urandom`,
    'uname -r',
    'cat /proc/sys/kernel/random/boot_id',
    'test -e /run/faultline-ready',
  ].join(' && ');
}

/** The output of factsCommand/honestyCommand: uname -r and boot id. */
export function parseGuestFacts(out: string): { uname: string; bootId: string } {
  const [uname = '', bootId = ''] = out.trim().split('\n');
  return { uname: uname.trim(), bootId: bootId.trim() };
}

export const factsCommand = 'uname -r && cat /proc/sys/kernel/random/boot_id';
