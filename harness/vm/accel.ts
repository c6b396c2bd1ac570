import { access, constants, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FaultlineError } from '../util/errors.js';
import { cacheDir, writeJsonAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { run, tail } from '../util/proc.js';
import { lazyValidator } from '../util/schema.js';
import { ACCELS, type Accel } from '../results/types.js';
import { boundToParent, spawnBound } from './lifetime.js';

export interface AccelChoice {
  accel: Accel;
  note: string;
}

/** The KVM probe's answer for one host boot and one QEMU build: ~/.cache/faultline/host/kvm-probe.json. */
interface KvmProbeRecord {
  schema: 'faultline.kvm-probe/1';
  bootId: string;
  qemu: string;
  qemuVersion: string;
  accel: Accel;
  note: string;
  probedAt: string;
  probeMs: number;
}

const validateProbeRecord = lazyValidator<KvmProbeRecord>({
  type: 'object',
  required: ['schema', 'bootId', 'qemu', 'qemuVersion', 'accel', 'note', 'probedAt', 'probeMs'],
  properties: {
    schema: { type: 'string', const: 'faultline.kvm-probe/1' },
    bootId: { type: 'string' },
    qemu: { type: 'string' },
    qemuVersion: { type: 'string' },
    accel: { type: 'string', enum: ACCELS },
    note: { type: 'string' },
    probedAt: { type: 'string' },
    probeMs: { type: 'number' },
  },
});

/** Lines that settle the question: KVM failing in any of the ways QEMU reports it, or the guest kernel running. */
const KVM_FAILED =
  /KVM internal error[^\n]*|kvm run failed[^\n]*|failed to initialize kvm[^\n]*|Could not access KVM kernel module[^\n]*/i;
const GUEST_RAN = /Linux version/;
/** After "Linux version" the probe kernel panics for want of a root fs within ~1 s under KVM: wait for that end. */
const GUEST_DONE = /Kernel panic|end Kernel panic|reboot: /;
/** Nothing decisive in this long (QEMU hung before the guest printed anything): not usable. */
const PROBE_DEADLINE_MS = 20_000;
const AFTER_BANNER_MS = 5_000;

/** Accel decision for one faultline process, on top of the per-boot cache file. */
let decided: AccelChoice | undefined;

/** How the probe guest ended: decided from its output as it streams, never by waiting for QEMU (which pauses on a KVM error). */
export function judgeProbeOutput(out: string, finished: boolean): AccelChoice | undefined {
  const failed = KVM_FAILED.exec(out);
  if (failed) return { accel: 'tcg', note: `KVM probe failed (${failed[0].trim()}): falling back to TCG` };
  if (GUEST_RAN.test(out) && (finished || GUEST_DONE.test(out)))
    return { accel: 'kvm', note: 'KVM probe booted a guest' };
  if (finished) {
    const why = tail(out.trim(), 1).trim() || 'no output';
    return { accel: 'tcg', note: `KVM probe failed (${why}): falling back to TCG` };
  }
  return undefined;
}

/** Boot the kernel briefly under KVM; stop QEMU at the first decisive line. */
async function probeKvm(probe: {
  qemu: string;
  kernel: string;
  initrd: string;
}): Promise<AccelChoice & { probeMs: number }> {
  const started = Date.now();
  const argv = await boundToParent([
    probe.qemu,
    '-machine',
    'q35',
    '-accel',
    'kvm',
    '-cpu',
    'host',
    '-m',
    '256M',
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    probe.kernel,
    '-initrd',
    probe.initrd,
    '-append',
    'console=ttyS0 panic=-1 rdinit=/faultline-kvm-probe',
    '-serial',
    'stdio',
  ]);
  const proc = spawnBound(argv, PROBE_DEADLINE_MS + AFTER_BANNER_MS);
  let out = '';
  let bannerAt: number | undefined;
  const verdict = await new Promise<AccelChoice>((resolve) => {
    const settle = (finished: boolean): void => {
      const v = judgeProbeOutput(out, finished);
      if (v) resolve(v);
      else if (bannerAt === undefined && GUEST_RAN.test(out)) bannerAt = Date.now();
    };
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      settle(false);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    const timer = setInterval(() => {
      const now = Date.now();
      if (bannerAt !== undefined && now - bannerAt > AFTER_BANNER_MS) settle(true);
      else if (bannerAt === undefined && now - started > PROBE_DEADLINE_MS) {
        resolve({
          accel: 'tcg',
          note: `KVM probe failed (no guest output within ${PROBE_DEADLINE_MS / 1000} s): falling back to TCG`,
        });
      }
    }, 100);
    void proc.then(() => settle(true)).finally(() => clearInterval(timer));
  });
  proc.kill('SIGKILL');
  await proc;
  log.debug(`KVM probe: ${verdict.note} in ${Date.now() - started} ms; its output:\n${tail(out, 15)}`);
  return { ...verdict, probeMs: Date.now() - started };
}

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
}

async function cachedProbe(
  path: string,
  key: Pick<KvmProbeRecord, 'bootId' | 'qemu' | 'qemuVersion'>,
): Promise<AccelChoice | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  // A stale or damaged answer is probed again, never trusted.
  if (!validateProbeRecord(value)) return undefined;
  if (value.bootId !== key.bootId || value.qemu !== key.qemu || value.qemuVersion !== key.qemuVersion) return undefined;
  return { accel: value.accel, note: `${value.note} (cached for this host boot, probed ${value.probedAt})` };
}

/**
 * `auto`: KVM only when a guest really runs under it. On some hosts /dev/kvm exists
 * but every guest dies with "KVM internal error" (and QEMU then pauses rather than exits);
 * so boot the kernel briefly under KVM and look, once per host boot and QEMU build.
 */
export async function chooseAccel(
  requested: 'auto' | 'kvm' | 'tcg',
  probe: { qemu: string; kernel: string; initrd: string },
): Promise<AccelChoice> {
  if (requested === 'tcg') return { accel: 'tcg', note: 'TCG requested' };
  const kvmUsable = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!kvmUsable) {
    if (requested === 'kvm')
      throw new FaultlineError(
        '--accel kvm: /dev/kvm is missing or not accessible: load kvm_intel/kvm_amd or use --accel tcg',
      );
    return { accel: 'tcg', note: '/dev/kvm not available: using TCG (software emulation)' };
  }
  decided ??= await probeOnce(probe);
  if (requested === 'kvm' && decided.accel !== 'kvm') {
    throw new FaultlineError(`--accel kvm: a guest does not run under KVM here (${decided.note}): use --accel tcg`);
  }
  return decided;
}

async function probeOnce(probe: { qemu: string; kernel: string; initrd: string }): Promise<AccelChoice> {
  const version = await run(probe.qemu, ['--version'], { timeoutMs: 10_000 });
  const key = { bootId: await bootId(), qemu: probe.qemu, qemuVersion: version.stdout.split('\n')[0]?.trim() ?? '' };
  const path = join(await cacheDir('host'), 'kvm-probe.json');
  const cached = await cachedProbe(path, key);
  if (cached) return cached;
  const fresh = await probeKvm(probe);
  const record: KvmProbeRecord = {
    schema: 'faultline.kvm-probe/1',
    ...key,
    accel: fresh.accel,
    note: fresh.note,
    probedAt: new Date().toISOString(),
    probeMs: fresh.probeMs,
  };
  await writeJsonAtomic(path, record);
  return { accel: fresh.accel, note: fresh.note };
}
