/**
 * `faultline compare A B --html` on real captured nights and runs (harness/report/fixtures/):
 * the text comparison, the exit code, and the latency view of both sides written as HTML.
 */
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../bisect/fixtures/cli.js';
import { FIXTURE_RESULTS, FIXTURE_RUNS, loadNight, NIGHTS } from '../report/fixtures/nights.js';
import { compareCommand } from './compare.js';

const out = await mkdtemp(join(tmpdir(), 'faultline-compare-'));
t.teardown(() => rm(out, { recursive: true, force: true }));

t.test('two nights of one plan', async (t) => {
  const html = join(out, 'nights.html');
  const r = await cli(compareCommand, [
    'compare',
    join(FIXTURE_RESULTS, 'nightly', NIGHTS.first),
    join(FIXTURE_RESULTS, 'nightly', NIGHTS.second),
    '--results',
    FIXTURE_RESULTS,
    '--html',
    '--out',
    html,
  ]);
  t.equal(r.exitCode, 0, 'nothing regressed');
  t.match(r.out, /compare: 0 regressions, 0 new splats, 0\/\d+ metrics worse/);
  const page = await readFile(html, 'utf8');
  t.match(page, new RegExp(`<h1>faultline compare: A ${NIGHTS.first} → B ${NIGHTS.second}</h1>`));
  t.equal(page.match(/<table class="latency sidebyside"/g)?.length, 1, 'one kernel, config and guest RAM');
  t.equal(page.match(/<tr data-case="uffd-lat\//g)?.length, 18, 'every case of both nights in one row');
  t.equal(page.match(/<svg class="dist"/g)?.length, 18, 'a distribution per case');
  t.match(
    page,
    /<tr data-case="uffd-lat\/minor-continue\/hugetlb\/blocking"><td>hugetlb<\/td><td class="op">MINOR\+CONTINUE<\/td><td class="nowrap">blocking<\/td><td class="num"[^>]*>2 × 50<\/td><td class="num">[\d.]+ ms<\/td>/,
  );
  t.notMatch(page, /_log2_|\de\+\d/, 'no bucket rows, no exponents');
  t.match(page, /repeat 4 or more times to have changes flagged/, 'says why nothing can be flagged with 2 runs a side');
});

t.test('one run of each kernel', async (t) => {
  const kernels = await loadNight(FIXTURE_RESULTS, NIGHTS.kernels);
  const run = (k: string): string =>
    kernels.runs.find(
      (r) => r.job.kernel === k && r.job.suite === 'uffd-lat' && r.job.backing === 'hugetlb' && r.job.rep === 1,
    )?.dir ?? '';
  const html = join(out, 'kernels.html');
  const r = await cli(compareCommand, [
    'compare',
    run('debian-6.1'),
    run('debian-6.12'),
    '--results',
    FIXTURE_RESULTS,
    '--html',
    '--out',
    html,
  ]);
  // No subtest fails on either side (6.1 skips WP_ASYNC, 6.12 passes it), no splat, and one run a
  // side cannot make a latency change significant (the smallest two-sided p of 1 vs 1 is 1).
  t.equal(r.exitCode, 0, 'nothing regressed');
  t.match(r.out, /compare: 0 regressions, 0 new splats, 0\/\d+ metrics worse/);
  const page = await readFile(html, 'utf8');
  t.match(
    page,
    /<th colspan="\d+" class="side">6\.1\.0-57-amd64<\/th><th colspan="\d+" class="side">6\.12\.117\+deb12-amd64<\/th>/,
    'the sides are named by their kernels',
  );
  t.match(page, /<tr data-case="uffd-lat\/wp-async\/hugetlb">.*not run/, '6.1 has no WP_ASYNC');
  t.match(page, /<td class="num"[^>]*>1 × 50<\/td>/, 'one run a side');
  // 6.1 ran on hpet and 6.12 on tsc: no latency change between them is a finding.
  t.match(page, /A \(before\): run [^<]* · kernel 6\.1\.0-57-amd64 · TCG · guest clocksource hpet<br>/);
  t.match(page, /B \(after\): run [^<]* · kernel 6\.12\.117\+deb12-amd64 · TCG · guest clocksource tsc<\/p>/);
  const rows = page.match(/<tr data-case="[^"]*">.*?<\/tr>/g) ?? [];
  const onBoth = rows.filter((r) => !r.includes('not run'));
  t.equal(onBoth.length, 7, 'first touch, MISSING+COPY, MINOR+CONTINUE and WP (both handlers) on both');
  for (const row of onBoth)
    t.match(
      row,
      /<td class="invalid" colspan="3">invalid: guests on different clocksources \(hpet → tsc\)<\/td><\/tr>$/,
      'the change says it is invalid',
    );
  t.notMatch(onBoth.join(''), />[×÷][\d.]+<|>[+−][\d.]+%/, 'and prints no change');
  t.match(r.out, /INVALID: timings not compared \(1\):\n {2}guest_ram=anon: \d+ metric\(s\), guests on different/);
  t.match(page, /<h3>Invalid: timings not compared<\/h3>/, 'the changes section says so too');
});

t.test('a kernel panic that was not there before: exit 1; the other way round: exit 0', async (t) => {
  const worse = await cli(compareCommand, ['compare', FIXTURE_RUNS.flaky, FIXTURE_RUNS.panic, '--results', out]);
  t.equal(worse.exitCode, 1, 'B panicked, A did not');
  t.match(worse.out, /NEW SPLATS \(1\):\n {2}\[guest_ram=anon\] Kernel panic - not syncing: sysrq triggered crash/);
  const better = await cli(compareCommand, ['compare', FIXTURE_RUNS.panic, FIXTURE_RUNS.flaky, '--results', out]);
  t.equal(better.exitCode, 0, 'the panic went away; the subtests of both that ran passed');
  t.match(better.out, /compare: 0 regressions, 0 new splats/);
});

t.test('bad input fails in one line, exit 2', async (t) => {
  await t.rejects(cli(compareCommand, ['compare', '/nonexistent-a', '/nonexistent-b']), {
    exitCode: 2,
    message: /^'\/nonexistent-a' is neither a run\/nightly directory nor a run id under results: pass a directory/,
  });
  await t.rejects(cli(compareCommand, ['compare', FIXTURE_RUNS.flaky, FIXTURE_RUNS.panic, '--alpha', '2']), {
    exitCode: 2,
    message: '--alpha must be in (0, 1), got 2',
  });
});
