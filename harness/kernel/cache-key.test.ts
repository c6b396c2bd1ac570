import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile, utimes, appendFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/proc.js';
import { ensureDebianSource } from './debian.js';
import {
  OWNED_OBJ_PREFIX,
  buildKey,
  cleanCheckoutState,
  commitState,
  inputKey,
  kconfigInputsDigest,
  treeState,
} from './cache-key.js';

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'faultline-key-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

const git = (dir: string, ...args: string[]) =>
  run('git', ['-C', dir, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { timeoutMs: 60_000 });

/** A new repository in d with `files` committed. */
async function committedRepo(d: string, files: Record<string, string>): Promise<void> {
  await git(d, 'init', '-q');
  for (const [name, text] of Object.entries(files)) await writeFile(join(d, name), text);
  await git(d, 'add', '.');
  await git(d, 'commit', '-qm', 'one');
}

t.test('git tree: touching nothing keeps the key, any change moves it, reverting restores it', async (t) => {
  const d = await scratch(t);
  await committedRepo(d, { 'a.c': 'int a;\n', '.gitignore': '*.o\n' });
  const clean = await treeState(d);
  t.equal(clean.kind, 'git');
  t.equal(clean.dirty, false);
  t.equal((await treeState(d)).digest, clean.digest, 'stable when nothing changed');

  // A build product the tree ignores does not count.
  await writeFile(join(d, 'a.o'), 'obj');
  t.equal((await treeState(d)).digest, clean.digest, 'ignored files do not change the key');

  // faultline's own build dir inside a tree it owns is not source, even without a .gitignore rule.
  await mkdir(join(d, `${OWNED_OBJ_PREFIX}0123`), { recursive: true });
  await writeFile(join(d, `${OWNED_OBJ_PREFIX}0123`, 'vmlinux.o'), 'obj');
  t.equal((await treeState(d)).digest, clean.digest, 'the in-tree build dir does not change a git tree key');

  // mtime alone does not change content in git: same key (git compares content).
  const later = new Date(Date.now() + 5000);
  await utimes(join(d, 'a.c'), later, later);
  t.equal((await treeState(d)).digest, clean.digest, 'touch without edit keeps a git tree key');

  await appendFile(join(d, 'a.c'), '/* edit */\n');
  const edited = await treeState(d);
  t.not(edited.digest, clean.digest, 'an uncommitted edit changes the key');
  t.equal(edited.dirty, true);
  await git(d, 'add', 'a.c');
  t.equal((await treeState(d)).digest, edited.digest, 'staging the same edit keeps that key');

  await git(d, 'checkout', '-q', 'HEAD', '--', 'a.c');
  t.equal((await treeState(d)).digest, clean.digest, 'reverting restores the key');

  await writeFile(join(d, 'new.c'), 'int n;\n');
  const untracked = await treeState(d);
  t.not(untracked.digest, clean.digest, 'an untracked file changes the key');
  await writeFile(join(d, 'new.c'), 'int m;\n');
  t.not((await treeState(d)).digest, untracked.digest, 'editing the untracked file changes it again');
  await rm(join(d, 'new.c'));

  await writeFile(join(d, 'b.c'), 'int b;\n');
  await git(d, 'add', 'b.c');
  await git(d, 'commit', '-qm', 'two');
  const two = await treeState(d);
  t.not(two.digest, clean.digest, 'a new commit changes the key');
  t.equal(two.dirty, false);
});

t.test('a clean checkout: the known state is the scanned one (same build and kconfig keys)', async (t) => {
  const d = await scratch(t);
  await committedRepo(d, { Kconfig: 'config A\n\tbool "a"\n', 'a.c': 'int a;\n' });
  const head = (await git(d, 'rev-parse', 'HEAD')).stdout.trim();
  const scanned = await treeState(d);
  const known = cleanCheckoutState(head);
  t.same(known, scanned, 'cleanCheckoutState(HEAD) is what the scan finds');
  t.equal(
    await kconfigInputsDigest(d, known),
    await kconfigInputsDigest(d, scanned),
    'and the kconfig inputs digest agrees',
  );
  await appendFile(join(d, 'Kconfig'), '\n');
  const dirty = await treeState(d);
  t.not(
    await kconfigInputsDigest(d, dirty),
    await kconfigInputsDigest(d, known),
    'an edited Kconfig is seen in a dirty state',
  );
});

t.test('plain tree: path, size and mtime; touching a .c changes the key', async (t) => {
  const d = await scratch(t);
  await writeFile(join(d, 'Makefile'), 'all:\n');
  await writeFile(join(d, 'x.c'), 'int x;\n');
  const a = await treeState(d);
  t.equal(a.kind, 'files');
  t.equal((await treeState(d)).digest, a.digest, 'stable when nothing changed');
  const later = new Date(Date.now() + 5000);
  await utimes(join(d, 'x.c'), later, later);
  const b = await treeState(d);
  t.not(b.digest, a.digest, 'touching x.c changes the key');
  await mkdir(join(d, `${OWNED_OBJ_PREFIX}0123`));
  await writeFile(join(d, `${OWNED_OBJ_PREFIX}0123`, 'x.o'), 'obj');
  t.equal((await treeState(d)).digest, b.digest, 'the in-tree build dir does not change a plain tree key');
  await writeFile(join(d, 'y.c'), '');
  t.not((await treeState(d)).digest, b.digest, 'a new file changes the key');
});

t.test('the real kernel tree: the key is stable across calls', async (t) => {
  const { tree } = await ensureDebianSource('6.12');
  const a = await treeState(tree);
  const b = await treeState(tree);
  t.equal(a.kind, 'files');
  t.equal(a.digest, b.digest);
  // The tree is never written by the build; reading it must not change it either.
  t.ok((await readFile(join(tree, 'Makefile'), 'utf8')).includes('VERSION = 6'));
});

t.test('a --ref build of C keys like a scanned clean checkout of C (run --ref finds what bisect built)', async (t) => {
  const d = await scratch(t);
  await committedRepo(d, { Kconfig: 'config A\n\tbool "a"\n', 'a.c': 'int a;\n' });
  const head = (await git(d, 'rev-parse', 'HEAD')).stdout.trim();
  const scanned = await treeState(d);
  const ref = commitState(head);
  t.equal(ref.digest, scanned.digest, 'same tree digest');
  const parts = { base: 'tinyconfig', fragments: ['f1'], compiler: 'gcc 12', arch: 'x86_64' };
  t.equal(inputKey({ ...parts, tree: ref }), inputKey({ ...parts, tree: scanned }), 'same input key');
  t.equal(
    buildKey({ tree: ref, configHash: 'c', compiler: 'gcc 12', arch: 'x86_64' }),
    buildKey({ tree: scanned, configHash: 'c', compiler: 'gcc 12', arch: 'x86_64' }),
    'same artifact key',
  );
});

t.test('build key = tree state + final .config + compiler', async (t) => {
  const tree = commitState('a'.repeat(40));
  const base = { tree, configHash: 'c1', compiler: 'gcc (Debian 12.2.0-14) 12.2.0', arch: 'x86_64' };
  const k = buildKey(base);
  t.match(k, /^[0-9a-f]{24}$/);
  t.equal(buildKey({ ...base }), k);
  t.not(buildKey({ ...base, configHash: 'c2' }), k, 'config change');
  t.not(buildKey({ ...base, compiler: 'gcc (Debian 13.1.0) 13.1.0' }), k, 'compiler change');
  t.not(buildKey({ ...base, tree: commitState('b'.repeat(40)) }), k, 'tree change');
  const ik = { tree, base: 'tinyconfig', fragments: ['f1', 'f2'], compiler: base.compiler, arch: 'x86_64' };
  t.not(inputKey(ik), inputKey({ ...ik, fragments: ['f2', 'f1'] }), 'fragment order matters');
  t.not(inputKey(ik), inputKey({ ...ik, base: 'defconfig' }));
});
