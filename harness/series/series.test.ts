import t, { type Test } from 'tap';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Git } from '../vcs/git.js';
import { exists } from '../util/fsutil.js';
import { CommandBuilder, CommandRunner } from '../revision/command.js';
import { GuestRunner, KernelBuilder, type KernelBuildSettings, type RunSettings } from '../revision/kernel.js';
import { RevisionTester } from '../revision/tester.js';
import { TOY_SERIES_BUILD, TOY_SERIES_TEST, createToySeries } from './fixtures/toy-series.js';
import { readSeriesRecord } from './record.js';
import { baseResultsKey, runSeries, type SeriesOptions } from './series.js';
import type { SeriesRecord } from './types.js';
import { seriesJunit } from '../report/series-junit.js';

const here = dirname(fileURLToPath(import.meta.url));

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'faultline-series-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

const toyTester = (o: { timeoutMs?: number } = {}) =>
  new RevisionTester(
    new CommandBuilder({ cmd: TOY_SERIES_BUILD }),
    new CommandRunner({ test: TOY_SERIES_TEST, program: 'toy', ...o }),
  );

/** The record of the toy series: which patches apply, build and warn, and what the tip changed. */
function recordNamesEveryFinding(t: Test, r: SeriesRecord): void {
  t.equal(r.patches.length, 5, 'cover letter is not a patch');
  t.equal(r.source.kind === 'mbox' && r.source.cover?.subject, '[PATCH 0/5] toy: scale() and a faster mul()');
  t.equal(r.messageIds.length, 5);
  for (const id of r.messageIds) t.match(id, /^<.+@.+>$/);
  t.same(
    r.patches.map((p) => p.apply.ok),
    [true, true, true, true, true],
  );
  t.same(
    r.patches.map((p) => p.build?.ok),
    [true, false, true, true, true],
  );
  t.match(r.patches[1]?.build?.firstError, /^main\.c:\d+:\d+: error: expected ',' or ';' before/);
  t.same(
    r.patches.map((p) => p.build?.newWarnings.length),
    [0, 0, 1, 0, 0],
    'only 3/5 adds a warning',
  );
  t.match(r.patches[2]?.build?.newWarnings[0], {
    file: 'util.c',
    flag: '-Wunused-variable',
    message: "unused variable 'fast_path'",
  });
  t.equal(r.tip, r.patches[4]?.commit);

  const c = r.comparison;
  t.ok(c, 'tip compared with base');
  t.same(
    c?.regressions.map((x) => x.id),
    ['toy/mul'],
  );
  t.same(
    c?.appeared.map((x) => x.id),
    ['toy/sub'],
  );
  t.same(
    c?.vanished.map((x) => x.id),
    ['toy/div'],
  );
  t.equal(c?.newSplats.length, 1);
  t.match(c?.newSplats[0]?.title, /^WARNING: CPU: 0 PID: 1 at util\.c:12 mul/);
  const lat = c?.metrics.find((m) => m.id === 'toy/latency' && m.metric === 'p50');
  const p99 = c?.metrics.find((m) => m.id === 'toy/latency' && m.metric === 'p99');
  t.ok(lat?.regression, 'p50 +25% is flagged');
  t.ok(lat && lat.ci.low > 1.2 && lat.ci.high < 1.3, `p50 CI ${lat?.ci.low}..${lat?.ci.high}`);
  t.ok(p99?.significant, 'p99 +2% is significant...');
  t.notOk(p99?.regression, '...but under the 5% threshold: not flagged');
  t.equal(r.verdict, 'regressed');
  t.equal(r.problems.length, 5, r.problems.join('\n'));
}

/** report.txt: one line per patch, then the comparison of the tip with the base. */
async function reportNamesEveryFinding(t: Test, root: string): Promise<void> {
  const report = await readFile(join(root, 'results', 'report.txt'), 'utf8');
  const lines = report.split('\n');
  t.match(
    lines.find((l) => l.startsWith('[1/5]')),
    /^\[1\/5\] toy: add a scale\(\) helper: builds \(\d+\.\ds\), no new warnings$/,
  );
  t.match(
    lines.find((l) => l.startsWith('[2/5]')),
    /^\[2\/5\] toy: call scale\(\) from main: BUILD BROKEN: main\.c:\d+:\d+: error: /,
  );
  t.match(
    lines.find((l) => l.startsWith('[3/5]')),
    /^\[3\/5\] .*: builds .*, 1 new warning$/,
  );
  t.ok(lines.some((l) => /^ {4}util\.c:\d+:\d+: warning: unused variable 'fast_path' \[-Wunused-variable\]$/.test(l)));
  t.match(
    lines.find((l) => l.startsWith('[5/5]')),
    /tests 15 pass, 5 fail, 5 splats over 5 runs \(vs base: 1 new failures, 1 new splats, 1 metric regressions\)$/,
  );
  t.match(report, /new failures:\n {4}toy\/mul \(base pass,pass,pass,pass,pass -> tip fail,fail,fail,fail,fail\)/);
  t.match(report, /tests that appeared:\n {4}toy\/sub/);
  t.match(report, /tests that vanished:\n {4}toy\/div/);
  t.match(
    report,
    /toy\/latency p50: 1007 -> 1257 ns \(median \+24\.8%, 95% CI \+2\d\.\d%\.\.\+2\d\.\d%, p=0\.0\d+, n=5\/5\) {2}REGRESSION/,
  );
  t.match(report, /toy\/latency p99: 2000 -> 2040 ns .*\(significant, below threshold\)/);
  t.match(report, /Result: REGRESSED \(5 problems\)/);
  t.match(report, /Message-IDs: <.+>/);
}

/** reply.eml: what a reviewer sends back to the list. */
async function replyQuotesEveryFinding(t: Test, root: string, r: SeriesRecord): Promise<void> {
  // The reply a reviewer sends: threaded under the cover letter, not under the reply to it
  // that the list archive's mbox holds between the patches.
  const reply = await readFile(join(root, 'results', 'reply.eml'), 'utf8');
  const [headers = '', body = ''] =
    reply.split('\n\n', 2).length === 2
      ? [reply.slice(0, reply.indexOf('\n\n')), reply.slice(reply.indexOf('\n\n') + 2)]
      : [];
  const coverId = r.source.kind === 'mbox' ? r.source.cover?.messageId : undefined;
  t.match(coverId, /^<.+>$/);
  t.match(headers, /^Subject: Re: \[PATCH 0\/5\] toy: scale\(\) and a faster mul\(\)$/m);
  t.match(headers, /^To: Toy Author <toy@example\.org>$/m);
  t.match(headers, /^Cc: Toy Maintainer <maint@example\.org>, toy-list@example\.org$/m);
  t.ok(headers.split('\n').includes(`In-Reply-To: ${coverId ?? ''}`), 'answers the cover letter');
  t.ok(headers.split('\n').includes(`References: ${coverId ?? ''}`));
  t.notMatch(
    reply,
    /reply-1@example\.org|Why a faster mul/,
    "the reviewer's reply in the mbox is neither cover nor patch",
  );
  // Each finding sits under the hunk of the patch it is about, quoted.
  t.match(
    body,
    /On \[2\/5\] toy: call scale\(\) from main:\n\n> @@ .*\n(>.*\n)*> \+\tint s = scale\(2, 3\)\n(>.*\n)*\nThis breaks the build:\n {2}main\.c:\d+:\d+: error: expected/,
  );
  t.notMatch(body, /^> --$/m, 'the mail signature is not quoted as part of a hunk');
  t.match(
    body,
    /On \[3\/5\] .*:\n\n> @@ .*\n(>.*\n)*> \+.*fast_path.*\n(>.*\n)*\nThis adds a compiler warning:\n {2}util\.c:\d+:\d+: warning: unused variable 'fast_path'/,
  );
  t.match(body, /these tests fail that pass on the base:\n {2}toy\/mul/);
  // The WARNING names util.c:12: quoted under the last patch whose hunk covers that line.
  t.match(
    body,
    /On \[4\/5\] toy: rework mul\(\):\n\n> @@ .*\n(>.*\n)+\nThe kernel reports a problem it did not report on the base.*:\n\n {2}.*WARNING: CPU: 0 PID: 1 at util\.c:12 mul/,
  );
  t.match(body, /Latency regressions .*\n {2}toy\/latency p50: 1007 -> 1257 ns/);
  t.match(body, /Result: 5 problems\.\n$/);
}

/** The base's test results are cached per test setting, and a damaged cache is tested again. */
async function baseResultsAreCached(t: Test, root: string, opts: SeriesOptions, r: SeriesRecord): Promise<void> {
  // Same series, same base: same patchset hash; the base's test results come from the cache.
  const again = await runSeries({ ...opts, resultsDir: join(root, 'results2') }, toyTester());
  t.equal(again.patchsetHash, r.patchsetHash);
  t.equal(again.baseTests?.cached, true);
  // Another test setting: the base is tested again, not compared against results from elsewhere.
  const other = await runSeries({ ...opts, resultsDir: join(root, 'results3') }, toyTester({ timeoutMs: 120_000 }));
  t.equal(other.baseTests?.cached, undefined, 'other settings: base tested again');

  // A damaged base-results cache (not JSON, or JSON that is not run records) is ignored: the base
  // is tested again, and the cache rewritten.
  const baseCache = join(root, 'cache', 'series-base');
  const entries = await readdir(baseCache);
  t.equal(entries.length, 2, 'one cache entry per test setting');
  const [first = '', second = ''] = entries;
  await writeFile(join(baseCache, first), '[{"schema": "faultline.run/1", ');
  await writeFile(join(baseCache, second), JSON.stringify(Array.from({ length: 5 }, () => ({ runId: 'r' }))));
  for (const [i, tester] of [toyTester(), toyTester({ timeoutMs: 120_000 })].entries()) {
    const damaged = await runSeries({ ...opts, resultsDir: join(root, `damaged${i}`) }, tester);
    t.equal(damaged.baseTests?.cached, undefined, 'a damaged base cache: the base is tested again');
  }
  const mended = await runSeries({ ...opts, resultsDir: join(root, 'mended') }, toyTester());
  t.equal(mended.baseTests?.cached, true, 'and cached again');
}

t.test('an mbox from git format-patch: cover letter skipped, build break, new warning, regressions', async (t) => {
  const root = await scratch(t);
  process.env['FAULTLINE_CACHE'] = join(root, 'cache');
  const s = await createToySeries(root);
  const user = new Git(s.dir);
  const before = {
    head: await user.head(),
    branch: await user.currentBranch(),
    status: (await user.exec(['status', '--porcelain'])).stdout,
  };
  const tester = toyTester();
  const opts: SeriesOptions = { repo: s.dir, base: s.base, mbox: s.mbox, resultsDir: join(root, 'results'), repeat: 5 };
  const r = await runSeries(opts, tester);

  recordNamesEveryFinding(t, r);
  await reportNamesEveryFinding(t, root);
  await replyQuotesEveryFinding(t, root, r);

  const back = await readSeriesRecord(join(root, 'results', 'results.json'));
  t.equal(back.patchsetHash, r.patchsetHash);
  t.match(r.patchsetHash, /^[0-9a-f]{64}$/);
  const junit = seriesJunit(back);
  t.match(junit, /<testsuites name="faultline-series" tests="\d+" failures="5" errors="0" skipped="0"/);
  t.match(junit, /name="2\/5 build" time="0\.000"><failure message="main\.c:[^"]*" type="build"/);
  t.match(junit, /name="toy\/mul" time="0\.000"><failure message="new failure[^"]*" type="regression"/);

  t.same(
    {
      head: await user.head(),
      branch: await user.currentBranch(),
      status: (await user.exec(['status', '--porcelain'])).stdout,
    },
    before,
    'user checkout untouched',
  );
  t.notOk(await exists(join(root, 'results', 'worktree')), 'worktree removed');
  t.equal((await user.worktreeList()).length, 1);

  await baseResultsAreCached(t, root, opts, r);
});

t.test('cached base results are keyed on every setting that changes them', async (t) => {
  const kernelWith = (configHash: string) => ({ info: { source: 'build' as const, path: '/k/bzImage', configHash } });
  const build: KernelBuildSettings = { kconfig: ['minimal', 'uffd'], base: 'tinyconfig', progress: 'plain', jobs: 2 };
  const run: RunSettings = {
    suites: ['uffd'],
    backings: ['anon'],
    memMiB: 1024,
    smp: 2,
    accel: 'auto',
    guestRam: 'anon',
    timeoutSec: 1200,
    bootTimeoutSec: 180,
    resultsRoot: '/results/a',
    quick: true,
    keepVm: false,
    hugepages2m: 64,
    hugepages1g: 0,
  };
  const key = (
    o: {
      build?: Partial<KernelBuildSettings>;
      run?: Partial<RunSettings>;
      configHash?: string;
      base?: string;
      repeat?: number;
    } = {},
  ): string =>
    baseResultsKey({
      base: o.base ?? 'c0ffee',
      repeat: o.repeat ?? 1,
      build: new KernelBuilder({ ...build, ...o.build }).settings(),
      test: new GuestRunner({ ...run, ...o.run }).settings(kernelWith(o.configHash ?? 'cfg-1')),
    });
  const variants: [string, string][] = [
    ['config fragments', key({ build: { kconfig: ['minimal', 'uffd', 'debug'] } })],
    ['config base', key({ build: { base: 'defconfig' } })],
    ['kernel config hash', key({ configHash: 'cfg-2' })],
    ['base commit', key({ base: 'decaf' })],
    ['--repeat', key({ repeat: 3 })],
    ['--quick', key({ run: { quick: false } })],
    ['--mem', key({ run: { memMiB: 2048 } })],
    ['--smp', key({ run: { smp: 1 } })],
    ['--accel', key({ run: { accel: 'tcg' } })],
    ['--guest-ram', key({ run: { guestRam: 'shmem' } })],
    ['--timeout', key({ run: { timeoutSec: 600 } })],
    ['--boot-timeout', key({ run: { bootTimeoutSec: 300 } })],
    ['--cmdline', key({ run: { cmdline: 'panic_on_warn=1' } })],
    ['--hugepages', key({ run: { hugepages2m: 32 } })],
    ['--filter', key({ run: { filter: 'zeropage' } })],
    ['--backing', key({ run: { backings: ['shmem'] } })],
    ['--suite', key({ run: { suites: ['uffd-lat'] } })],
  ];
  const base = key();
  for (const [what, k] of variants) t.not(k, base, `${what} changes the key`);
  t.equal(new Set(variants.map(([, k]) => k)).size, variants.length, 'every variant has its own key');
  t.equal(key({ run: { resultsRoot: '/results/b' } }), base, 'where results are written does not');
  t.equal(key({ build: { jobs: 8, progress: 'off' } }), base, 'nor how fast the kernel is built');
  const reversed = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).reverse()) as T;
  t.equal(
    baseResultsKey({
      repeat: 1,
      base: 'c0ffee',
      test: new GuestRunner(reversed(run)).settings(kernelWith('cfg-1')),
      build: new KernelBuilder(reversed(build)).settings(),
    }),
    base,
    'the same settings in another key order: the same key',
  );
});

t.test("a patch that does not apply is named with git's reason", async (t) => {
  const root = await scratch(t);
  process.env['FAULTLINE_CACHE'] = join(root, 'cache');
  const s = await createToySeries(root);
  const tester = toyTester();
  const r = await runSeries(
    { repo: s.dir, base: s.conflictingBase, mbox: s.mbox, resultsDir: join(root, 'results'), noTests: true },
    tester,
  );
  t.equal(r.patches[0]?.apply.ok, false);
  t.match(r.patches[0]?.apply.reason, /patch failed: util\.c:\d+|patch does not apply/);
  t.equal(r.patches[1]?.apply.reason, 'not reached');
  t.equal(r.verdict, 'regressed');
  t.match(r.problems[0], /^patch 1\/5 "toy: add a scale\(\) helper" does not apply: /);
  const report = await readFile(join(root, 'results', 'report.txt'), 'utf8');
  t.match(report, /\[1\/5\] toy: add a scale\(\) helper: DOES NOT APPLY: .*util\.c/);
  t.match(report, /\[2\/5\] .*: DOES NOT APPLY \(not reached\)/);
});

t.test('a range on its own base keeps its commits; --each tests every patch', async (t) => {
  const root = await scratch(t);
  process.env['FAULTLINE_CACHE'] = join(root, 'cache');
  const s = await createToySeries(root);
  const tester = toyTester();
  const first = (await new Git(s.dir).log(`${s.base}..series`))[0]?.hash ?? '';
  const r = await runSeries(
    { repo: s.dir, range: `${s.base}..${first}`, resultsDir: join(root, 'results'), each: true, repeat: 2 },
    tester,
  );
  t.equal(r.patches.length, 1);
  t.equal(r.patches[0]?.commit, first, 'the original commit is tested, not a rebased copy');
  t.equal(r.tip, first);
  t.equal(r.messageIds.length, 0);
  t.equal(r.verdict, 'clean', r.problems.join('\n'));
  t.equal(r.patches[0]?.tests?.runs, 2);
  // "No regressions" says what it rests on: the test that ran and how often.
  t.match(
    await readFile(join(root, 'results', 'report.txt'), 'utf8'),
    /^Result: no regressions found \(sh -c \.\/app "\$FAULTLINE_RUN", 2 runs on base and every patch\)$/m,
  );
  const built = await runSeries(
    { repo: s.dir, range: `${s.base}..${first}`, resultsDir: join(root, 'built'), noTests: true },
    tester,
  );
  t.equal(built.verdict, 'clean');
  t.match(
    await readFile(join(root, 'built', 'report.txt'), 'utf8'),
    /^Result: no regressions found \(built only: no tests were run \(--no-tests\)\)$/m,
  );
  await t.rejects(
    runSeries({ repo: s.dir, range: 'nonsense', resultsDir: join(root, 'r2') }, tester),
    /--range 'nonsense' is not A\.\.B/,
  );
  await t.rejects(
    runSeries({ repo: s.dir, mbox: s.mbox, resultsDir: join(root, 'r3') }, tester),
    /--mbox needs --base REV/,
  );
});

t.test('a series a mailer sent quoted-printable or base64 is applied and quoted decoded, byte for byte', async (t) => {
  const root = await scratch(t);
  process.env['FAULTLINE_CACHE'] = join(root, 'cache');
  const s = await createToySeries(root);
  const user = new Git(s.dir);
  const bodyOf = (mail: string): string => mail.slice(mail.indexOf('\n\n') + 2);
  const run = async (mbox: string, name: string) => {
    const r = await runSeries(
      { repo: s.dir, base: s.base, mbox, resultsDir: join(root, name), noTests: true },
      toyTester(),
    );
    return { r, reply: await readFile(join(root, name, 'reply.eml'), 'utf8') };
  };
  // git's own diff of the series: every quoted hunk line must be one of its lines, unchanged.
  const diffLines = new Set(
    (await user.exec(['format-patch', '--stdout', `${s.base}..series`])).stdout.split('\n').filter((l) => l !== ''),
  );
  const plain = await run(s.mbox, 'plain');
  t.notMatch(await readFile(s.mbox, 'utf8'), /^Content-Transfer-Encoding:/m, "format-patch's mbox: 7bit by default");
  for (const encoding of ['8bit', 'quoted-printable', 'base64']) {
    const mbox = join(here, 'fixtures', `toy-series.${encoding}.mbox`);
    t.match(await readFile(mbox, 'utf8'), new RegExp(`^Content-Transfer-Encoding: ${encoding}$`, 'm'));
    const { r, reply } = await run(mbox, encoding);
    t.same(
      r.patches.map((p) => p.apply.ok),
      [true, true, true, true, true],
      `${encoding}: every patch applies`,
    );
    t.equal(
      await user.exec(['rev-parse', `${r.tip ?? 'missing'}^{tree}`]).then((x) => x.stdout.trim()),
      await user.exec(['rev-parse', 'series^{tree}']).then((x) => x.stdout.trim()),
      `${encoding}: the applied tip is the series' tree`,
    );
    // (Not their dates: git send-email dates each mail when it sends it.)
    const authorsAndMessages = (range: string) =>
      user.exec(['log', '--format=%an <%ae>%n%B', range]).then((x) => x.stdout);
    t.equal(
      await authorsAndMessages(`${s.base}..${r.tip ?? 'missing'}`),
      await authorsAndMessages(`${s.base}..series`),
      `${encoding}: the applied commits keep their authors and messages`,
    );
    t.equal(bodyOf(reply), bodyOf(plain.reply), `${encoding}: the same reply as for the 8bit mbox`);
    const quoted = reply
      .split('\n')
      .filter((l) => l.startsWith('>'))
      .map((l) => l.slice(2));
    t.ok(quoted.length > 10, `${encoding}: hunks are quoted`);
    t.same(
      quoted.filter((l) => !diffLines.has(l)),
      [],
      `${encoding}: every quoted line is a line of the diff, byte for byte`,
    );
    t.ok(
      quoted.includes(
        '+\tint fast_path = (a | b) <= 0xffff; /* both operands ≤ 16 bits: a * b == (a & 0xffff) * (b & 0xffff) */',
      ),
      `${encoding}: the long line with '=' and '≤' is quoted whole`,
    );
  }
});
