/**
 * Issue 23's done-when on the real Debian tree: three nights of a moving branch of the kernel test
 * repository (kernel-repo.ts). Night 1 stands at its tip; night 2 eight commits later, where two
 * commits broke two things independently: one makes UFFDIO_COPY into anonymous memory fail
 * (uffd-lat missing-copy fails on anon), another adds a WARN_ON_ONCE that every UFFDIO_COPY into
 * shmem hits (a new splat on shmem). One window, two culprits: night 2 must bisect the WARN,
 * find that its culprit does not explain the anon failure, bisect that too, verify both, and write
 * a culprit mail and a KCIDB issue for each. Night 3, on the same commit, bisects nothing, says
 * "failing since night-2" for both, and is green: night 2's culprits are known issues.
 * Cheap for CI: uffd-lat's missing-copy on anon and shmem, one run each, tinyconfig + minimal,uffd
 * (the test repository's tip is in the artifact cache from kernel-series-bisect.e2e).
 */
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NightlyOutcome } from '../nightly/nightly.js';
import { withOwnCulpritIssues } from '../nightly/culprit-known-issues.js';
import { readBisectRecord } from '../bisect/record.js';
import { kcidbErrors, toKcidb } from '../report/kcidb.js';
import { kcidbInputs } from '../report/export.js';
import { loadNightlyRuns, type NightlyBisect } from '../results/nightly.js';
import { which } from '../util/proc.js';
import { ANON_FAIL, SHMEM_WARN, twoCulpritWindow } from '../testkit/two-culprits.js';

// Measured: see the test's comments; the deadline is above the slowest figure.
t.setTimeout(45 * 60_000);

const qemu = await which('qemu-system-x86_64');
/** The culprit of a night's bisect entry, checked with its verified record and its mail. */
async function checkCulprit(t: Test, dir: string, b: NightlyBisect | undefined, hash: string, subject: string) {
  t.match(b, { outcome: 'culprit', culprit: { hash, subject } }, `culprit ${subject}`);
  const rec = await readBisectRecord(join(dir, b?.dir ?? 'none', 'results.json'));
  t.match(rec.verification, { verified: true, revert: { verdict: 'good' } }, 'verified, its revert on the tip passes');
  t.equal(rec.stats.rangeSize, 8, 'over the eight commits');
  const mail = (await readFile(join(dir, b?.mail ?? 'none'), 'utf8')).replace(/\r?\n[ \t]+/g, ' ');
  t.match(mail, new RegExp(`^Subject: \\[faultline\\] ${subject}`, 'm'), 'its mail');
}

t.test(
  'one window, two independent regressions: two verified culprits, then known',
  { skip: qemu ? false : 'qemu-system-x86_64 missing (npm run setup)' },
  async (t) => {
    const w = await twoCulpritWindow({ onNight: (id, ms) => t.comment(`${id}: ${(ms / 1000).toFixed(0)} s`) });
    t.teardown(() => (process.env['FAULTLINE_KEEP_E2E'] ? undefined : w.cleanup()));
    const { night, good, anonFail, shmemWarn, tip } = w;

    const n1 = await night('night-1', good);
    t.equal(n1.exitCode, 0, `night 1 passes (${n1.summary})`);

    const n2 = await night('night-2', tip);
    t.equal(n2.exitCode, 1, 'night 2 regressed');
    const [splat, test, ...more] = n2.record.bisects ?? [];
    t.same(more, [], `two bisects (${n2.summary})`);
    t.match(splat, { signal: { kind: 'splat' }, backing: 'shmem', good, bad: tip, goodNight: 'night-1' });
    t.match(splat?.signal.id ?? '', /^WARNING: .* shmem_mfill_atomic_pte\+/, 'the WARN in the shmem fill');
    await checkCulprit(t, n2.dir, splat, shmemWarn, SHMEM_WARN);
    t.match(test, { signal: { kind: 'test' }, backing: 'anon', good, bad: tip });
    t.same(
      test?.signals.map((s) => s.id).sort(),
      ['uffd-lat/missing-copy/anon/blocking', 'uffd-lat/missing-copy/anon/poll'],
      'both anon subtests, explained by one culprit',
    );
    await checkCulprit(t, n2.dir, test, anonFail, ANON_FAIL);
    await checkKcidb(t, n2, [shmemWarn, anonFail]);
    t.match(await readFile(n2.reportPath, 'utf8'), /<section id="culprits"><h2>Culprits \(2\)<\/h2>/);

    const n3 = await night('night-3', tip);
    t.equal(n3.exitCode, 0, `night 3's failures are night 2's culprits, known: green (${n3.summary})`);
    t.match(n3.record.bisects, [
      { outcome: 'known', since: 'night-2', culprit: { hash: shmemWarn } },
      { outcome: 'known', since: 'night-2', culprit: { hash: anonFail } },
    ]);
    t.equal(n3.record.bisects?.length, 2, 'nothing bisected again');
    for (const hash of [shmemWarn, anonFail])
      t.match(n3.summary, new RegExp(`failing since night-2, culprit ${hash.slice(0, 12)}`));
  },
);

/** Night 2's KCIDB export, as `faultline export --kcidb` writes it: valid, an issue and incidents per culprit. */
async function checkKcidb(t: Test, n: NightlyOutcome, culprits: string[]): Promise<void> {
  const runs = await withOwnCulpritIssues(n.dir, await loadNightlyRuns(n.dir, n.record));
  const kcidb = toKcidb(kcidbInputs({ kind: 'nightly', dir: n.dir, record: n.record, runs }));
  t.same(kcidbErrors(kcidb), [], 'KCIDB export valid under the kcidb-io schema');
  for (const hash of culprits) {
    const issue = kcidb.issues?.find((i) => i.id.includes(hash.slice(0, 12)));
    t.match(issue, { culprit: { code: true } }, `a KCIDB issue for ${hash.slice(0, 12)}`);
    t.ok(
      kcidb.incidents?.some((x) => x.issue_id === issue?.id && x.present),
      'with its incidents on the failing tests',
    );
  }
}
