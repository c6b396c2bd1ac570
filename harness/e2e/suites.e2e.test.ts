import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import { PROJECT_ROOT } from '../util/project.js';

// Measured: 41 s beside other tests, 53 s in a loaded full run; the deadline is above the slowest figure.
t.setTimeout(10 * 60_000);

/** faultline's own C suites in a real guest (Debian 6.12, TCG): latency numbers, API contract, postcopy. */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-suites-'));

t.test('uffd-lat, uffd-contract and postcopy on hugetlb and shmem report real parsed results', async (t) => {
  const r = await execa(
    'node',
    [
      cli,
      'run',
      '--suite',
      'uffd-lat,uffd-contract,postcopy',
      '--quick',
      '--backing',
      'hugetlb,shmem',
      '--results',
      results,
      '--run-id',
      'suites',
    ],
    { reject: false, all: true, timeout: 25 * 60_000 },
  );
  t.equal(r.exitCode, 0, `exit 0 (tail: ${String(r.all).slice(-2000)})`);
  const rec = await readGuestRunRecord(join(results, 'suites', 'results.json'));
  t.ok(rec.guest.clocksource, `guest clocksource recorded (${rec.guest.clocksource ?? ''})`);
  t.match(rec.qemu.command.join(' '), /-append [^]*\bidle=poll\b/, 'uffd-lat asked for idle=poll and the guest got it');

  const lat = rec.subtests.filter(
    (s) => s.program === 'uffd-lat' && s.status === 'pass' && s.metrics?.some((m) => m.name === 'total_p50'),
  );
  for (const id of [
    'uffd-lat/missing-copy/shmem/blocking',
    'uffd-lat/missing-copy/hugetlb/blocking',
    'uffd-lat/minor-continue/shmem/blocking',
    'uffd-lat/minor-continue/hugetlb/blocking',
  ]) {
    const s = lat.find((x) => x.id === id);
    t.ok(s, `${id} measured`);
    const metric = (name: string) => s?.metrics?.find((m) => m.name === name);
    t.ok((metric('total_p50')?.value ?? 0) > 0, `${id} total_p50 > 0 (${metric('total_p50')?.value ?? '?'} ns)`);
    t.equal(metric('total_p50')?.unit, 'ns');
    t.equal(metric('iterations')?.value, 50, `${id}: the 50 iterations asked for were measured`);
    t.ok(
      (metric('notify_p50')?.value ?? 0) > 0 && (metric('resolve_p50')?.value ?? 0) > 0,
      `${id}: notify and resolve reported apart`,
    );
  }
  t.ok(
    lat.every((s) => s.backing === 'hugetlb' || s.backing === 'shmem' || s.backing === undefined),
    'only selected backings',
  );

  const contract = rec.subtests.filter((s) => s.program === 'uffd-contract');
  t.ok(contract.length >= 10, `${contract.length} contract subtests`);
  t.same(
    contract.filter((s) => s.status === 'fail' || s.status === 'error').map((s) => `${s.id}: ${s.reason ?? ''}`),
    [],
    'no contract violations on 6.12',
  );
  t.ok(
    contract.some((s) => s.id.startsWith('uffd-contract/copy-on-minor/hugetlb') && s.status === 'pass'),
    'COPY on a minor fault gives EEXIST on hugetlb',
  );

  const pc = rec.subtests.filter((s) => s.program === 'postcopy');
  for (const id of ['postcopy/minor/shmem', 'postcopy/minor/hugetlb']) {
    const s = pc.find((x) => x.id === id);
    t.equal(s?.status, 'pass', `${id} passed`);
    t.equal(s?.metrics?.find((m) => m.name === 'bad_pages')?.value, 0, `${id}: every page verified`);
    t.ok((s?.metrics?.find((m) => m.name === 'pages_per_s')?.value ?? 0) > 0, `${id}: pages/s > 0`);
  }
  t.equal(rec.splats.length, 0, 'no kernel splats');
});
