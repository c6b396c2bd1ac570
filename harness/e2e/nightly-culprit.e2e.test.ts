/**
 * Issue 23's culprit loop on a real kernel tree: three nights of a plan whose kernel is a moving
 * branch of the kernel test repository (kernel-repo.ts: Debian's 6.12 tree plus seven commits).
 * Night 1 tests the branch at the `warning` commit (zeropage passes); the branch then moves to the
 * `culprit` commit (UFFDIO_ZEROPAGE fails with EINVAL), so night 2's zeropage/anon is a regression
 * that the night bisects by itself over warning..culprit (the build break inside is skipped) to a
 * verified culprit with its mail, and writes that culprit as a known issue; night 3, on the same
 * commit, bisects nothing, says the failure dates from night 2 and is green: the failure is known.
 * Cheap for CI: one backing (anon), the quick uffd suite filtered to zeropage, no retries, one run
 * per bisect step, and the same kernel config as kernel-series-bisect.e2e.test.ts (tinyconfig +
 * minimal,uffd) so every revision's build is already in the shared artifact cache (only the revert
 * of the culprit is compiled, with ccache).
 * Measured here (2 cores, TCG, load 7-11 from other helpers' builds): 2.4 min with every build in
 * the artifact cache (night 1: 17 s; night 2: 117 s, the bisect's six revisions all cached, the
 * culprit's revert included, as faultline's commits carry their parent's date; night 3: 11 s).
 * 9.5 min when the revert must be compiled (with ccache); 37 min the first time, with the nights'
 * two kernels to compile after the shared ccache had been emptied.
 */
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NightlyOutcome } from '../nightly/nightly.js';
import { readBisectRecord } from '../bisect/record.js';
import { readRunRecord } from '../results/record.js';
import { exists } from '../util/fsutil.js';
import { which } from '../util/proc.js';
import { ensureKernelTestRepo, type KernelTestRepo } from '../testkit/kernel-repo.js';
import { movingTree, type MovingTree } from '../testkit/moving-tree.js';

// Measured: 132-193 s with its builds cached, 37 min the first time (two kernels compiled); the deadline is above the slowest figure.
t.setTimeout(50 * 60_000);

const qemu = await which('qemu-system-x86_64');
const ZEROPAGE = 'uffd-unit-tests/zeropage/anon';

/** The test repository's moving clone and the plan: anon, the quick uffd suite's zeropage, one run per step. */
async function culpritTree(t: Test, k: KernelTestRepo): Promise<MovingTree> {
  const m = await movingTree(k.repo, {
    name: 'culprit-e2e',
    planLines: [
      'backings: [anon]',
      'suites: [uffd]',
      'filter: zeropage',
      'quick: true',
      'retries: 0',
      'bisect: { max_minutes: 60, runs: 1 }',
    ],
    onNight: (id, ms) => t.comment(`${id}: ${(ms / 1000).toFixed(0)} s`),
  });
  t.teardown(() => (process.env['FAULTLINE_KEEP_E2E'] ? undefined : m.cleanup()));
  return m;
}

/** Night 2: the regression bisected to the culprit, verified, with its mail and command. */
async function checkCulpritNight(t: Test, n2: NightlyOutcome, k: KernelTestRepo): Promise<void> {
  t.equal(n2.exitCode, 1, 'night 2 regresses: exit 1, bisect or not');
  t.same(n2.record.commits, { mm: k.commits.culprit });
  t.ok(
    n2.comparison?.regressions.some((r) => r.id === ZEROPAGE),
    `zeropage/anon regressed (${n2.comparison?.regressions.map((r) => r.id).join(', ')})`,
  );
  const [b2, ...more2] = n2.record.bisects ?? [];
  t.same(more2, [], 'one regression group, one bisect');
  t.match(b2, {
    kernel: 'mm',
    config: 'default',
    signal: { kind: 'test', id: ZEROPAGE },
    good: k.commits.warning,
    bad: k.commits.culprit,
    goodNight: 'night-1',
    outcome: 'culprit',
    culprit: { hash: k.commits.culprit, subject: 'userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly' },
    spec: 'uffd-unit-tests:zeropage/anon',
  });
  const bisect = await readBisectRecord(join(n2.dir, b2?.dir ?? 'none', 'results.json'));
  t.equal(bisect.verification?.verified, true, 'parent passes, culprit fails');
  t.equal(bisect.verification?.revert?.verdict, 'good', "reverting the culprit on tonight's commit passes");
  t.match(
    bisect.command?.argv.join(' ') ?? '',
    `--good ${k.commits.warning} --bad ${k.commits.culprit} --test uffd-unit-tests:zeropage/anon --config-base tinyconfig --kconfig minimal,uffd --runs 1 --verify-revert`,
    'the faultline bisect command that reproduces it',
  );
  t.notOk(
    bisect.steps.some((s) => s.rev === k.commits.broken && s.verdict !== 'skip'),
    'the commit that does not build is never good or bad',
  );
  const mail = await readFile(join(n2.dir, b2?.mail ?? 'none'), 'utf8');
  t.match(mail, /^Subject: \[faultline\] userfaultfd: reject unknown UFFDIO_ZEROPAGE modes/m);
  t.match(mail, /^To: faultline test <test@faultline\.invalid>$/m, "to the culprit's author");
  t.match(
    n2.summary,
    new RegExp(`mm/default test ${ZEROPAGE}: culprit ${k.commits.culprit.slice(0, 12)} \\("userfaultfd: reject`),
  );
  const html = await readFile(n2.reportPath, 'utf8');
  t.match(html, /<section id="culprits"><h2>Culprits \(1\)<\/h2>/, 'the HTML report has the culprit');
  t.match(html, `<code>${k.commits.culprit.slice(0, 12)}</code> userfaultfd: reject unknown UFFDIO_ZEROPAGE modes`);
}

/**
 * Night 3, same commit: no regression, no bisect, the failure dated from night 2 and known by the
 * issue night 2's culprit became: the night is green, the issue listed with its culprit.
 */
async function checkKnownNight(t: Test, n2: NightlyOutcome, n3: NightlyOutcome, k: KernelTestRepo): Promise<void> {
  const issueFile = join(n2.dir, 'known-issues', 'mm.default.yaml');
  const issueId = `culprit-${k.commits.culprit.slice(0, 12)}-default-tests`;
  t.match(
    await readFile(issueFile, 'utf8'),
    new RegExp(`id: ${issueId}`),
    'night 2 wrote its culprit as a known issue',
  );
  t.equal(n3.exitCode, 0, `night 3's only failure is known: green (${n3.summary})`);
  const [job] = n3.record.jobs;
  const run3 = await readRunRecord(join(n3.dir, job?.runDir ?? 'none', 'results.json'));
  t.match(
    run3.subtests.find((s) => s.id === ZEROPAGE),
    { status: 'error', known: issueId },
    'still failing, known',
  );
  t.match(run3.knownIssues, [{ id: issueId, state: 'present', culprit: 'code', where: [ZEROPAGE] }]);
  t.match(await readFile(n3.reportPath, 'utf8'), issueId, 'the HTML report lists the known issue');
  t.match(
    n3.summary,
    new RegExp(`^ {2}KNOWN ${issueId} \\(code\\): ${ZEROPAGE}: broken by .*: ${ZEROPAGE}; since night-3$`, 'm'),
    'so does the text summary',
  );
  t.same(n3.comparison?.regressions, [], 'nothing new against night 2');
  t.match(n3.record.bisects, [
    {
      signal: { kind: 'test', id: ZEROPAGE },
      outcome: 'known',
      since: 'night-2',
      culprit: { hash: k.commits.culprit },
    },
  ]);
  t.equal(n3.record.bisects?.length, 1);
  t.notOk(await exists(join(n3.dir, 'bisects')), 'night 3 bisected nothing');
  t.match(n3.summary, new RegExp(`${ZEROPAGE}: failing since night-2, culprit ${k.commits.culprit.slice(0, 12)}`));
}

t.test(
  'nightly culprit loop: a red night on a moving tree names its culprit, the next night remembers it',
  { skip: qemu ? false : 'qemu-system-x86_64 missing (npm run setup)' },
  async (t) => {
    const t0 = Date.now();
    const k = await ensureKernelTestRepo();
    const { root, repo: tree, worktrees, night } = await culpritTree(t, k);

    const n1 = await night('night-1', k.commits.warning);
    t.equal(n1.exitCode, 0, `night 1 passes (${n1.summary})`);
    t.same(n1.record.commits, { mm: k.commits.warning }, 'night 1 records the commit its branch stood at');
    t.equal(n1.record.bisects, undefined, 'nothing to compare with, nothing to bisect');

    const n2 = await night('night-2', k.commits.culprit);
    await checkCulpritNight(t, n2, k);
    await checkKnownNight(t, n2, await night('night-3', k.commits.culprit), k);
    t.same(
      (await worktrees()).filter((w) => w.startsWith(root)),
      [tree],
      'no bisect worktree left behind in the repository',
    );
    t.comment(`three nights: ${((Date.now() - t0) / 1000).toFixed(0)} s; results in ${root}`);
  },
);
