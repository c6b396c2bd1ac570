import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import { PROJECT_ROOT } from '../util/project.js';
import { ensureKernelTestRepo } from '../testkit/kernel-repo.js';

/**
 * Issue 19, item 7, on a real guest: a kernel booted with panic_on_warn=1 (as syzbot and many CI
 * systems boot) whose UFFDIO_ZEROPAGE path WARNs (the test repository's `splat` commit). Every
 * guest panics at its first zeropage ioctl. The crashed subtest must never run again in the run,
 * the crash is a failure (never an infrastructure error), and the rest of the run still runs.
 *
 * Time: the kernel is built with `run --ref` (ccache serves it from the minimal kernel's objects,
 * or the build cache from the bisect e2e), then a quick shmem run of about 2 min here with a few
 * guest restores. Measured here: 36 min in all at load 12-25, most of it waiting behind a cold
 * minimal-kernel build; 60 min covers a cold, loaded 2-core CI machine.
 */
t.setTimeout(60 * 60_000);

const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');

t.test('panic_on_warn: the crashed subtest is not rerun, the crash is a FAIL, the rest runs', async (t) => {
  const { repo, commits } = await ensureKernelTestRepo();
  const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-panic-on-warn-'));
  t.teardown(() => rmSync(results, { recursive: true, force: true }));
  const r = await execa(
    'node',
    [
      cli,
      'run',
      '--kernel-src',
      repo,
      '--ref',
      commits.splat,
      '--config-base',
      'tinyconfig',
      '--kconfig',
      'minimal,uffd',
      '--cmdline',
      'panic_on_warn=1',
      '--backing',
      'shmem',
      '--quick',
      '--retries',
      '0',
      '--results',
      results,
      '--run-id',
      'pow',
    ],
    { reject: false, all: true, timeout: 35 * 60_000 },
  );
  const rec = await readGuestRunRecord(join(results, 'pow', 'results.json'));
  t.equal(r.exitCode, 1, `exit 1: the kernel failed (tail: ${String(r.all).slice(-800)})`);
  t.equal(rec.verdict, 'fail');
  t.equal(rec.infraError, undefined, 'a loss with a panic on the console is not an infrastructure error');

  // The program runs zeropage on anon first, whatever --backing says: the panic is charged there.
  const crashed = rec.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/anon');
  t.match(crashed, { status: 'fail', reason: /^kernel (panic|warning): / }, 'the crashed subtest is named');
  const zeropageRuns = rec.programs.filter((p) => p.program === 'uffd-unit-tests' && /-f zeropage\b/.test(p.command));
  t.equal(
    zeropageRuns.length,
    1,
    `-f zeropage ran once, never as a resume (${zeropageRuns.map((p) => p.command).join('; ')})`,
  );
  for (const id of ['uffd-unit-tests/zeropage/shmem', 'uffd-unit-tests/zeropage/shmem-private']) {
    t.match(
      rec.subtests.find((s) => s.id === id),
      { status: 'error', reason: /^not run: uffd-unit-tests\/zeropage\/anon crashed the kernel/ },
      `${id} is given up with the reason`,
    );
  }
  // The rest of the run ran on new guests.
  t.ok(
    rec.programs.some((p) => p.program === 'uffd-unit-tests' && p.command.includes('-f wp-unpopulated')),
    'the next uffd-unit-tests command ran after the crash',
  );
  t.ok(
    rec.subtests.some((s) => s.program === 'pagemap_ioctl' && s.status === 'pass'),
    'pagemap_ioctl ran and passed after the crash',
  );
  t.ok(
    rec.programs.some((p) => p.program === 'uffd-stress' && p.backing === 'shmem'),
    'uffd-stress ran after the crash',
  );
  t.ok((rec.guest?.boots ?? 0) >= 2, `a new guest after the panic (${rec.guest?.boots ?? 0} guests)`);
});
