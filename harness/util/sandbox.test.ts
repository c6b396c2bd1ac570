import t from 'tap';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './errors.js';
import { cacheDir } from './fsutil.js';
import { runMaybeSandboxed, sandboxCommand } from './sandbox.js';

/**
 * The build sandbox for real, under bubblewrap (~1 s): no network, the host read-only, home and
 * cache hidden but for the dirs bound back, no inherited secrets, a memory limit; and no silent
 * fallback to the host when bwrap is missing.
 */

const scratch = mkdtempSync(join(tmpdir(), 'faultline-sandbox-'));
const writable = await cacheDir('tmp', `sandbox-test-${process.pid}`);
const secret = join(homedir(), `.faultline-sandbox-secret-${process.pid}`);
writeFileSync(secret, 'not for builds\n');
t.teardown(async () => {
  await rm(scratch, { recursive: true, force: true });
  await rm(writable, { recursive: true, force: true });
  await rm(secret, { force: true });
});

async function inSandbox(script: string, env: Record<string, string> = {}) {
  return runMaybeSandboxed(
    'bash',
    ['-c', script],
    { timeoutMs: 60_000, allowFailure: true, env },
    { writable: [writable], readable: [], memoryLimitBytes: 512 * 1024 ** 2 },
  );
}

t.test('no connection reaches a listener on the host loopback', async (t) => {
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const r = await inSandbox(`echo hello > /dev/tcp/127.0.0.1/${port} && echo connected`);
  t.notMatch(r.all, /connected/, r.all);
  t.match(r.all, /Connection refused|Network is unreachable/);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(connections, 0, 'the listener saw nothing');
  // The same command on the host does connect: the test can see a leak.
  const host = await runMaybeSandboxed(
    'bash',
    ['-c', `echo hello > /dev/tcp/127.0.0.1/${port} && echo connected`],
    { timeoutMs: 60_000, allowFailure: true },
    undefined,
  );
  t.match(host.all, /connected/);
});

t.test('the home is hidden, the host read-only, the bound dir writable', async (t) => {
  const r = await inSandbox(
    [
      `cat ${secret} || echo secret-hidden`,
      `echo x > ${join(scratch, 'escaped')} || echo host-read-only`,
      `echo x > ${join(writable, 'filled')} && echo wrote-bound-dir`,
    ].join('; '),
  );
  t.match(r.all, /secret-hidden/);
  t.notMatch(r.all, /not for builds/);
  t.match(r.all, /host-read-only/);
  t.notOk(existsSync(join(scratch, 'escaped')));
  t.match(r.all, /wrote-bound-dir/);
  t.ok(existsSync(join(writable, 'filled')));
});

t.test('a dir named through a symlink is writable by that name', async (t) => {
  // CCACHE_DIR=~/.cache/faultline/ccache where ~/.cache links elsewhere: the build uses the link's path.
  const target = join(writable, 'target');
  const link = join(writable, 'link');
  mkdirSync(target);
  symlinkSync(target, link);
  const r = await runMaybeSandboxed(
    'bash',
    ['-c', `echo x > ${join(link, 'through-link')} && echo wrote`],
    { timeoutMs: 60_000, allowFailure: true },
    { writable: [link], readable: [] },
  );
  t.match(r.all, /wrote/, r.all);
  t.ok(existsSync(join(target, 'through-link')));
});

t.test('only PATH, the locale and the passed variables come in; memory is limited', async (t) => {
  process.env['FAULTLINE_TEST_TOKEN'] = 'ci-credential';
  t.teardown(() => delete process.env['FAULTLINE_TEST_TOKEN']);
  const r = await inSandbox(
    'echo "token=${FAULTLINE_TEST_TOKEN:-none} passed=$PASSED"; python3 -c "bytearray(1 << 30)"',
    {
      PASSED: 'yes',
    },
  );
  t.match(r.all, /token=none passed=yes/);
  // 1 GiB in one piece: past the 512 MiB limit.
  t.match(r.all, /MemoryError/);
});

t.test('a missing bwrap is one line naming the package, never a build on the host', async (t) => {
  const path = process.env['PATH'];
  process.env['PATH'] = scratch;
  t.teardown(() => {
    process.env['PATH'] = path;
  });
  const e = await sandboxCommand('true', [], { writable: [], readable: [] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(e instanceof UsageError);
  t.match(String((e as Error).message), /^bwrap not found: install it with 'apt-get install bubblewrap'/);
});
