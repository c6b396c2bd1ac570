import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import { PROJECT_ROOT } from '../util/project.js';

// Measured: 357 s on the cold CI machine, 459 s in a full run at load 3-4; the deadline is above the slowest figure.
t.setTimeout(25 * 60_000);

/**
 * The guest memory the rarer backings need, on real guests: 1 GiB hugetlb pages (the
 * guest must reserve them at boot), THP-backed shmem, and guest NUMA nodes. Each asserts
 * that the tests ran rather than skipped.
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-backings-'));
const faultline = (args: string[]) =>
  execa('node', [cli, 'run', '--suite', 'uffd-lat', '--quick', '--results', results, ...args], {
    reject: false,
    all: true,
    timeout: 15 * 60_000,
  });

t.test('hugetlb-1g: with --mem 4096 the guest reserves its 1 GiB page and the WP cases run on it', async (t) => {
  // Only the WP cases: a 1 GiB first touch or CONTINUE costs about a minute each under TCG.
  const r = await faultline([
    '--backing',
    'hugetlb-1g',
    '--hugepages-1g',
    '1',
    '--mem',
    '4096',
    '--filter',
    'wp',
    '--run-id',
    'huge1g',
  ]);
  t.equal(r.exitCode, 0, `exit 0${r.exitCode === 0 ? '' : `: ${r.all.slice(-1500)}`}`);
  const rec = await readGuestRunRecord(join(results, 'huge1g', 'results.json'));
  t.equal(rec.guest.hugepages1g, 1, 'the guest reserved the 1 GiB page');
  const ran = rec.subtests.filter((s) => s.id.includes('/hugetlb-1g'));
  t.same(ran.map((s) => s.id).sort(), [
    'uffd-lat/wp-async/hugetlb-1g',
    'uffd-lat/wp/hugetlb-1g/blocking',
    'uffd-lat/wp/hugetlb-1g/poll',
  ]);
  t.ok(
    ran.every((s) => s.status === 'pass'),
    `all passed, none skipped: ${ran.map((s) => `${s.id} ${s.status} ${s.reason ?? ''}`).join('; ')}`,
  );
});

t.test('hugetlb-1g without the memory for it: refused up front with the --mem that works', async (t) => {
  const r = await faultline(['--backing', 'hugetlb-1g', '--hugepages-1g', '1', '--mem', '2048']);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, /--hugepages-1g 1 needs --mem 4096 or more/);
});

t.test('shmem-thp: the MINOR+CONTINUE cases run on THP-backed shmem', async (t) => {
  const r = await faultline(['--backing', 'shmem-thp', '--filter', 'minor-continue', '--run-id', 'thp']);
  t.equal(r.exitCode, 0, `exit 0${r.exitCode === 0 ? '' : `: ${r.all.slice(-1500)}`}`);
  const rec = await readGuestRunRecord(join(results, 'thp', 'results.json'));
  const ran = rec.subtests.filter((s) => s.id.includes('/shmem-thp'));
  t.same(ran.map((s) => s.id).sort(), [
    'uffd-lat/minor-continue/shmem-thp/blocking',
    'uffd-lat/minor-continue/shmem-thp/poll',
  ]);
  t.ok(
    ran.every((s) => s.status === 'pass'),
    'passed, not skipped',
  );
  t.ok(
    ran.every((s) => s.metrics?.some((m) => m.name === 'total_p50' && m.value > 0)),
    'with latencies',
  );
});

t.test('--numa 2: the guest has two memory nodes, recorded in results.json', async (t) => {
  const r = await execa(
    'node',
    [
      cli,
      'run',
      '--quick',
      '--filter',
      'zeropage',
      '--backing',
      'anon',
      '--numa',
      '2',
      '--results',
      results,
      '--run-id',
      'numa',
    ],
    { reject: false, all: true, timeout: 15 * 60_000 },
  );
  t.equal(r.exitCode, 0, `exit 0${r.exitCode === 0 ? '' : `: ${r.all.slice(-1500)}`}`);
  const rec = await readGuestRunRecord(join(results, 'numa', 'results.json'));
  t.equal(rec.qemu.numaNodes, 2);
  t.equal(rec.guest.numaNodes, 2, 'the guest kernel sees two nodes');
  t.ok(rec.qemu.command.includes('node,nodeid=1,memdev=mem1,cpus=1-1'));
  t.equal(rec.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/anon')?.status, 'pass');
  t.same(rec.splats, [], 'a topology the guest kernel accepts: no WARN about CPUs split across nodes');
});
