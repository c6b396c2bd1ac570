import t from 'tap';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildSelftests, readSelftestManifest, selftestsKey, uapiHeadersKey } from './build.js';
import type { SelftestProgram } from '../results/selftests.js';

/** The files the keys read, in a tree of the kernel's layout (contents are what matter, not where). */
const TREE: Record<string, string> = {
  Makefile: 'VERSION = 6\nPATCHLEVEL = 12\n',
  'scripts/headers_install.sh': '#!/bin/sh\n',
  'include/uapi/linux/userfaultfd.h': '#define UFFD_API ((__u64)0xAA)\n',
  'include/uapi/linux/mman.h': '#define MREMAP_MAYMOVE 1\n',
  'arch/x86/include/uapi/asm/mman.h': '#define MAP_32BIT 0x40\n',
  'tools/testing/selftests/kselftest.h': '/* kselftest */\n',
  'tools/testing/selftests/mm/uffd-unit-tests.c': 'int main(void) { return 0; }\n',
  'tools/testing/selftests/mm/vm_util.h': '/* vm_util */\n',
  'mm/gup_test.h': '/* gup_test */\n',
};

async function makeTree(root: string): Promise<string> {
  for (const [rel, text] of Object.entries(TREE)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), text);
  }
  return root;
}

t.test('selftest and uapi keys depend on the sources, not on where the checkout is', async (t) => {
  const d = await mkdtemp(join(tmpdir(), 'faultline-stkey-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const a = await makeTree(join(d, 'series', 'worktree'));
  const b = join(d, 'bisect', 'worktree');
  await cp(a, b, { recursive: true });

  t.equal(await selftestsKey(b), await selftestsKey(a), 'a second worktree of the same sources reuses the selftests');
  t.equal(await uapiHeadersKey(b), await uapiHeadersKey(a), 'and the installed uapi headers');

  await writeFile(join(b, 'include/uapi/linux/userfaultfd.h'), '#define UFFD_API ((__u64)0xAB)\n');
  t.not(await uapiHeadersKey(b), await uapiHeadersKey(a), 'a uapi header edit changes the header key');
  t.not(await selftestsKey(b), await selftestsKey(a), 'and the selftests key (userfaultfd.h is compiled in)');

  await cp(join(a, 'include'), join(b, 'include'), { recursive: true });
  t.equal(await selftestsKey(b), await selftestsKey(a), 'restoring it restores the key');
  await writeFile(join(b, 'tools/testing/selftests/mm/uffd-unit-tests.c'), 'int main(void) { return 1; }\n');
  t.not(await selftestsKey(b), await selftestsKey(a), 'a selftest source edit changes the selftests key');
  t.equal(await uapiHeadersKey(b), await uapiHeadersKey(a), 'but not the header key');
});

t.test('manifest.json is read back validated: a bad one is one line naming the file', async (t) => {
  const d = await mkdtemp(join(tmpdir(), 'faultline-manifest-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const good: SelftestProgram[] = [
    { name: 'uffd-unit-tests', status: 'unavailable', reason: 'the tree has no uffd-unit-tests (added in 6.4)' },
    {
      name: 'uffd-stress',
      status: 'built',
      path: '/x/bin/uffd-stress',
      source: 'userfaultfd.c',
      hugetlbfsFileArg: true,
      backingArgs: { anon: 'anon', shmem: 'shmem', hugetlb: 'hugetlb_shared', 'hugetlb-private': 'hugetlb' },
    },
    {
      name: 'uffd-unit-tests',
      status: 'built',
      path: '/x/bin/uffd-unit-tests',
      source: 'uffd-unit-tests.c',
      cases: [{ test: 'minor', mems: ['shmem', 'hugetlb'] }],
    },
  ];
  const path = join(d, 'manifest.json');
  await writeFile(path, JSON.stringify(good));
  t.same(await readSelftestManifest(path), good);

  const bad = async (value: unknown, re: RegExp): Promise<void> => {
    await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value));
    const e = await readSelftestManifest(path).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    t.match(e?.message, re);
    t.notMatch(e?.message, /\n/, 'one line');
  };
  await bad(
    [{ name: 'uffd-stress', status: 'ok' }],
    new RegExp(`^${path} is not a faultline selftest manifest: /0/status must be equal to one of the allowed values`),
  );
  await bad(
    [{ name: 'uffd-stress', status: 'built', backingArgs: { tmpfs: 'x' } }],
    /is not a faultline selftest manifest: \/0\/backingArgs/,
  );
  await bad({ programs: [] }, /is not a faultline selftest manifest: \/ must be array/);
  await bad('{"truncated', new RegExp(`^${path} is not valid JSON`));
});

t.test('a cached build found under another mount point runs from where the cache is now', async (t) => {
  const d = await mkdtemp(join(tmpdir(), 'faultline-stmove-'));
  const saved = process.env['FAULTLINE_CACHE'];
  t.teardown(async () => {
    if (saved === undefined) delete process.env['FAULTLINE_CACHE'];
    else process.env['FAULTLINE_CACHE'] = saved;
    await rm(d, { recursive: true, force: true });
  });
  const tree = await makeTree(join(d, 'tree'));
  const key = await selftestsKey(tree);
  // Written by a host whose cache was /root/.cache/faultline; read in a container that mounts it elsewhere.
  const cache = join(d, 'var', 'cache', 'faultline');
  process.env['FAULTLINE_CACHE'] = cache;
  const entry = join(cache, 'selftests', key);
  await mkdir(entry, { recursive: true });
  const written: SelftestProgram[] = [
    { name: 'uffd-unit-tests', status: 'built', path: `/root/.cache/faultline/selftests/${key}/bin/uffd-unit-tests` },
    { name: 'uffd-stress', status: 'unavailable', reason: 'too old' },
  ];
  await writeFile(join(entry, 'manifest.json'), JSON.stringify(written));
  const b = await buildSelftests({ tree });
  t.equal(b.dir, entry, 'the cache entry was used');
  t.same(
    b.programs.map((p) => p.path),
    [join(entry, 'bin', 'uffd-unit-tests'), undefined],
    'program paths point into the cache as mounted now',
  );
});
