import t, { type Test } from 'tap';
import { execa } from 'execa';
import { mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureMinimalKernel } from '../testkit/minimal-kernel.js';
import { readBisectRecord } from '../bisect/record.js';
import type { BisectRecord, StepRole } from '../bisect/types.js';
import { readRunRecord } from '../results/record.js';
import type { RunRecord } from '../results/types.js';
import { readSeriesRecord } from '../series/record.js';
import { run } from '../util/proc.js';
import { PROJECT_ROOT } from '../util/project.js';
import { ensureKernelTestRepo, testRepoGit, type KernelTestRepo } from '../testkit/kernel-repo.js';

// Measured: 708-803 s alone warm, 1,235-1,324 s in full runs; cold its kernels are built (ccache); the deadline is above the slowest figure.
t.setTimeout(50 * 60_000);

/**
 * Issue 5 on real kernels: a git repository of Debian's 6.12 tree with seven commits on top
 * (kernel-repo.ts) goes through `faultline series` (as an mbox from git format-patch) and
 * `faultline bisect`, each building the minimal config with ccache and booting every tested
 * revision under QEMU. The culprit makes UFFDIO_ZEROPAGE fail, so uffd-unit-tests' zeropage
 * test fails on anon; one commit does not build, one adds a compiler warning, and the one after
 * the culprit makes every UFFDIO_ZEROPAGE print a kernel WARNING (issue 10: `bisect --splat`
 * finds it; the zeropage bisect must not mistake it for its failure, nor the splat bisect the
 * culprit's failing test for a splat). Issue 11: the same bisects driven by a user's reproducer
 * (`--program`, compiled against each revision's headers), one with a plain exit code, one
 * printing KTAP under --splat.
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const out = mkdtempSync(join(tmpdir(), 'faultline-e2e-kseries-'));
const kernelFlags = ['--config-base', 'tinyconfig', '--kconfig', 'minimal,uffd'];
/** Bug reporters' reproducers for the culprits of the repository: one plain exit code, one KTAP. */
const repro = join(PROJECT_ROOT, 'harness', 'e2e', 'repro');

/** The WARN_ON_ONCE of the 'splat' commit: userfaultfd_zeropage() is inlined into the ioctl or not. */
const ZEROPAGE_WARNING = String.raw`^WARNING: .* userfaultfd_(ioctl|zeropage)\+`;

/**
 * gcc's first error at the commit that does not build, as faultline reports it (path from the
 * tree root, ASCII quotes). The line is read from the commit (it moves with Debian's point
 * release); the column and gcc's suggestion (the helper's own name) are fixed by the patch text.
 */
async function brokenBuildError(k: KernelTestRepo): Promise<string> {
  const source = await testRepoGit(k.repo, ['show', `${k.commits.broken}:mm/userfaultfd.c`]);
  const line = source.split('\n').indexOf('\treturn uffd_move_budget_pages;') + 1;
  if (line === 0) throw new Error('the broken commit has no uffd_move_budget_pages line: kernel-repo.ts changed');
  return `mm/userfaultfd.c:${line}:16: error: 'uffd_move_budget_pages' undeclared (first use in this function); did you mean 'uffd_move_budget'?`;
}

/**
 * The bisect reached the commit that does not build (git's first midpoint of the seven), skipped
 * it for that reason and for no other, told git so, and skipped nothing else.
 */
function skippedTheBrokenCommit(t: Test, rec: BisectRecord, k: KernelTestRepo, buildError: string): void {
  const atBroken = rec.steps.filter((s) => s.rev === k.commits.broken);
  t.same(
    atBroken.map((s) => [s.role, s.verdict, s.reason]),
    [['bisect', 'skip', `build broken: ${buildError}`]],
    'the broken commit is tested once, as a bisect step, and skipped because it does not build',
  );
  t.same(
    rec.steps.filter((s) => s.verdict === 'skip').map((s) => s.rev),
    [k.commits.broken],
    'no other step is skipped',
  );
  t.equal(rec.stats.skips, 1, 'one skip counted');
  t.match(rec.bisectLog, new RegExp(`^git bisect skip ${k.commits.broken}$`, 'm'), 'git bisect was told to skip it');
}

/** The results of the first run of the bisect step with this role; a step without a run directory fails the test. */
async function stepRun(rec: BisectRecord, role: StepRole): Promise<RunRecord> {
  const dir = rec.steps.find((s) => s.role === role)?.runs[0]?.runDir;
  if (dir === undefined) throw new Error(`the ${role} step kept no run directory`);
  return readRunRecord(join(dir, 'results.json'));
}

/**
 * What a user would look at to see that their checkout was not touched, one list of lines each.
 * The test repository's files are hard links to the cached Debian tree, which other tests hard-link
 * (`cp -al`) and delete at the same time: that changes the inodes' ctime and nothing else, and
 * plain `git status` then reported symlinks as modified (2 of 4 samples during such a copy, none
 * with ctime ignored). Content, mtime and size still decide.
 */
async function userRepoState(repo: string): Promise<Record<'status' | 'worktrees' | 'refs', string[]>> {
  const lines = async (args: string[]): Promise<string[]> =>
    (await run('git', ['-C', repo, ...args], { timeoutMs: 5 * 60_000 })).stdout.split('\n').filter(Boolean);
  return {
    status: await lines([
      '-c',
      'core.trustctime=false',
      '-c',
      'core.checkStat=minimal',
      'status',
      '--porcelain',
      '--branch',
    ]),
    worktrees: await lines(['worktree', 'list', '--porcelain']),
    refs: await lines(['for-each-ref']),
  };
}

async function seriesReportsEveryPatch(t: Test, k: KernelTestRepo, buildError: string): Promise<void> {
  const mbox = join(out, 'series.mbox');
  await writeFile(
    mbox,
    `${await testRepoGit(k.repo, ['format-patch', '--stdout', '--cover-letter', '--thread', `${k.base}..${k.tip}`])}\n`,
  );
  const dir = join(out, 'series');
  const r = await execa(
    'node',
    [
      cli,
      'series',
      '--kernel-src',
      k.repo,
      '--base',
      k.base,
      '--mbox',
      mbox,
      ...kernelFlags,
      '--backing',
      'anon',
      '--filter',
      'zeropage',
      '--results-dir',
      dir,
    ],
    { reject: false, all: true, timeout: 90 * 60_000 },
  );
  t.equal(r.exitCode, 1, `the series regresses: exit 1 (tail: ${String(r.all).slice(-2500)})`);
  const rec = await readSeriesRecord(join(dir, 'results.json'));
  t.equal(rec.patches.length, 7);
  t.equal(rec.messageIds.length, 7, 'one Message-ID per patch (cover letter skipped)');
  const [comment, warning, broken, fix, culprit, splat] = rec.patches;
  t.equal(comment?.build?.ok, true);
  t.same(comment?.build?.newWarnings, [], 'a comment adds no warning');
  t.equal(warning?.build?.ok, true);
  t.match(
    warning?.build?.newWarnings.map((w) => `${w.file}: ${w.text}`).join('\n') ?? '',
    /fs\/userfaultfd\.c: .*unused variable .zeropage_retries/,
  );
  t.equal(broken?.build?.ok, false, 'the broken patch is reported as not building');
  t.equal(broken?.build?.firstError, buildError, 'first error: path from the tree root, ASCII quotes');
  t.equal(fix?.build?.ok, true);
  t.equal(culprit?.build?.ok, true);
  t.same(splat?.build?.newWarnings, [], 'the WARN_ON_ONCE compiles without a compiler warning');
  t.equal(rec.timing.patchBuildMs.length, 7, 'every patch was built');
  t.ok((rec.baseTests?.counts.pass ?? 0) > 0, 'the base passes zeropage');
  t.ok(
    rec.comparison?.regressions.some((x) => x.id === 'uffd-unit-tests/zeropage/anon'),
    'zeropage/anon is a new failure at the tip',
  );
  t.equal(rec.baseTests?.splats, 0, 'the base does not splat');
  const newSplats = rec.comparison?.newSplats ?? [];
  t.ok(
    newSplats.some((x) => x.kind === 'warning' && new RegExp(ZEROPAGE_WARNING).test(x.title)),
    `the tip's WARNING is a new splat (${newSplats.map((x) => x.title).join(' | ')})`,
  );
  t.equal(rec.verdict, 'regressed');
  const report = await readFile(join(dir, 'report.txt'), 'utf8');
  t.match(
    report,
    /^\[2\/7\] userfaultfd: count zeropage retries: builds \([^)]+\), 1 new warning(, .*)?$/m,
    'the report names the warning patch',
  );
  t.equal(
    report.split('\n').find((l) => l.startsWith('[3/7] ')),
    `[3/7] mm/userfaultfd: add a move budget helper: BUILD BROKEN: ${buildError}`,
    'the report names the broken patch and its first error',
  );
  t.match(report, /zeropage\/anon/);
  t.match(report, /WARNING: .*userfaultfd_/, 'the reply shows the new splat');
  t.match(await readFile(join(dir, 'junit.xml'), 'utf8'), /<testsuites/);
}

/**
 * `faultline bisect` of the test repository's base..tip with `spec` (what to test and how), the
 * minimal config and one run per step, into out/NAME; it must find a verified culprit (exit 0).
 */
async function bisectTestRepo(
  t: Test,
  k: KernelTestRepo,
  name: string,
  spec: string[],
): Promise<{ rec: BisectRecord; stdout: string; dir: string }> {
  const dir = join(out, name);
  const r = await execa(
    'node',
    [cli, 'bisect', '--kernel-src', k.repo, '--good', k.base, '--bad', k.tip, ...spec, ...kernelFlags].concat([
      '--runs',
      '1',
      '--results-dir',
      dir,
    ]),
    { reject: false, all: true, timeout: 90 * 60_000 },
  );
  t.equal(r.exitCode, 0, `bisect found a verified culprit (tail: ${String(r.all).slice(-2500)})`);
  return { rec: await readBisectRecord(join(dir, 'results.json')), stdout: String(r.stdout), dir };
}

/** Nothing built twice: every revision is built once (endpoint re-checks and verification hit the cache). Returns the builds. */
function builtOnce(t: Test, rec: BisectRecord): string[] {
  const builds = rec.steps.filter((s) => s.cacheHit === false).map((s) => s.rev);
  t.equal(new Set(builds).size, builds.length, `no revision was built twice (${builds.length} builds)`);
  return builds;
}

async function bisectFindsTheZeropageCulprit(t: Test, k: KernelTestRepo, buildError: string): Promise<void> {
  const { rec } = await bisectTestRepo(t, k, 'bisect', ['--test', 'uffd-unit-tests:zeropage/anon', '--verify-revert']);
  t.equal(rec.outcome, 'found');
  t.equal(rec.culprit?.hash, k.commits.culprit, 'the culprit is the zeropage patch');
  t.match(rec.culprit?.subject ?? '', /UFFDIO_ZEROPAGE/);
  t.equal(rec.verification?.verified, true);
  t.equal(rec.verification?.revert?.verdict, 'good', 'reverting the culprit on the bad revision passes');
  t.equal(rec.stats.rangeSize, 7);
  skippedTheBrokenCommit(t, rec, k, buildError);
  builtOnce(t, rec);
  // git's own log: each bisect step's verdict handed to git in order, and git's answer.
  t.same(
    rec.bisectLog.split('\n').filter((l) => /^git bisect (good|bad|skip) /.test(l)),
    rec.steps.filter((s) => s.role === 'bisect').map((s) => `git bisect ${s.verdict} ${s.rev}`),
    'git bisect was given every step verdict, in order',
  );
  t.match(rec.bisectLog, new RegExp(`^# first bad commit: \\[${k.commits.culprit}\\] `, 'm'));
}

async function bisectSplatFindsTheWarning(t: Test, k: KernelTestRepo, buildError: string): Promise<void> {
  const t0 = Date.now();
  const { rec, stdout } = await bisectTestRepo(t, k, 'bisect-splat', [
    '--splat',
    ZEROPAGE_WARNING,
    '--filter',
    'zeropage',
    '--backing',
    'anon',
    '--verify-revert',
  ]);
  t.equal(rec.outcome, 'found');
  t.equal(rec.culprit?.hash, k.commits.splat, 'the culprit is the WARN_ON_ONCE commit');
  t.match(rec.spec, /^--splat /);
  t.match(
    stdout,
    /\n {2}fails: {3}warning: WARNING: .*userfaultfd_/,
    'the report names the splat that made the culprit bad',
  );
  const culpritRun = rec.steps.find((s) => s.role === 'verify-culprit')?.runs[0];
  t.match(
    culpritRun?.detail ?? '',
    new RegExp(`^warning: ${ZEROPAGE_WARNING.slice(1)}.*\\(during uffd-unit-tests\\.zeropage\\)$`),
    'bad because of the WARNING, during the zeropage test',
  );
  // The parent is the zeropage culprit: its test fails, its console is clean, so it is good here.
  const parent = rec.steps.find((s) => s.role === 'verify-parent');
  t.equal(parent?.rev, k.commits.culprit);
  t.equal(parent?.verdict, 'good');
  const parentRun = await stepRun(rec, 'verify-parent');
  // The test err()s out on the -EINVAL: a crash of the subtest ('error'), a failure for --test.
  t.match(
    parentRun.subtests.find((s) => s.id === 'uffd-unit-tests/zeropage/anon'),
    // The kernel returns before it writes the result field: 0, and the EINVAL in errno.
    { status: 'error', reason: /^crashed: ERROR: UFFDIO_ZEROPAGE error: 0 \(errno=22, / },
    'zeropage/anon died on the EINVAL in that run',
  );
  t.same(parentRun.splats, [], 'and the kernel did not splat');
  t.equal(rec.verification?.verified, true);
  t.equal(
    rec.verification?.revert?.verdict,
    'good',
    'reverting the WARN on the tip is good although zeropage still fails there',
  );
  t.equal(rec.stats.rangeSize, 7);
  skippedTheBrokenCommit(t, rec, k, buildError);
  const builds = builtOnce(t, rec);
  t.comment(
    `splat bisect: ${rec.stats.bisectSteps} bisect steps (${rec.stats.skips} skipped), ${rec.stats.revisionsTested} revisions, ${rec.stats.runs} runs, ${builds.length} builds, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
}

async function bisectProgramByExitCode(t: Test, k: KernelTestRepo, buildError: string): Promise<void> {
  const t0 = Date.now();
  const { rec, dir } = await bisectTestRepo(t, k, 'bisect-program', ['--program', join(repro, 'zeropage-wake.c')]);
  t.equal(rec.spec, '--program zeropage-wake.c');
  t.equal(rec.culprit?.hash, k.commits.culprit, 'the culprit is the zeropage patch');
  t.equal(rec.verification?.verified, true);
  // The program ran once per default backing (faultline run's order); the first failure is the reason.
  t.equal(
    rec.steps.find((s) => s.role === 'verify-culprit')?.runs[0]?.detail,
    'zeropage-wake/hugetlb: fail: exit 1: UFFDIO_ZEROPAGE mode 0: Invalid argument',
    "bad because the program exits 1, naming the kernel's EINVAL",
  );
  const culpritRun = await stepRun(rec, 'verify-culprit');
  t.same(
    culpritRun.subtests.map((s) => [s.id, s.status]),
    ['hugetlb', 'shmem', 'anon'].map((m) => [`zeropage-wake/${m}`, 'fail']),
    'the program failed on every backing: the EINVAL does not depend on the memory',
  );
  t.same(culpritRun.suites, ['program'], 'only the program ran: no suite');
  t.equal(culpritRun.selftests.tree, join(dir, 'worktree'), "compiled against the bisect worktree's headers");
  skippedTheBrokenCommit(t, rec, k, buildError);
  builtOnce(t, rec);
  t.comment(
    `program bisect: ${rec.stats.bisectSteps} bisect steps, ${rec.stats.revisionsTested} revisions, ${rec.stats.runs} runs, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
}

async function bisectProgramKtapSplat(t: Test, k: KernelTestRepo, buildError: string): Promise<void> {
  const t0 = Date.now();
  const { rec } = await bisectTestRepo(t, k, 'bisect-program-splat', [
    '--program',
    join(repro, 'zeropage-ktap.c'),
    '--splat',
    ZEROPAGE_WARNING,
  ]);
  t.equal(rec.culprit?.hash, k.commits.splat, 'the culprit is the WARN_ON_ONCE commit');
  t.match(
    rec.steps.find((s) => s.role === 'verify-culprit')?.runs[0]?.detail ?? '',
    /^warning: WARNING: .*userfaultfd_.*\(during zeropage-ktap/,
    'bad because of the WARNING, during the program',
  );
  // Its parent is the zeropage culprit: the KTAP program's wake test fails there, its console is clean.
  const parentRun = await stepRun(rec, 'verify-parent');
  const status = (id: string): string => parentRun.subtests.find((s) => s.id === id)?.status ?? 'absent';
  t.equal(status('zeropage-ktap/zeropage-wake/anon'), 'fail', 'KTAP test 1 parsed: fails at the parent');
  t.equal(status('zeropage-ktap/zeropage-dontwake/anon'), 'pass', 'KTAP test 2 parsed: passes');
  t.same(parentRun.splats, [], 'and the kernel did not splat');
  skippedTheBrokenCommit(t, rec, k, buildError);
  t.comment(
    `program splat bisect: ${rec.stats.bisectSteps} bisect steps, ${rec.stats.revisionsTested} revisions, ${rec.stats.runs} runs, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
}

t.test('series and bisect on a real kernel tree', async (t) => {
  // Fills ccache with the minimal config's objects (relative paths: shared with the worktrees below).
  await ensureMinimalKernel({ progress: 'plain' });
  const k = await ensureKernelTestRepo();
  const before = await userRepoState(k.repo);
  const buildError = await brokenBuildError(k);

  await t.test(
    'series: mbox of 7 patches; warning, build break, the zeropage regression and the new splat are reported',
    (t) => seriesReportsEveryPatch(t, k, buildError),
  );

  await t.test('bisect: finds the zeropage culprit, skips the commit that does not build, verifies by revert', (t) =>
    bisectFindsTheZeropageCulprit(t, k, buildError),
  );

  await t.test(
    'bisect --splat: finds the commit that makes UFFDIO_ZEROPAGE warn; the failing culprit before it is good',
    (t) => bisectSplatFindsTheWarning(t, k, buildError),
  );

  await t.test(
    'bisect --program (plain exit code): the reproducer finds the commit that makes UFFDIO_ZEROPAGE fail',
    (t) => bisectProgramByExitCode(t, k, buildError),
  );

  await t.test(
    'bisect --program (KTAP) --splat: the reproducer run under the splat spec finds the WARN_ON_ONCE commit',
    (t) => bisectProgramKtapSplat(t, k, buildError),
  );

  const after = await userRepoState(k.repo);
  for (const part of ['status', 'worktrees', 'refs'] as const) {
    t.same(after[part], before[part], `the user repository's ${part}: unchanged (now: ${after[part].join(' | ')})`);
  }
});
