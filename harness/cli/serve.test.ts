/**
 * `faultline serve` through the real CLI (bin/faultline.js on the compiled dist/, as a user runs
 * it) on a real results root: the captured nightlies of harness/report/fixtures/results, indexed,
 * with the newest night's report written by `faultline export --html` as the nightly writes it.
 * Started on a free port, fetched over HTTP (files byte for byte, `/` to the newest report, a 404
 * for a path that is not there), then stopped with SIGTERM: it exits 0 and the port is closed.
 * Every step has a deadline.
 */
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyFixtureResults, loadNight, NIGHTS } from '../report/fixtures/nights.js';
import { PROJECT_ROOT } from '../util/project.js';

const BIN = join(PROJECT_ROOT, 'bin', 'faultline.js');
const COMPILED = join(PROJECT_ROOT, 'dist', 'harness', 'cli', 'serve.js');
// A Node start-up and a few reads: seconds, even at load average 25.
const START_DEADLINE_MS = 60_000;
const FETCH_DEADLINE_MS = 10_000;
const STOP_DEADLINE_MS = 10_000;

const { root, cleanup } = await copyFixtureResults();
t.teardown(cleanup);

t.before(() => {
  // The CLI runs from dist/: one older than the sources would test old code.
  if (
    !existsSync(COMPILED) ||
    statSync(COMPILED).mtimeMs < statSync(join(PROJECT_ROOT, 'harness/cli/serve.ts')).mtimeMs
  )
    throw new Error(`${COMPILED} is missing or older than its source: run npx tsc -p tsconfig.json first`);
});

const get = (url: string): Promise<Response> =>
  fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(FETCH_DEADLINE_MS) });

/** Files byte for byte, a 404 for a path that is not there, and a directory's listing. */
async function servesFiles(t: Test, url: string): Promise<void> {
  const first = await loadNight(root, NIGHTS.first);
  const run = first.runs[0];
  t.ok(run, 'the first night has runs');
  for (const file of [join(first.dir, 'nightly.json'), join(run?.dir ?? '', 'results.json')]) {
    const path = file.slice(root.length);
    const r = await get(new URL(path, url).href);
    t.same(
      [r.status, r.headers.get('content-type'), await r.text()],
      [200, 'application/json; charset=utf-8', await readFile(file, 'utf8')],
      `${path}: the file, byte for byte`,
    );
  }
  const missing = await get(new URL(`/nightly/${NIGHTS.first}/no-such-file.json`, url).href);
  t.same([missing.status, await missing.text()], [404, 'not found'], 'a path that is not there: 404');
  const listing = await get(new URL('/nightly/', url).href);
  t.same(
    [...(await listing.text()).matchAll(/<a href="(nightly-[^"]+)\/">/g)].map((m) => m[1]),
    Object.values(NIGHTS).sort(),
    'a directory lists its nights',
  );
}

t.test('serve a results root over HTTP, then stop on SIGTERM', async (t) => {
  const newest = join('nightly', NIGHTS.suites);
  const exported = await execa(process.execPath, [BIN, 'export', join(root, newest), '--html', '--results', root], {
    reject: false,
    timeout: START_DEADLINE_MS,
    stdin: 'ignore',
  });
  t.equal(exported.exitCode, 0, `the newest night's report written (${exported.stderr})`);

  const server = execa(process.execPath, [BIN, 'serve', root, '--port', '0'], {
    reject: false,
    timeout: START_DEADLINE_MS + 60_000,
    stdin: 'ignore',
  });
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  let out = '';
  const started = new Promise<string>((ok, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`no 'serving' line in ${START_DEADLINE_MS} ms: ${out}`)),
      START_DEADLINE_MS,
    );
    server.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const url = /^serving .* on (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(out)?.[1];
      if (url !== undefined) {
        clearTimeout(timer);
        ok(url);
      }
    });
    void server.then((r) => fail(new Error(`serve exited ${String(r.exitCode)} before serving: ${r.stderr}`)));
  });
  const url = await started;
  t.equal(
    out,
    `serving ${root} on ${url} (newest night: ${newest}/report/index.html) (Ctrl-C to stop)\n`,
    'says where, and the newest night',
  );

  const home = await get(url);
  t.same(
    [home.status, home.headers.get('location')],
    [302, `/${newest}/report/`],
    '/ sends the browser to the newest report',
  );
  const report = await get(new URL(`/${newest}/report/`, url).href);
  t.equal(report.status, 200);
  t.match(await report.text(), `<title>faultline nightly ${NIGHTS.suites}</title>`, 'the report of that night');

  await servesFiles(t, url);

  server.kill('SIGTERM');
  const stopped = await Promise.race([
    server,
    new Promise<undefined>((ok) => setTimeout(() => ok(undefined), STOP_DEADLINE_MS)),
  ]);
  t.ok(stopped, `stopped within ${STOP_DEADLINE_MS} ms of SIGTERM`);
  t.same([stopped?.exitCode, stopped?.signal], [0, undefined], 'exit 0: a stop is not a failure');
  const after = await get(url).then(
    () => 'answered',
    (e: unknown) => String((e as { cause?: { code?: unknown } }).cause?.code),
  );
  t.equal(after, 'ECONNREFUSED', 'nothing listens on the port any more');
});
