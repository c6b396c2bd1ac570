/**
 * A second `faultline run` asks apt nothing (issue 25): `run --list` (the kernel, its source
 * and the selftests resolved and read, nothing booted) through bin/faultline.js on the shared
 * cache, with the host's apt-cache, apt-get and dpkg behind wrappers that log each call.
 * The first call fills whatever is missing; the second must make no apt or dpkg call and print
 * the same list; --refresh asks apt once more; --offline asks nothing. Then --offline on a
 * cache holding the Debian packages but no resolution record finds them on disk.
 * Measured: 25 s wall at load average 10 here (2 cores; four CLI starts, one apt resolution);
 * dist/ must be built.
 */
import t from 'tap';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../util/fsutil.js';
import { PROJECT_ROOT } from '../util/project.js';
import { run } from '../util/proc.js';
import { ensureDebianKernel } from './debian.js';
import { aptRecorder } from './fixtures/apt-recorder.js';

// Measured: 20-25 s (four CLI starts, one apt resolution); the deadline is above the slowest figure.
t.setTimeout(10 * 60_000);

const scratch = await mkdtemp(join(tmpdir(), 'faultline-resolve-e2e-'));
t.teardown(() => rm(scratch, { recursive: true, force: true }));
const apt = await aptRecorder(scratch);
const PATH = `${apt.bin}:${process.env['PATH'] ?? ''}`;

const list = async (...flags: string[]): Promise<string> => {
  const r = await run('node', [join(PROJECT_ROOT, 'bin', 'faultline.js'), 'run', '--list', ...flags], {
    timeoutMs: 30 * 60_000,
    env: { PATH },
  });
  return r.stdout;
};

t.test('the second run --list asks apt nothing and lists the same', async (t) => {
  const first = await list();
  await apt.clear();
  t.equal(await list(), first);
  t.same(await apt.calls(), [], 'no apt-cache, apt-get or dpkg call');
  t.equal(await list('--refresh'), first);
  const refreshed = await apt.calls();
  t.equal(refreshed.length, 2, '--refresh: one pkgnames and one madison');
  t.ok(
    refreshed.every((c) => c.startsWith('apt-cache ')),
    'and no dpkg --compare-versions',
  );
  await apt.clear();
  t.equal(await list('--offline'), first);
  t.same(await apt.calls(), [], '--offline: nothing asked');
});

t.test('--offline without a resolution record finds the packages on disk', async (t) => {
  const cache = join(scratch, 'cache');
  await mkdir(cache);
  await symlink(join(cacheRoot(), 'debian'), join(cache, 'debian'));
  process.env['FAULTLINE_CACHE'] = cache;
  process.env['PATH'] = PATH;
  await apt.clear();
  const k = await ensureDebianKernel('6.12', { offline: true });
  t.match(k.imagePackage, /^linux-image-6\.12\.\d+\+deb12-amd64-unsigned$/);
  t.same(await apt.calls(), []);
});
