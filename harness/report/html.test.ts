/**
 * The HTML report in a real headless browser (Debian's chromium through playwright-core): it
 * loads without console errors or failed requests, from file:// and from `faultline serve`, and
 * shows the matrix with the right colours.
 */
import t, { type Test } from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parsePlan } from '../nightly/plan.js';
import { runNightly, type NightlyOptions } from '../nightly/nightly.js';
import type { KernelPreparer } from '../nightly/kernels.js';
import { fixtureExecutor, SAMPLE_SPLAT } from '../nightly/fixtures/records.js';
import { serveDirectory } from './serve.js';
import { exists } from '../util/fsutil.js';
import { writeRunOutputs } from '../results/writers.js';
import { summarize } from '../results/record.js';
import type { Job } from '../nightly/jobs.js';

const CHROMIUM = '/usr/bin/chromium';

const plan = parsePlan(
  `name: html
kernels:
  - name: debian-6.12
    debian: "6.12"
  - name: debian-6.1
    debian: "6.1"
backings: [anon, shmem, hugetlb]
suites: [uffd]
repeat: 3
`,
  'html.yaml',
);
const noKernelWork: KernelPreparer = async (k, _c, buildKey) => ({ buildKey, spec: { kind: 'debian', series: k.kind === 'debian' ? k.series : '6.12' } });

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
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

t.test('nightly report in headless chromium', { skip: (await exists(CHROMIUM)) ? false : `${CHROMIUM} missing: apt-get install -y chromium` }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-html-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const base: NightlyOptions = { planFile: 'html.yaml', plan, resultsRoot: root, parallel: 2, kernelPreparer: noKernelWork, progress: false, print: false };
  // Three nights for the trend plots; the last one has a new kernel, a failing cell, a flaky cell, a splat and an infra error.
  for (let n = 1; n <= 2; n++) await runNightly({ ...base, nightlyId: `night${n}`, executor: fixtureExecutor({ night: n, packageVersion: '6.12.40-1' }) });
  const failing = (j: Job): boolean => j.kernel === 'debian-6.12' && j.backing === 'hugetlb';
  const flaky = (j: Job): boolean => j.kernel === 'debian-6.1' && j.backing === 'shmem' && j.rep === 2;
  const inner = fixtureExecutor({ night: 3, packageVersion: '6.12.41-1', latencyMedianNs: 15_000, failing: (j) => failing(j) || flaky(j) });
  const last = await runNightly({
    ...base,
    nightlyId: 'night3',
    executor: async (job, ctx) => {
      const out = await inner(job, ctx);
      if (job.kernel === 'debian-6.1' && job.backing === 'anon') {
        out.record.splats = [SAMPLE_SPLAT];
        out.record.verdict = 'fail';
        await writeRunOutputs(out.dir, out.record);
      }
      if (job.kernel === 'debian-6.1' && job.backing === 'hugetlb') {
        // A guest that hangs every time: infra error after the retry.
        out.record = { ...out.record, subtests: [], infraError: 'guest stopped answering during uffd-unit-tests.hugetlb', verdict: 'error', summary: summarize([]) };
        await writeRunOutputs(out.dir, out.record);
      }
      return out;
    },
  });
  t.ok(await exists(last.reportPath));

  const browser = await launch();
  t.teardown(() => browser.close());

  const check = async (t: Test, url: string): Promise<void> => {
    const page = await browser.newPage();
    const problems = await load(page, url);
    t.same(problems, [], 'no console errors, page errors or failed requests');
    t.match(await page.title(), /faultline nightly night3/);
    const matrix = page.locator('#matrix');
    t.ok(await matrix.isVisible(), 'the matrix is visible');
    // 2 kernels x 3 backings x 1 suite
    t.equal(await page.locator('#matrix td.cell').count(), 6);
    const state = async (row: number, col: number): Promise<string | null> => page.locator(`#matrix tbody tr:nth-child(${row}) td.cell`).nth(col).getAttribute('data-state');
    t.equal(await state(1, 0), 'pass', 'debian-6.12 anon passes');
    t.equal(await state(1, 2), 'fail', 'debian-6.12 hugetlb fails');
    t.equal(await state(2, 0), 'fail', 'debian-6.1 anon splats on every repetition');
    t.equal(await state(2, 1), 'flaky', 'debian-6.1 shmem failed once in three');
    t.equal(await state(2, 2), 'error', 'debian-6.1 hugetlb is an infrastructure error');
    const failBg = await page.locator('#matrix td.c-fail').first().evaluate((el) => getComputedStyle(el).backgroundColor);
    const passBg = await page.locator('#matrix td.c-pass').first().evaluate((el) => getComputedStyle(el).backgroundColor);
    t.not(failBg, passBg, 'cells are coloured by state');
    t.match(await page.locator('#failures').textContent(), /Failures/);
    t.match(await page.locator('body').textContent(), /move_pages/, 'the splat excerpt is shown');
    t.match(await page.locator('body').textContent(), /guest stopped answering/);
    t.ok((await page.locator('svg.hist').count()) > 0, 'latency histograms rendered');
    t.ok((await page.locator('svg.trend rect').count()) >= 3, 'status trend has the three nights');
    t.ok((await page.locator('svg.spark').count()) > 0, 'metric trend lines rendered');
    t.match(await page.locator('#regressions').textContent(), /Changes since night2/);
    await page.close();
  };

  await t.test('from file://', (t) => check(t, pathToFileURL(last.reportPath).href));
  await t.test('from faultline serve on 127.0.0.1', async (t) => {
    const srv = await serveDirectory(root, { port: 0 });
    t.teardown(() => srv.close());
    t.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    await check(t, `${srv.url}nightly/night3/report/`);
    const res = await fetch(`${srv.url}..%2f..%2fetc/passwd`);
    t.not(res.status, 200, 'no escape from the served directory');
  });
});
