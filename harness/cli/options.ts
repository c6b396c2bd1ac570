import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { UsageError } from '../util/errors.js';
import { BACKINGS, GUEST_RAMS, type Backing, type GuestRam } from '../results/types.js';

/** Validation of CLI values shared by the commands: one line naming the flag and the fix. */

export function parseList(value: string | readonly string[] | undefined): string[] {
  const parts = (Array.isArray(value) ? value : value === undefined ? [] : [value]) as string[];
  return parts
    .flatMap((v) => String(v).split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parseBackings(value: string | readonly string[] | undefined): Backing[] {
  const list = parseList(value);
  if (list.length === 0) throw new UsageError(`--backing is empty: choose from ${BACKINGS.join(', ')}`);
  for (const b of list) {
    if (!(BACKINGS as readonly string[]).includes(b))
      throw new UsageError(`unknown backing '${b}' in --backing: choose from ${BACKINGS.join(', ')}`);
  }
  return list as Backing[];
}

function parseGuestRam(value: string): GuestRam {
  if (!(GUEST_RAMS as readonly string[]).includes(value))
    throw new UsageError(`unknown --guest-ram '${value}': choose from ${GUEST_RAMS.join(', ')}`);
  return value as GuestRam;
}

export function positiveInt(flag: string, value: unknown, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} must be an integer in ${min}..${max}, got '${String(value)}'`);
  return n;
}

/** Guest flags shared by run, bisect and series. */
export interface GuestFlagValues {
  mem: number;
  smp: number;
  accel: string;
  'guest-ram': string;
  timeout: number;
  'boot-timeout': number;
  hugepages: number;
  cmdline?: string;
  snapshot?: boolean;
  'push-binaries'?: boolean;
}

export function guestOptions<T>(y: Argv<T>) {
  return y
    .option('mem', { type: 'number', default: 1024, describe: 'guest RAM in MiB' })
    .option('smp', { type: 'number', default: 2, describe: 'guest vCPUs' })
    .option('accel', {
      type: 'string',
      default: 'auto',
      describe: 'auto (probe KVM by booting, fall back to TCG), kvm or tcg',
    })
    .option('guest-ram', {
      type: 'string',
      default: 'anon',
      describe: 'host backing of guest RAM: anon, shmem (memfd) or hugetlb',
    })
    .option('timeout', {
      type: 'number',
      default: 1200,
      describe: 'cap on each test program, seconds (a suite may use less)',
    })
    .option('boot-timeout', { type: 'number', default: 180, describe: 'deadline for the guest to answer SSH, seconds' })
    .option('hugepages', { type: 'number', default: 64, describe: '2 MiB hugepages the guest reserves at boot' })
    .option('cmdline', { type: 'string', describe: 'extra guest kernel command line' })
    .option('snapshot', {
      type: 'boolean',
      default: true,
      describe: 'start guests from a snapshot of the first ready guest (--no-snapshot: boot every guest)',
    })
    .option('push-binaries', {
      type: 'boolean',
      default: false,
      describe: 'push the test binaries over SSH into a booted guest instead of appending them to its initramfs',
    });
}

export interface GuestSettings {
  memMiB: number;
  smp: number;
  accel: 'auto' | 'kvm' | 'tcg';
  guestRam: GuestRam;
  timeoutSec: number;
  bootTimeoutSec: number;
  hugepages2m: number;
  cmdline?: string;
  noSnapshot?: true;
  pushBinaries?: true;
}

export function parseGuestFlags(a: GuestFlagValues): GuestSettings {
  const accel = a.accel;
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg')
    throw new UsageError(`--accel must be auto, kvm or tcg, got '${accel}'`);
  const memMiB = positiveInt('--mem', a.mem, 256, 1 << 20);
  const hugepages2m = positiveInt('--hugepages', a.hugepages, 0, 1 << 20);
  if (hugepages2m * 2 > memMiB / 2)
    throw new UsageError(
      `--hugepages ${hugepages2m} would take more than half of --mem ${memMiB} MiB: raise --mem or lower --hugepages`,
    );
  return {
    memMiB,
    smp: positiveInt('--smp', a.smp, 1, 64),
    accel,
    guestRam: parseGuestRam(a['guest-ram']),
    timeoutSec: positiveInt('--timeout', a.timeout, 1),
    bootTimeoutSec: positiveInt('--boot-timeout', a['boot-timeout'], 5),
    hugepages2m,
    ...(a.cmdline ? { cmdline: a.cmdline } : {}),
    ...(a.snapshot === false ? { noSnapshot: true as const } : {}),
    ...(a['push-binaries'] === true ? { pushBinaries: true as const } : {}),
  };
}

/** `--known-issues FILE` (repeatable; `--no-known-issues` drops the shipped list). */
export type KnownIssuesFlag = (string | boolean)[] | undefined;

/**
 * The known-issues files a command applies: the shipped list first when it applies by default
 * and --no-known-issues did not turn it off, then each --known-issues FILE.
 */
export function knownIssueFiles(given: KnownIssuesFlag, shipped: string | undefined): string[] {
  const files = (given ?? []).filter((f): f is string => typeof f === 'string');
  const withShipped = shipped !== undefined && !given?.includes(false);
  return [...(withShipped ? [shipped] : []), ...files.map((f) => resolve(f))];
}
