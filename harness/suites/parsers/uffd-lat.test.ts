import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { ProgramOutput } from '../types.js';
import { parseDiagnostics, parseUffdLat } from './uffd-lat.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const load = (name: string, exitCode: number | null): ProgramOutput => ({
  output: readFileSync(join(fixtures, name), 'utf8'),
  exitCode,
  timedOut: false,
  durationMs: 1000,
});
const metric = (s: { metrics?: { name: string; value: number; unit: string }[] } | undefined, name: string) =>
  s?.metrics?.find((m) => m.name === name);

t.test('full host run (kernel 6.18): every case parsed with metrics and backing', (t) => {
  // ./uffd-lat -b anon,shmem,hugetlb,shmem-thp,hugetlb-1g -n 100 -w 10, exit 0
  const p = parseUffdLat(load('uffd-lat.host-6.18.full.txt', 0), { suite: 'uffd-lat' });
  t.equal(p.status, 'pass');
  t.equal(p.subtests.length, 40);
  const copy = p.subtests.find((s) => s.name === 'missing-copy/shmem/blocking');
  t.ok(copy);
  t.equal(copy?.id, 'uffd-lat/missing-copy/shmem/blocking');
  t.equal(copy?.backing, 'shmem');
  t.equal(copy?.status, 'pass');
  t.equal(metric(copy, 'iterations')?.value, 100, 'count equals -n');
  t.equal(metric(copy, 'total_p50')?.unit, 'ns');
  t.ok((metric(copy, 'total_p50')?.value ?? 0) > 0, 'p50 > 0');
  for (const part of ['total', 'notify', 'resolve']) {
    const p50 = metric(copy, `${part}_p50`)?.value ?? -1;
    const p99 = metric(copy, `${part}_p99`)?.value ?? -1;
    const max = metric(copy, `${part}_max`)?.value ?? -1;
    t.ok(p50 > 0 && p50 <= p99 && p99 <= max, `${part}: 0 < p50 <= p99 <= max`);
  }
  t.ok((copy?.durationMs ?? 0) > 0, 'durationMs from the wall metric');
  const hist = (copy?.metrics ?? []).filter((m) => m.name.startsWith('total_ns_log2_'));
  t.ok(hist.length > 0);
  t.equal(
    hist.reduce((a, m) => a + m.value, 0),
    100,
    'histogram buckets sum to the sample count',
  );
  const minor = p.subtests.find((s) => s.name === 'minor-continue/hugetlb/poll');
  t.equal(minor?.backing, 'hugetlb');
  t.ok(metric(minor, 'fill_p50'), 'MINOR reports the fill through the alias');
  const baseline = p.subtests.find((s) => s.name === 'first-touch/anon');
  t.equal(baseline?.status, 'pass');
  t.notOk(metric(baseline, 'notify_p50'), 'no handler, no notify metric');
  const clock = p.subtests.find((s) => s.name === 'clock-overhead');
  t.ok((metric(clock, 'clock_p50')?.value ?? 0) > 0);
  const thp = p.subtests.find((s) => s.name === 'first-touch/shmem-thp');
  t.equal(thp?.status, 'skip');
  t.equal(thp?.backing, 'shmem-thp');
  t.match(thp?.reason ?? '', /shmem_enabled/);
  const giga = p.subtests.find((s) => s.name === 'wp/hugetlb-1g/blocking');
  t.equal(giga?.status, 'skip', 'no 1G hugepages is a skip, not a failure');
  t.end();
});

t.test('killed mid-run: error, partial subtests kept', (t) => {
  const p = parseUffdLat(load('uffd-lat.host-6.18.killed.txt', null), { suite: 'uffd-lat', backing: 'anon' });
  t.equal(p.status, 'error');
  t.match(p.reason ?? '', /signal/);
  t.ok(p.subtests.length >= 1);
  t.ok(p.subtests.every((s) => s.status === 'pass'));
  t.end();
});

t.test('same output with a clean exit code is still an error (no Totals line)', (t) => {
  const p = parseUffdLat(load('uffd-lat.host-6.18.killed.txt', 0), { suite: 'uffd-lat' });
  t.equal(p.status, 'error');
  t.match(p.reason ?? '', /Totals/);
  t.end();
});

t.test('watchdog bail out is an error', (t) => {
  const p = parseUffdLat(load('uffd-lat.host-6.18.watchdog.txt', 3), { suite: 'uffd-lat', backing: 'shmem' });
  t.equal(p.status, 'error');
  t.match(p.reason ?? '', /bail out: minor-continue\/shmem\/blocking/);
  t.end();
});

t.test('timed out invocation is an error', (t) => {
  const out = load('uffd-lat.host-6.18.full.txt', null);
  out.timedOut = true;
  t.equal(parseUffdLat(out, { suite: 'uffd-lat' }).status, 'error');
  t.end();
});

t.test('diagnostic line formats', (t) => {
  const d = parseDiagnostics([
    'metric total_p50=1234 ns',
    'metric mib_per_s=55.900 MiB/s',
    'hist total_ns 0:2 13:5',
    'behaviour kernel 6.12 >= 6.4: x',
    'metric broken',
    'some other note',
  ]);
  t.same(d.metrics, [
    { name: 'total_p50', value: 1234, unit: 'ns' },
    { name: 'mib_per_s', value: 55.9, unit: 'MiB/s' },
    { name: 'total_ns_log2_0', value: 2, unit: 'samples' },
    { name: 'total_ns_log2_13', value: 5, unit: 'samples' },
  ]);
  t.equal(d.behaviour, 'kernel 6.12 >= 6.4: x');
  t.same(d.malformed, ['metric broken']);
  t.end();
});

t.test('a failing case is a failed subtest and a failed program', (t) => {
  const text = [
    'TAP version 13',
    '1..2',
    'ok 1 clock-overhead',
    'not ok 2 missing-copy/anon/blocking # iteration 3: missing-copy failed: File exists (fault flags 0x0)',
    '# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0',
    '',
  ].join('\n');
  const p = parseUffdLat({ output: text, exitCode: 1, timedOut: false, durationMs: 5 }, { suite: 'uffd-lat' });
  t.equal(p.status, 'fail');
  t.equal(p.subtests[1]?.status, 'fail');
  t.match(p.subtests[1]?.reason ?? '', /File exists/);
  t.equal(p.subtests[1]?.backing, 'anon');
  t.end();
});

t.test("a failed result's reason is the diagnostics before it (shared by uffd-lat, uffd-contract, postcopy)", (t) => {
  // Real KTAP of a failing program (fixtures/program/host-isolation.c in a Debian 6.12 guest, exit 1):
  // no uffd-lat failure has been captured, and the parser shared by the three is the same for any KTAP.
  const p = parseUffdLat(load('program/host-isolation.anon.txt', 1), { suite: 'program', program: 'host-isolation' });
  t.equal(p.status, 'fail');
  t.match(p.subtests, [
    {
      name: 'guest-isolated-from-host',
      status: 'fail',
      reason: /^reached host loopback service: 10\.0\.2\.2:8123 answered "HTTP\/1\.0 200 OK" \| /,
    },
  ]);
  t.end();
});
