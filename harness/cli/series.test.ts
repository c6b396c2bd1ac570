import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelTester, seriesCommand, parseThreshold } from './series.js';
import { cli, parsedArgs } from '../bisect/fixtures/cli.js';
import { createToySeries } from '../series/fixtures/toy-series.js';
import { readSeriesRecord } from '../series/record.js';
import { SHIPPED_KNOWN_ISSUES } from '../results/known-issues.js';

t.test('faultline series on an mbox exits 1 and prints the reviewer reply', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-cli-series-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  process.env['FAULTLINE_CACHE'] = join(root, 'cache');
  const s = await createToySeries(root);
  const results = join(root, 'results');
  const r = await cli(seriesCommand, [
    'series',
    '--kernel-src',
    s.dir,
    '--base',
    s.base,
    '--mbox',
    s.mbox,
    '--build-cmd',
    'make --no-print-directory',
    '--test-cmd',
    './app "$FAULTLINE_RUN"',
    '--repeat',
    '3',
    '--results-dir',
    results,
  ]);
  t.equal(r.exitCode, 1);
  t.match(r.out, /^faultline series: 5 patches from /);
  t.match(r.out, /\[2\/5\] toy: call scale\(\) from main: BUILD BROKEN: main\.c:/);
  t.match(r.out, /Result: REGRESSED/);
  const rec = await readSeriesRecord(join(results, 'results.json'));
  t.equal(rec.messageIds.length, 5);
  await t.rejects(cli(seriesCommand, ['series', '--kernel-src', s.dir, '--mbox', s.mbox]), /--mbox needs --base REV/);
  await t.rejects(
    cli(seriesCommand, ['series', '--kernel-src', s.dir, '--range', 'a..b', '--threshold', 'lots']),
    /--threshold 'lots' is not a relative change/,
  );
});

t.test('thresholds', async (t) => {
  t.equal(parseThreshold('5%'), 0.05);
  t.equal(parseThreshold('0.1'), 0.1);
});

t.test("series tests on faultline run's backings, the default bisect --splat uses too", async (t) => {
  const a = await parsedArgs(seriesCommand, ['series', '--kernel-src', '/k', '--base', 'b', '--mbox', 'x.mbox']);
  t.equal(
    kernelTester(a, '/tmp/results').runner.describe(),
    'faultline run: suite uffd, all tests, backings hugetlb,shmem,anon, --quick, known issues from debian.yaml',
  );
  const narrowed = await parsedArgs(seriesCommand, [
    'series',
    '--kernel-src',
    '/k',
    '--range',
    'a..b',
    '--backing',
    'shmem',
    '--filter',
    'wp-fork',
  ]);
  t.equal(
    kernelTester(narrowed, '/tmp/results').runner.describe(),
    "faultline run: suite uffd, tests matching 'wp-fork', backings shmem, --quick, known issues from debian.yaml",
  );
  // As `faultline run`: the shipped list unless --no-known-issues, then each --known-issues FILE.
  const own = '/srv/ci/known-issues.yaml';
  const both = await parsedArgs(seriesCommand, [
    'series',
    '--kernel-src',
    '/k',
    '--range',
    'a..b',
    '--known-issues',
    own,
  ]);
  t.same(kernelTester(both, '/tmp/results').runner.settings(undefined)['knownIssues'], [SHIPPED_KNOWN_ISSUES, own]);
  const none = await parsedArgs(seriesCommand, [
    'series',
    '--kernel-src',
    '/k',
    '--range',
    'a..b',
    '--no-known-issues',
  ]);
  t.equal(kernelTester(none, '/tmp/results').runner.settings(undefined)['knownIssues'], undefined);
  t.match(kernelTester(none, '/tmp/results').runner.describe(), /--quick$/, 'and says so');
});
