/**
 * Resolving Debian's kernel of a series: the parsers on apt output captured on this host
 * (fixtures/apt/, origins' host names redacted), the resolution record's TTL, staleness and
 * validation, and --offline with an empty cache, in process and through bin/faultline.js.
 * apt-cache is the host's own, behind a wrapper on PATH that records each call: a record that
 * answers must leave the log empty. 16 s wall at load average 6 here (four apt resolutions, three
 * CLI starts); dist/ must be built (`npx tsc -p tsconfig.json`).
 */
import t from 'tap';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, OfflineMissingError } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { PROJECT_ROOT } from '../util/project.js';
import { run } from '../util/proc.js';
import {
  RESOLUTION_TTL_MS,
  aptListsStamp,
  chooseKernel,
  imagePackagesOf,
  parseMadison,
  readResolution,
  resolveDebianSeries,
  staleness,
  type DebianResolution,
} from './debian-resolve.js';
import { ensureDebianKernel, ensureDebianSource } from './debian.js';
import { aptRecorder } from './fixtures/apt-recorder.js';

const FIXTURES = join(PROJECT_ROOT, 'harness', 'kernel', 'fixtures', 'apt');
const fixture = (name: string): Promise<string> => readFile(join(FIXTURES, name), 'utf8');

const scratch = await mkdtemp(join(tmpdir(), 'faultline-resolve-'));
t.teardown(() => rm(scratch, { recursive: true, force: true }));

const apt = await aptRecorder(scratch);
process.env['PATH'] = `${apt.bin}:${process.env['PATH'] ?? ''}`;
const aptCalls = (): Promise<string[]> => apt.calls();

let cacheN = 0;
/** A fresh, empty faultline cache for the rest of the test. */
async function emptyCache(): Promise<string> {
  const dir = join(scratch, `cache-${++cacheN}`);
  await mkdir(dir);
  process.env['FAULTLINE_CACHE'] = dir;
  await apt.clear();
  return dir;
}

/** Warnings the code under test writes to stderr while `fn` runs. */
async function stderrOf(fn: () => Promise<unknown>): Promise<string> {
  let text = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk: string | Uint8Array) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  };
  try {
    await fn();
  } finally {
    process.stderr.write = write;
  }
  return text;
}

t.test('the captured apt output of 6.12 and 6.1 resolves to the newest image its source matches', async (t) => {
  const images612 = imagePackagesOf('6.12', await fixture('pkgnames-linux-image-6.12.txt'));
  t.equal(images612.length, 6, 'the six unsigned generic images; no rt, cloud, dbg or meta package');
  t.ok(images612.every((p) => /^linux-image-6\.12\.\d+\+deb12-amd64-unsigned$/.test(p)));
  t.same(chooseKernel('6.12', images612, parseMadison(await fixture('madison-linux-6.12.txt'))), {
    imagePackage: 'linux-image-6.12.118+deb12-amd64-unsigned',
    version: '6.12.118-1~deb12u1',
    newestSource: '6.12.118-1~deb12u1',
  });
  // 6.1's madison pads the version column and names its images by ABI (6.1.0-57), not version.
  const images61 = imagePackagesOf('6.1', await fixture('pkgnames-linux-image-6.1.txt'));
  t.ok(images61.includes('linux-image-6.1.0-57-amd64-unsigned'));
  t.same(chooseKernel('6.1', images61, parseMadison(await fixture('madison-linux-6.1.txt'))), {
    imagePackage: 'linux-image-6.1.0-57-amd64-unsigned',
    version: '6.1.192-3',
    newestSource: '6.1.192-3',
  });
  t.throws(() => chooseKernel('6.12', images612, new Map()), /apt knows no .*apt-get update/);
});

const record = (over: Partial<DebianResolution> = {}): DebianResolution => ({
  schema: 'faultline.debian-resolution/1',
  series: '6.12',
  aptOptions: [],
  imagePackage: 'linux-image-6.12.118+deb12-amd64-unsigned',
  version: '6.12.118-1~deb12u1',
  newestSource: '6.12.118-1~deb12u1',
  resolvedAt: new Date().toISOString(),
  aptLists: 'lists@1',
  ...over,
});

t.test('a record answers for 24 h while apt lists are unchanged', async (t) => {
  const now = Date.now();
  const at = (ms: number) => new Date(now - ms).toISOString();
  t.equal(staleness(record({ resolvedAt: at(3600_000) }), now, 'lists@1'), undefined, 'an hour old: fresh');
  t.match(staleness(record({ resolvedAt: at(RESOLUTION_TTL_MS + 1) }), now, 'lists@1'), /TTL 24 h/);
  t.match(staleness(record({ resolvedAt: at(-3600_000) }), now, 'lists@1'), /TTL/, 'from the future: stale');
  t.match(staleness(record({ resolvedAt: 'yesterday' }), now, 'lists@1'), /TTL/, 'no date: stale');
  t.match(staleness(record({ resolvedAt: at(0) }), now, 'lists@2'), /apt-get update/);
});

/** Resolve 6.12 with apt: the one record it writes, where the next resolution reads it. */
async function resolvedFile(cache: string): Promise<string> {
  await resolveDebianSeries('6.12');
  const files = await readdir(join(cache, 'resolved'));
  if (files.length !== 1 || !files[0])
    throw new Error(`expected one record in ${cache}/resolved, got ${files.join(' ')}`);
  return join(cache, 'resolved', files[0]);
}

let cache612 = '';
t.test('a fresh record answers without apt; a stale one, or --refresh, asks apt again', async (t) => {
  cache612 = await emptyCache();
  const file = await resolvedFile(cache612);
  t.equal((await aptCalls()).length, 2, 'no record: one pkgnames and one madison');
  t.equal((await aptCalls())[0], 'apt-cache pkgnames linux-image-6.12');
  t.match((await aptCalls())[1], /^apt-cache madison linux-source-6\.12 linux-image-6\.12\./);
  const first = await readResolution('6.12', []);
  t.equal(first?.aptLists, await aptListsStamp(), 'the record carries the lists it was read from');

  await apt.clear();
  t.same(await resolveDebianSeries('6.12'), first, 'the record answers');
  t.same(await aptCalls(), [], 'no apt call when the record answers');

  const old = new Date(Date.now() - RESOLUTION_TTL_MS - 60_000).toISOString();
  await writeFile(file, JSON.stringify({ ...first, resolvedAt: old }));
  const again = await resolveDebianSeries('6.12');
  t.equal((await aptCalls()).length, 2, 'a record older than 24 h: apt is asked');
  t.not(again.resolvedAt, old, 'and the record is renewed');

  await apt.clear();
  await resolveDebianSeries('6.12', { refresh: true });
  t.equal((await aptCalls()).length, 2, '--refresh: apt is asked though the record is fresh');
  t.ok(await exists(file));
});

t.test('a corrupt or foreign record is a warning and apt is asked, never a crash', async (t) => {
  // The record the test above left.
  const [file] = (await readdir(join(cache612, 'resolved'))).map((f) => join(cache612, 'resolved', f));
  if (file === undefined) return t.fail('the test above left no record');
  const good = JSON.parse(await readFile(file, 'utf8')) as DebianResolution;
  const bad: [string, string, RegExp][] = [
    ['truncated', JSON.stringify(good).slice(0, 40), /is not valid JSON/],
    ['empty', '', /is not valid JSON/],
    ['no version', JSON.stringify({ ...good, version: undefined }), /not a faultline Debian kernel resolution/],
    ['another schema', JSON.stringify({ ...good, schema: 'faultline.debian-resolution/0' }), /resolution: \/schema/],
    ['another series', JSON.stringify({ ...good, series: '6.1' }), /another series or apt options/],
  ];
  for (const [what, text, warning] of bad) {
    await writeFile(file, text);
    let got: DebianResolution | undefined = good;
    const err = await stderrOf(async () => (got = await readResolution('6.12', [])));
    t.equal(got, undefined, `${what}: read as absent`);
    t.match(err, warning, `${what}: the warning says what is wrong`);
    t.match(err, /ignored, the kernel is resolved again/, `${what}: and what happens`);
  }
  await apt.clear();
  const again = await stderrOf(() => resolveDebianSeries('6.12'));
  t.match(again, /another series/, 'resolving over the last one warns');
  t.equal((await aptCalls()).length, 2, 'and asks apt');
  const renewed = JSON.parse(await readFile(file, 'utf8')) as DebianResolution;
  t.same(renewed, { ...good, resolvedAt: renewed.resolvedAt }, 'and rewrites the record');
});

t.test('--offline with an empty cache: one line naming what it needs, exit 4, no apt', async (t) => {
  await emptyCache();
  const offline = await ensureDebianKernel('6.12', { offline: true }).catch((e: unknown) => e);
  t.type(offline, OfflineMissingError);
  t.equal((offline as OfflineMissingError).exitCode, ExitCode.offlineMissing);
  t.match(
    (offline as Error).message,
    /^--offline: Debian's 6\.12 kernel is not in \S+ \(it needs linux-image-6\.12\.\*-amd64-unsigned and linux-source-6\.12 from apt\): run once without --offline$/,
  );
  await t.rejects(ensureDebianSource('6.12', undefined, { offline: true }), /^--offline: no linux-source-6\.12 in /);
  // A corrupt record on top: still a warning and the same one line, never a crash.
  await writeFile(join(cache612, 'resolved', (await readdir(join(cache612, 'resolved')))[0] ?? ''), '{"schema');
  process.env['FAULTLINE_CACHE'] = cache612;
  let again: unknown;
  const err = await stderrOf(async () => {
    again = await ensureDebianKernel('6.12', { offline: true }).catch((e: unknown) => e);
  });
  t.match(err, /is not valid JSON: .*ignored, the kernel is resolved again/);
  t.equal((again as OfflineMissingError).exitCode, ExitCode.offlineMissing);
  t.same(await aptCalls(), [], 'apt is never asked');
});

t.test('--offline with a version but no package names the package it would download', async (t) => {
  const cache = await emptyCache();
  await mkdir(join(cache, 'debian'), { recursive: true });
  const e = await ensureDebianSource('6.12', '6.12.118-1~deb12u1', { offline: true }).catch((x: unknown) => x);
  t.match((e as Error).message, /^--offline: linux-source-6\.12=6\.12\.118-1~deb12u1 is not in .*run once without/);
  t.equal((e as OfflineMissingError).exitCode, 4);
  t.same(await aptCalls(), []);
});

t.test('bin/faultline.js run --offline on an empty cache: exit 4 and one line', async (t) => {
  const cache = await emptyCache();
  const cli = (...args: string[]) =>
    run('node', [join(PROJECT_ROOT, 'bin', 'faultline.js'), 'run', ...args], {
      timeoutMs: 60_000,
      allowFailure: true,
      env: { FAULTLINE_CACHE: cache, PATH: process.env['PATH'] ?? '' },
    });
  const list = await cli('--list', '--offline');
  t.equal(list.exitCode, 4);
  t.match(list.stderr, /^faultline: --offline: Debian's 6\.12 kernel is not in .*run once without --offline\n$/);
  const runs = await cli('--offline', '--quick', '--results', join(scratch, 'results'));
  t.equal(runs.exitCode, 4);
  t.match(runs.stderr, /\nfaultline: --offline: Debian's 6\.12 kernel is not in .*\n$/);
  const both = await cli('--list', '--offline', '--refresh');
  t.equal(both.exitCode, ExitCode.infra);
  t.equal(both.stderr, 'faultline: --refresh asks apt and --offline never does: drop one of them\n');
  t.same(await aptCalls(), []);
});
