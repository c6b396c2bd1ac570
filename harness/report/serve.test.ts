/**
 * `faultline serve` over real HTTP: a path out of the served directory is refused by the guard
 * (a 403 for a file that exists outside, a 404 for one that does not: never its content, never
 * a 500), the server still answers afterwards, and nothing but GET and HEAD is accepted.
 */
import t from 'tap';
import { request } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDirectory } from './serve.js';

const dir = await mkdtemp(join(tmpdir(), 'faultline-serve-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const root = join(dir, 'served');
await mkdir(join(root, 'run'), { recursive: true });
await writeFile(join(root, 'run', 'results.json'), '{"kept":true}\n');
// Beside the served directory: what an escape would reach.
await writeFile(join(dir, 'secret.txt'), 'outside\n');
await symlink(join(dir, 'secret.txt'), join(root, 'run', 'link-out'));

const srv = await serveDirectory(root, { port: 0 });
t.teardown(() => srv.close());

/** A request with the path sent as written (fetch would normalise `..` segments away). */
function raw(method: string, path: string, body?: string): Promise<{ status: number; body: string; allow?: string }> {
  return new Promise((ok, fail) => {
    const headers = body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {};
    const req = request(new URL(srv.url), { method, path, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const allow = res.headers['allow'];
        ok({ status: res.statusCode ?? 0, body: text, ...(allow !== undefined ? { allow } : {}) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', fail);
    req.end(body);
  });
}

t.test('a path out of the served directory: 403 from the guard, or 404, never the file', async (t) => {
  const answers = {
    // %2f is not a separator to the URL parser: the server decodes it into ../secret.txt.
    encoded: await raw('GET', '/..%2fsecret.txt'),
    encodedDeep: await raw('GET', '/run/..%2f..%2fsecret.txt'),
    symlink: await raw('GET', '/run/link-out'),
    missing: await raw('GET', '/..%2fno-such-file'),
    // Plain ../ is resolved by the URL parser against /: it stays inside (and there is no such file).
    dotted: await raw('GET', '/../../secret.txt'),
  };
  t.same(
    Object.fromEntries(Object.entries(answers).map(([k, a]) => [k, [a.status, a.body]])),
    {
      encoded: [403, 'outside the served directory'],
      encodedDeep: [403, 'outside the served directory'],
      symlink: [403, 'outside the served directory'],
      missing: [404, 'not found'],
      dotted: [404, 'not found'],
    },
    'each escape refused by name',
  );
  const after = await raw('GET', '/run/results.json');
  t.same([after.status, after.body], [200, '{"kept":true}\n'], 'the server still answers');
});

t.test('read-only: nothing but GET and HEAD, and nothing written or removed', async (t) => {
  for (const method of ['PUT', 'POST', 'DELETE', 'PATCH']) {
    const r = await raw(method, '/run/results.json', '{"overwritten":true}');
    t.same([r.status, r.allow], [405, 'GET, HEAD'], `${method} refused`);
    const created = await raw(method, '/run/new.json', '{}');
    t.equal(created.status, 405, `${method} of a new file refused`);
  }
  t.equal(await readFile(join(root, 'run', 'results.json'), 'utf8'), '{"kept":true}\n', 'the file is unchanged');
  t.same((await readdir(join(root, 'run'))).sort(), ['link-out', 'results.json'], 'nothing created');
  const head = await raw('HEAD', '/run/results.json');
  t.same([head.status, head.body], [200, ''], 'HEAD answers without a body');
});
