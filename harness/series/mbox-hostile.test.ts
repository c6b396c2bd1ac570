import t from 'tap';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { git } from '../testkit/toy-repo.js';
import { PROJECT_ROOT } from '../util/project.js';
import { MBOX_LIMITS } from './mbox.js';

/**
 * Hostile mboxes through the real CLI (`faultline series --mbox`): each is refused with
 * one line on stderr and exit 2, and nothing appears outside the run directory (the
 * series never gets as far as a worktree, a build or git am).
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');

/** One mail as git format-patch writes it, with `diff` after its "---" line. */
function mail(n: number, diff: string, extraHeaders = '', body = 'Signed-off-by: A <a@example.org>\n'): string {
  return [
    'From git@z Thu Jan  1 00:00:00 1970',
    'From: A <a@example.org>',
    `Subject: [PATCH ${n}/1] toy: hostile`,
    'Date: Sun, 6 Dec 2026 22:57:38 +0000',
    `Message-Id: <hostile-${n}@example.org>`,
    ...(extraHeaders ? [extraHeaders] : []),
    '',
    body,
    '---',
    diff,
    '',
  ].join('\n');
}

const oneHunk = 'diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-int a;\n+int b;\n';

function manyHunks(n: number): string {
  const hunks = Array.from({ length: n }, (_, i) => `@@ -${i * 2 + 1} +${i * 2 + 1} @@\n-a${i}\n+b${i}\n`);
  return `diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n${hunks.join('')}`;
}

/** multipart/mixed nested `depth` times, the patch in the innermost part. */
function mimeBomb(depth: number): string {
  let part = `Content-Type: text/plain\n\nSigned-off-by: A <a@example.org>\n---\n${oneHunk}`;
  for (let i = depth; i > 0; i--)
    part = `Content-Type: multipart/mixed; boundary="b${i}"\n\n--b${i}\n${part}\n--b${i}--\n`;
  return [
    'From git@z Thu Jan  1 00:00:00 1970',
    'From: A <a@example.org>',
    'Subject: [PATCH 1/1] toy: hostile',
    'Message-Id: <hostile-1@example.org>',
    'MIME-Version: 1.0',
    part,
  ].join('\n');
}

const escape =
  'diff --git a/f.c b/../../etc/faultline-escaped\nsimilarity index 100%\nrename from f.c\nrename to ../../etc/faultline-escaped\n';
const symlink =
  'diff --git a/link b/link\nnew file mode 120000\nindex 0000000..e69de29\n--- /dev/null\n+++ b/link\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n';

/** Every path under `dir`, relative to it, but those under `skip`. */
async function listing(dir: string, skip: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => !join(dir, e).startsWith(skip)).sort();
}

t.test('hostile mboxes: one line, exit 2, nothing written outside the run directory', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-mbox-hostile-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const tree = join(root, 'tree');
  await git(root, ['init', '-q', '-b', 'main', tree]);
  await writeFile(join(tree, 'f.c'), 'int a;\n');
  await git(tree, ['add', 'f.c']);
  await git(tree, ['-c', 'user.name=A', '-c', 'user.email=a@example.org', 'commit', '-q', '-m', 'base']);
  await mkdir(join(root, 'results'));
  const cases: { name: string; mbox: () => Promise<string>; error: RegExp }[] = [
    {
      name: '200 MB mbox',
      // Sparse past its first mail: 200 MB on stat, no 200 MB of disk.
      mbox: async () => {
        const f = join(root, 'huge.mbox');
        await writeFile(f, mail(1, oneHunk));
        await truncate(f, 200 * 2 ** 20);
        return f;
      },
      error: new RegExp(`is 200 MiB, over the bound of ${MBOX_LIMITS.bytes / 2 ** 20} MiB`),
    },
    { name: 'a patch with 100,000 hunks', mbox: async () => mail(1, manyHunks(100_000)), error: /has 100000 hunks/ },
    {
      name: 'a header with a 1 MB line',
      mbox: async () => mail(1, oneHunk, `X-Junk: ${'a'.repeat(2 ** 20)}`),
      error: /has a header line of 1048584 characters/,
    },
    { name: 'a MIME bomb', mbox: async () => mimeBomb(64), error: /nests 64 multipart MIME parts/ },
    {
      name: 'a rename to ../../etc/',
      mbox: async () => mail(1, escape),
      error: /names the path '\.\.\/\.\.\/etc\/faultline-escaped', outside the tree/,
    },
    { name: 'a symlink-creating patch', mbox: async () => mail(1, symlink), error: /creates a symbolic link/ },
  ];
  for (const [i, c] of cases.entries()) {
    const made = await c.mbox();
    const mboxFile = made.startsWith(root) ? made : join(root, `case-${i}.mbox`);
    if (mboxFile !== made) await writeFile(mboxFile, made);
    const runDir = join(root, 'results', `case-${i}`);
    const before = await listing(root, runDir);
    const r = await execa(
      'node',
      [cli, 'series', '--kernel-src', tree, '--base', 'main', '--mbox', mboxFile, '--results-dir', runDir],
      ...[{ reject: false, timeout: 120_000, env: { FAULTLINE_CACHE: join(root, 'cache'), FAULTLINE_VERBOSE: '0' } }],
    );
    t.equal(r.exitCode, 2, `${c.name}: exit 2 (${r.stderr.slice(0, 300)})`);
    const lines = r.stderr.trim().split('\n');
    t.equal(lines.length, 1, `${c.name}: one line on stderr`);
    t.match(lines[0] ?? '', /^faultline: mail|^faultline: --mbox/, `${c.name}: names the mbox`);
    t.match(lines[0] ?? '', c.error, c.name);
    t.ok((lines[0] ?? '').length < 400, `${c.name}: a short line`);
    t.same(
      (await listing(root, runDir)).filter((p) => !before.includes(p)).map((p) => relative(root, join(root, p))),
      [],
      `${c.name}: nothing written outside ${relative(root, runDir)}`,
    );
  }
});
