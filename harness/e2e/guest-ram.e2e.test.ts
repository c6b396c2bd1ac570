import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import { PROJECT_ROOT } from '../util/project.js';

// Measured: 289 s cold, 347 s in a full run at load 3-4; the deadline is above the slowest figure.
t.setTimeout(20 * 60_000);

/** Guest RAM on the host's shmem (memfd) and hugetlb: real boots with each QEMU memory backend. */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-ram-'));
const run = (args: string[]) =>
  execa('node', [cli, 'run', '--quick', '--filter', 'zeropage', '--results', results, ...args], {
    reject: false,
    all: true,
    timeout: 15 * 60_000,
  });

t.test('--guest-ram shmem boots on memory-backend-memfd', async (t) => {
  const r = await run(['--guest-ram', 'shmem', '--backing', 'shmem', '--run-id', 'shmem']);
  t.equal(r.exitCode, 0, String(r.all).slice(-800));
  const rec = await readGuestRunRecord(join(results, 'shmem', 'results.json'));
  t.equal(rec.qemu.guestRam, 'shmem');
  t.ok(rec.qemu.command.includes('memory-backend-memfd,id=mem0,size=1024M,share=on'));
  t.equal(rec.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/shmem')?.status, 'pass');
});

t.test(
  '--guest-ram hugetlb: refused with the missing page count, then boots once the host has the pages',
  async (t) => {
    const knob = '/proc/sys/vm/nr_hugepages';
    const before = readFileSync(knob, 'utf8').trim();
    try {
      writeFileSync(knob, '0');
    } catch {
      // Changing host hugepages needs root (CI runs as root); nothing to test without it.
      t.plan(0, 'not root: cannot set host hugepages');
      return;
    }
    try {
      const refused = await run([
        '--guest-ram',
        'hugetlb',
        '--mem',
        '512',
        '--hugepages',
        '32',
        '--run-id',
        'huge-refused',
      ]);
      t.equal(refused.exitCode, 2);
      t.match(
        refused.stderr,
        /--guest-ram hugetlb needs 256 free 2 MiB host hugepages for --mem 512, the host has 0: 256 missing/,
      );
      writeFileSync(knob, '300');
      const r = await run([
        '--guest-ram',
        'hugetlb',
        '--mem',
        '512',
        '--hugepages',
        '32',
        '--backing',
        'hugetlb',
        '--run-id',
        'huge',
      ]);
      t.equal(r.exitCode, 0, String(r.all).slice(-800));
      const rec = await readGuestRunRecord(join(results, 'huge', 'results.json'));
      t.ok(rec.qemu.command.includes('memory-backend-memfd,id=mem0,size=512M,hugetlb=on,hugetlbsize=2M,share=on'));
      t.equal(rec.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/hugetlb')?.status, 'pass');
    } finally {
      writeFileSync(knob, before);
    }
  },
);
