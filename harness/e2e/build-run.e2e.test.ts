import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianSource } from '../kernel/debian.js';
import { ensureMinimalKernel } from '../kernel/build.js';
import { readGuestRunRecord } from '../results/record.js';
import { PROJECT_ROOT } from '../util/project.js';

/**
 * Issue 3 end to end: the minimal kernel (tinyconfig + minimal + uffd, built once per
 * CI run with ccache) boots under faultline through `run --kernel-src --kconfig`, which
 * must find it in the build cache, and runs the quick uffd subset with the selftests
 * of the same tree. No modules: everything the guest needs is built in.
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-build-'));

t.test('a minimal.config kernel built from source boots and passes the quick uffd subset', async (t) => {
  const build = await ensureMinimalKernel({ progress: 'plain' });
  const { tree } = await ensureDebianSource('6.12');
  const r = await execa(
    'node',
    [
      cli,
      'run',
      '--kernel-src',
      tree,
      '--config-base',
      'tinyconfig',
      '--kconfig',
      'minimal,uffd',
      '--quick',
      '--backing',
      'hugetlb,shmem',
      '--results',
      results,
      '--run-id',
      'minimal',
    ],
    { reject: false, all: true, timeout: 20 * 60_000 },
  );
  t.equal(r.exitCode, 0, `exit 0 (tail: ${String(r.all).slice(-1500)})`);
  const rec = await readGuestRunRecord(join(results, 'minimal', 'results.json'));
  t.equal(rec.kernel.source, 'build');
  t.equal(rec.kernel.path, build.bzImage, 'the cached build was booted, not rebuilt');
  t.equal(rec.kernel.configHash, build.configHash);
  t.equal(rec.selftests.source, 'kernel-build');
  t.match(rec.guest.uname, /^6\.12\./);
  for (const id of [
    'uffd-unit-tests/zeropage/hugetlb',
    'uffd-unit-tests/zeropage/shmem',
    'uffd-stress/stress/hugetlb',
    'uffd-stress/stress/shmem',
  ]) {
    t.equal(rec.subtests.find((s) => s.id === id)?.status, 'pass', `${id} passed on the minimal kernel`);
  }
  t.equal(rec.splats.length, 0);
});
