/**
 * The nightly report of real captured nights (harness/report/fixtures/) in a real headless
 * browser: Debian's chromium through playwright-core. It checks what a person sees: the latency
 * table in human units, one chart per case, kernels side by side, links between nights, no
 * console errors or failed requests, from file:// and from `faultline serve`; and the page of
 * `faultline compare --html`. Screenshots are kept as test artefacts (.tap/artifacts/).
 */
import t, { type Test } from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { finalizeNightly } from '../nightly/finalize.js';
import { exists } from '../util/fsutil.js';
import { PROJECT_ROOT } from '../util/project.js';
import { median } from '../stats/descriptive.js';
import { copyFixtureResults, FIXTURE_RUNS, loadNight, NIGHTS } from './fixtures/nights.js';
import { writeNightlyRecord, type NightlyJobState, type NightlyRecord } from '../results/nightly.js';
import { readRunRecord, verdictOf } from '../results/record.js';
import type { Backing, RunRecord } from '../results/types.js';
import { applyKnownIssues, parseKnownIssues, readKnownIssues, SHIPPED_KNOWN_ISSUES } from '../results/known-issues.js';
import { serveDirectory } from './serve.js';
import { cli } from '../bisect/fixtures/cli.js';
import { compareCommand } from '../cli/compare.js';
import { NIGHTLY_VIEWS } from './views.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTEFACTS = join(PROJECT_ROOT, '.tap', 'artifacts');

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    timeout: 60_000,
  });
}

/** Load a page and collect every console error, page error and failed request. */
async function load(page: Page, url: string): Promise<string[]> {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
  return problems;
}

// Chromium is part of the setup (scripts/setup.sh): a missing one fails here, it never skips.
t.test('chromium is installed', async (t) => {
  t.ok(await exists(CHROMIUM), `${CHROMIUM} (scripts/setup.sh installs Debian's chromium)`);
});

const fx = await copyFixtureResults();
t.teardown(fx.cleanup);
const root = fx.root;
// As `faultline nightly` ends each night: compare with the night before, write junit and the report.
const reports = new Map<string, string>();
for (const id of [NIGHTS.first, NIGHTS.second, NIGHTS.kernels, NIGHTS.suites]) {
  const n = await loadNight(root, id);
  const done = await finalizeNightly(n.dir, n.record, {
    resultsRoot: root,
    views: NIGHTLY_VIEWS,
    compare: true,
    index: false,
    print: false,
  });
  reports.set(id, done.reportPath);
}
const second = await loadNight(root, NIGHTS.second);

/** What the fixture says the report must show, computed from results.json independently of the report code. */
function expectedFromRecords(): { cases: number; firstTouchHugetlbNs: number; wpAsyncHugetlbNs: number } {
  const ids = new Set<string>();
  const p50 = (id: string): number =>
    median(
      second.runs.flatMap((r) =>
        r.record.subtests
          .filter((s) => s.id === id)
          .map((s) => s.metrics?.find((m) => m.name === 'total_p50')?.value ?? NaN),
      ),
    );
  for (const r of second.runs)
    for (const s of r.record.subtests) if (s.metrics?.some((m) => m.name.startsWith('total_ns_log2_'))) ids.add(s.id);
  return {
    cases: ids.size,
    firstTouchHugetlbNs: p50('uffd-lat/first-touch/hugetlb'),
    wpAsyncHugetlbNs: p50('uffd-lat/wp-async/hugetlb'),
  };
}

const browser = Promise.resolve().then(launch);
t.teardown(async () => (await browser).close());

async function checkLatency(t: Test, page: Page): Promise<void> {
  const want = expectedFromRecords();
  t.equal(want.cases, 18, 'the fixture night has 18 uffd-lat cases with histograms (8 hugetlb, 10 shmem)');
  const table = page.locator('table.latency.glance').first();
  t.ok(await table.isVisible(), 'the latency table is visible');
  const first = table.locator('tbody tr').first();
  const cells = (await first.locator('td').allInnerTexts()).map((s) => s.trim());
  t.same(
    cells.slice(0, 4),
    ['hugetlb', 'first touch (no uffd)', '–', '2 × 50'],
    'first row: backing, operation, handler, runs x samples',
  );
  t.equal(
    cells[4],
    `${(want.firstTouchHugetlbNs / 1e6).toFixed(1)} ms`,
    'its p50 in ms (TCG), the median of the two runs',
  );
  const wpAsync = table.locator('tr[data-case="uffd-lat/wp-async/hugetlb"] td').nth(4);
  t.equal(
    (await wpAsync.innerText()).trim(),
    `${(want.wpAsyncHugetlbNs / 1e3).toFixed(1)} µs`,
    'WP_ASYNC on hugetlb in µs',
  );
  const minor = table.locator('tr[data-case="uffd-lat/minor-continue/hugetlb/blocking"]');
  t.match(
    await minor.innerText(),
    /MINOR\+CONTINUE\s+blocking\s+2 × 50\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+ ms\s+[-−+×÷\d.%]+/,
    'MINOR+CONTINUE on hugetlb: p50, p90, the baseline night and the change in one row',
  );
  const head = await table.locator('thead').innerText();
  t.notMatch(head, /p99/, 'p99 is left out: 50 samples per run cannot support it');
  t.match(
    await page.locator('#latency').innerText(),
    /Left out: p99 \(needs 100 samples per run; these runs have 50\)/,
  );
  t.equal(await page.locator('table.latency.glance tbody tr').count(), want.cases, 'one row per case');
  t.equal(await page.locator('svg.spark').count(), want.cases, 'a trend sparkline per case (two nights)');
  t.equal(await page.locator('#distributions svg.dist').count(), want.cases, 'one distribution chart per case');
  const text = (await page.locator('body').textContent()) ?? '';
  t.notMatch(text, /_log2_|\de\+\d/, 'no histogram bucket rows and no exponents anywhere');
}

async function checkReport(t: Test, url: string): Promise<void> {
  const page = await (await browser).newPage({ viewport: { width: 1400, height: 1300 } });
  const problems = await load(page, url);
  t.same(problems, [], 'no console errors, page errors or failed requests');
  t.equal(await page.title(), `faultline nightly ${NIGHTS.second}`);
  t.equal(await page.locator('#matrix td.cell').count(), 4, '1 kernel x 2 backings x 2 suites');
  t.same(await page.locator('#matrix td.cell').evaluateAll((els) => els.map((e) => e.getAttribute('data-state'))), [
    'pass',
    'pass',
    'pass',
    'pass',
  ]);
  await checkLatency(t, page);
  t.match(await page.locator('#regressions').textContent(), new RegExp(`Changes since ${NIGHTS.first}`));
  await page.close();
}

t.test("the second night of the issue's plan, from file://", async (t) => {
  const path = reports.get(NIGHTS.second) ?? '';
  await checkReport(t, pathToFileURL(path).href);
  const page = await (await browser).newPage({ viewport: { width: 1400, height: 1300 } });
  await load(page, pathToFileURL(path).href);
  await page.locator('#latency').scrollIntoViewIfNeeded();
  await mkdir(ARTEFACTS, { recursive: true });
  const shot = join(ARTEFACTS, 'nightly-report.png');
  await page.screenshot({ path: shot });
  t.ok(await exists(shot), `screenshot kept: ${shot}`);
  await page.close();
});

t.test('two kernels side by side', async (t) => {
  const page = await (await browser).newPage({ viewport: { width: 1400, height: 1300 } });
  t.same(await load(page, pathToFileURL(reports.get(NIGHTS.kernels) ?? '').href), []);
  const table = page.locator('#kernels table.sidebyside').first();
  t.match(
    await table.locator('thead').innerText(),
    /debian-6\.1[\s\S]*debian-6\.12[\s\S]*debian-6\.12 against debian-6\.1/,
  );
  const minor = await table.locator('tr[data-case="uffd-lat/minor-continue/hugetlb/blocking"]').innerText();
  t.match(
    minor,
    /MINOR\+CONTINUE\s+blocking\s+2 × 50\s+[\d.]+ ms\s+[\d.]+ ms\s+2 × 50\s+[\d.]+ ms\s+[\d.]+ ms/,
    'both kernels in one row',
  );
  // 6.1 ran on hpet, 6.12 on tsc: the row says the change is invalid instead of printing one.
  t.match(minor, /invalid: guests on different clocksources \(hpet → tsc\)\s*$/, 'no change across clocksources');
  t.match(
    await page.locator('#kernels p.muted').nth(1).innerText(),
    /debian-6\.1: kernel 6\.1\.0-57-amd64, clocksource hpet · debian-6\.12: kernel 6\.12\.117\+deb12-amd64, clocksource tsc/,
  );
  t.match(
    await table.locator('tr[data-case="uffd-lat/wp-async/hugetlb"]').innerText(),
    /not run/,
    '6.1 has no WP_ASYNC (6.7+)',
  );
  t.ok((await page.locator('#kernels svg.dist').count()) >= 16, 'distributions of both kernels overlaid');
  await page.close();
});

t.test('faultline compare --html of the two nights', async (t) => {
  const out = join(root, 'compare.html');
  const r = await cli(compareCommand, [
    'compare',
    join(root, 'nightly', NIGHTS.first),
    join(root, 'nightly', NIGHTS.second),
    '--results',
    root,
    '--html',
    '--out',
    out,
  ]);
  t.equal(r.exitCode, 0);
  const page = await (await browser).newPage({ viewport: { width: 1400, height: 1300 } });
  t.same(await load(page, pathToFileURL(out).href), [], 'no console errors, page errors or failed requests');
  const first = (await page.locator('table.sidebyside tbody tr').first().locator('td').allInnerTexts()).map((x) =>
    x.trim(),
  );
  t.same(first.slice(0, 3), ['hugetlb', 'first touch (no uffd)', '–']);
  t.match(first[4] ?? '', /^[\d.]+ (µs|ms)$/, 'A in human units');
  t.equal(await page.locator('#distributions svg.dist').count(), expectedFromRecords().cases, 'one overlay per case');
  await mkdir(ARTEFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTEFACTS, 'compare.png') });
  await page.close();
});

/** A copy of a captured night plus one job whose run directory (under dir) holds rec; finalized. */
async function withOneMoreJob(
  night: NightlyRecord,
  dir: string,
  nightlyId: string,
  o: { runDir: string; rec: RunRecord; backing: Backing; suite: string },
): Promise<{ reportPath: string; job: NightlyJobState }> {
  const key = `debian-6.12+debian+anon+${o.backing}+${o.suite}`;
  const job: NightlyJobState = {
    id: `${key}+r1`,
    key,
    kernel: 'debian-6.12',
    config: 'debian',
    buildKey: 'debian:6.12',
    guestRam: 'anon',
    backing: o.backing,
    suite: o.suite,
    rep: 1,
    timeoutSec: 600,
    state: 'done',
    attempts: 1,
    runDir: o.runDir,
    verdict: o.rec.verdict,
    durationMs: o.rec.durationMs,
  };
  const record: NightlyRecord = { ...night, nightlyId, jobs: [...night.jobs, job] };
  await writeNightlyRecord(dir, record);
  const done = await finalizeNightly(dir, record, {
    resultsRoot: root,
    views: NIGHTLY_VIEWS,
    compare: false,
    index: false,
    print: false,
  });
  return { reportPath: done.reportPath, job };
}

t.test('a flaky subtest: its own colour in the matrix and its own list', async (t) => {
  // The second night plus one job whose results.json is the real run of a test program that
  // failed and passed on its retry (fixtures/runs/flaky-fails-once), in a night of its own.
  const src = await loadNight(root, NIGHTS.second);
  const dir = join(root, 'nightly', 'with-flaky');
  await cp(src.dir, dir, { recursive: true, filter: (p) => !p.includes('/report') });
  const runDir = join('runs', 'flaky-fails-once');
  await cp(FIXTURE_RUNS.flaky, join(dir, runDir), { recursive: true });
  const rec = await readRunRecord(join(dir, runDir, 'results.json'));
  const done = await withOneMoreJob(src.record, dir, 'with-flaky', { runDir, rec, backing: 'anon', suite: 'program' });
  const job = done.job;
  const page = await (await browser).newPage();
  t.same(await load(page, pathToFileURL(done.reportPath).href), []);
  const cell = page.locator('#matrix td.cell[data-state="flaky"]');
  t.equal(await cell.count(), 1, 'the anon/program cell, and only it');
  t.equal(
    await cell.evaluate((el) => getComputedStyle(el).backgroundColor),
    'rgb(251, 240, 168)',
    'in the flaky colour',
  );
  t.equal(await cell.locator('a').getAttribute('href'), '#flaky', 'pointing at the flaky list, not at a failure');
  t.match(await page.locator('#summary').innerText(), /1 flaky/);
  const row = (await page.locator('#flaky-table tbody tr').allInnerTexts()).map((x) =>
    x.split('\t').map((c) => c.trim()),
  );
  t.same(row, [
    [job.id, 'fails-once/anon', 'fail → pass', 'exit 1: first run: failing on purpose', '1: fail · 2: pass'],
  ]);
  t.match(await page.locator('#failures + p').innerText(), /Every job passed/, 'not a failure');
  await mkdir(ARTEFACTS, { recursive: true });
  await page.locator('#matrix').screenshot({ path: join(ARTEFACTS, 'flaky-matrix.png') });
  await page.locator('#flaky').screenshot({ path: join(ARTEFACTS, 'flaky-list.png') });
  t.match(await page.locator('#latency').innerText(), /No baseline night/, 'a night without a baseline says so once');
  t.notMatch(await page.locator('#latency thead').first().innerText(), /change/);
  await page.locator('#flaky-table a', { hasText: '1: fail' }).click();
  await page.waitForLoadState('load');
  t.match(await page.locator('body').innerText(), /first run: failing on purpose/, "the failed attempt's output");
  await page.close();
});

t.test('known issues: their reports and culprits, where they occurred, fixed? when their tests passed', async (t) => {
  // The second night plus one job whose results.json is the real `run --suite mm --backing
  // hugetlb,shmem` on Debian 6.12.118 (four failures), marked with the shipped known issues and
  // one more issue naming memfd_test, which ran and passed on shmem.
  const src = await loadNight(root, NIGHTS.second);
  const dir = join(root, 'nightly', 'with-known-issues');
  await cp(src.dir, dir, { recursive: true, filter: (p) => !p.includes('/report') });
  const rec = await readRunRecord(
    join(PROJECT_ROOT, 'harness', 'results', 'fixtures', 'known-issues', 'mm-hugetlb-shmem.6.12.118-tcg.json'),
  );
  const url = 'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/tree/tools/testing/selftests/memfd';
  const memfdOnShmem = parseKnownIssues(
    `issues:\n  - id: memfd-shmem\n    title: memfd_test on shmem\n    report: ${url}\n    culprit: harness\n    match: { tests: [memfd_test] }\n`,
    'inline.yaml',
  );
  applyKnownIssues(rec, [...(await readKnownIssues([SHIPPED_KNOWN_ISSUES])), ...memfdOnShmem]);
  rec.verdict = verdictOf(rec);
  const runDir = join('runs', 'mm-known-issues');
  await mkdir(join(dir, runDir), { recursive: true });
  await writeFile(join(dir, runDir, 'results.json'), JSON.stringify(rec));
  const done = await withOneMoreJob(src.record, dir, 'with-known-issues', {
    runDir,
    rec,
    backing: 'hugetlb',
    suite: 'mm',
  });
  const job = done.job;
  const page = await (await browser).newPage();
  t.same(await load(page, pathToFileURL(done.reportPath).href), []);
  const rows = (await page.locator('#known-issues-table tbody tr').allInnerTexts()).map((x) =>
    x.split('\t').map((c) => c.trim()),
  );
  const at = (w: string): string => `${job.id}: ${w}`;
  t.same(
    rows.map(([issue, , culprit, state, where]) => [issue?.split('\n')[0], culprit, state, where?.split('\n')]),
    [
      [
        'debian-6.12-khugepaged-ksft-skip',
        'test',
        'present',
        [at('khugepaged/mm.khugepaged'), at('khugepaged/mm.khugepaged_-s_2')],
      ],
      ['debian-6.12-memfd-hugetlbfs-seal-exec', 'code', 'present', [at('memfd_test hugetlbfs')]],
      ['debian-6.12-hugetlb-read-hwpoison-sigbus', 'test', 'present', [at('hugetlb-read-hwpoison')]],
      ['memfd-shmem', 'harness', 'fixed?', [at('memfd_test')]],
    ],
    'each issue, its culprit, and the subtests it matched in this run',
  );
  t.match(rows[1]?.[1], /^faultline issue 22: memfd_test hugetlbfs: fchmod/, 'a report subject as text');
  // Since when: this plan's history holds no earlier night with them, so tonight's (its date is
  // its first run's, a job of the night copied).
  const tonight = [src.record.startedAt.slice(0, 10), 'with-known-issues'];
  t.same(
    rows.map((r) => r[5]?.split('\n')),
    [tonight, tonight, tonight, ['']],
    'since the night they first occurred; nothing for a fixed? one',
  );
  t.equal(
    await page.locator('#known-issues-table a').getAttribute('href'),
    url,
    'a report URL as a link, the only one',
  );
  t.equal(await page.locator('a[href="#known-issues"]').count(), 1, 'linked from the top of the page');
  t.match(await page.locator('#failures + p').innerText(), /Every job passed/, 'known failures fail no job');
  await mkdir(ARTEFACTS, { recursive: true });
  await page.locator('#known-issues').screenshot({ path: join(ARTEFACTS, 'known-issues.png') });
  await page.close();
});

t.test('faultline serve: the newest night at /, links between nights', async (t) => {
  const srv = await serveDirectory(root, { port: 0 });
  t.teardown(() => srv.close());
  t.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await (await browser).newPage();
  t.same(await load(page, srv.url), []);
  t.equal(new URL(page.url()).pathname, `/nightly/${NIGHTS.suites}/report/`, '/ shows the newest night');
  await page.goto(`${srv.url}nightly/${NIGHTS.second}/report/`);
  await checkReport(t, page.url());
  await page.locator('a[rel="prev"]').click();
  await page.waitForLoadState('load');
  t.equal(await page.title(), `faultline nightly ${NIGHTS.first}`, 'previous night');
  t.equal(
    await page.locator('a[rel="next"]').getAttribute('href'),
    `../../${NIGHTS.second}/report/index.html`,
    'and back',
  );
  await page.locator('nav.nights a', { hasText: 'all nights' }).click();
  await page.waitForLoadState('load');
  t.equal(await page.locator('#nights tbody tr').count(), 4, 'every night listed');
  // Path escapes and methods other than GET/HEAD: serve.test.ts, by exact status on a live server.
  await page.close();
});
