import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Git, gitReason, parseBisectOutput } from './git.js';
import { run } from '../util/proc.js';

// Captured from git 2.39 (Debian 12).
const NEXT = `Bisecting: 3 revisions left to test after this (roughly 2 steps)
[4b0c3720ed4e246a19eb57043af7115590e190f8] c4
`;
const AMBIGUOUS = `There are only 'skip'ped commits left to test.
The first bad commit could be any of:
619118e3bd6723d36c25bac7123e7ccaa36626e3
4b0c3720ed4e246a19eb57043af7115590e190f8
We cannot bisect more!
`;
const FOUND = `590418cf714a6125c3492e19164d9625746a112b is the first bad commit
commit 590418cf714a6125c3492e19164d9625746a112b
Author: Toy Author <toy@example.org>
Date:   Mon Jan 1 00:11:00 2024 +0000

    toy: generation 11 (introduce the bug)

 main.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)
`;

t.test('git bisect output', async (t) => {
  t.same(parseBisectOutput(NEXT), { kind: 'next', rev: '4b0c3720ed4e246a19eb57043af7115590e190f8', remaining: 3 });
  t.same(parseBisectOutput(AMBIGUOUS), {
    kind: 'ambiguous',
    candidates: ['619118e3bd6723d36c25bac7123e7ccaa36626e3', '4b0c3720ed4e246a19eb57043af7115590e190f8'],
  });
  t.same(parseBisectOutput(FOUND), { kind: 'culprit', rev: '590418cf714a6125c3492e19164d9625746a112b' });
  t.equal(parseBisectOutput('nothing useful'), undefined);
});

t.test("git's reason for a failed am", async (t) => {
  const all = `Applying: toy: add a scale() helper
error: patch failed: util.c:14
error: util.c: patch does not apply
Patch failed at 0001 toy: add a scale() helper
hint: Use 'git am --show-current-patch=diff' to see the failed patch
`;
  t.equal(
    gitReason({ all, stderr: '' }),
    'error: patch failed: util.c:14; error: util.c: patch does not apply; Patch failed at 0001 toy: add a scale() helper',
  );
});

t.test(
  "worktrees: faultline removes its own, including a crashed run's, and leaves the user's stale ones",
  async (t) => {
    const d = await mkdtemp(join(tmpdir(), 'faultline-git-'));
    t.teardown(() => rm(d, { recursive: true, force: true }));
    const repo = join(d, 'repo');
    const env = { GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@b', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@b' };
    const git = async (args: string[]) => (await run('git', ['-C', repo, ...args], { timeoutMs: 30_000, env })).stdout;
    await run('git', ['init', '-q', '-b', 'main', repo], { timeoutMs: 30_000 });
    await writeFile(join(repo, 'f'), 'x\n');
    await git(['add', 'f']);
    await git(['commit', '-qm', 'one']);
    const listed = async () =>
      (await git(['worktree', 'list', '--porcelain']))
        .split('\n')
        .filter((l) => l.startsWith('worktree '))
        .map((l) => l.slice(9));

    // The user's worktree on a disk that is not mounted now: stale, and none of faultline's business.
    const users = join(d, 'usb', 'wt');
    await git(['worktree', 'add', '-q', '--detach', users, 'main']);
    await rm(join(d, 'usb'), { recursive: true, force: true });
    // A crashed faultline run left its worktree registered and half deleted.
    const ours = join(d, 'results', 'worktree');
    await git(['worktree', 'add', '-q', '--detach', ours, 'main']);
    await rm(ours, { recursive: true, force: true });

    const user = new Git(repo);
    const wt = await user.worktreeAdd(ours, 'main');
    t.equal(await wt.head(), await user.head(), "the worktree is added at the crashed run's path");
    t.same(
      (await listed()).filter((p) => p === ours),
      [ours],
      "the crashed run's registration is replaced, not duplicated",
    );
    await user.worktreeRemove(ours);
    t.same(await listed(), [repo, users], "after removal only the user's entries are left, the stale one included");
  },
);

t.test('the same revert, or the same patch applied, on the same commit is the same commit', async (t) => {
  const d = await mkdtemp(join(tmpdir(), 'faultline-git-same-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const repo = join(d, 'repo');
  // The user's own identity: a revert must not carry it (faultline made the revert).
  const env = { GIT_AUTHOR_NAME: 'u', GIT_AUTHOR_EMAIL: 'u@x', GIT_COMMITTER_NAME: 'u', GIT_COMMITTER_EMAIL: 'u@x' };
  const git = async (args: string[]) => (await run('git', ['-C', repo, ...args], { timeoutMs: 30_000, env })).stdout;
  await run('git', ['init', '-q', '-b', 'main', repo], { timeoutMs: 30_000 });
  for (const [i, text] of ['one\n', 'one\ntwo\n', 'one\ntwo\nthree\n'].entries()) {
    await writeFile(join(repo, 'f'), text);
    await git(['add', 'f']);
    await git(['commit', '-qm', `c${i}`]);
  }
  const patch = join(d, 'c2.patch');
  await writeFile(patch, await git(['format-patch', '-1', '--stdout', 'main']));
  const user = new Git(repo);
  const made = async (name: string) => {
    const wt = await user.worktreeAdd(join(d, name), 'main~1');
    const am = await wt.am(patch);
    const reverted = await wt.revert('HEAD');
    return { am: am.ok ? am.commit : am.reason, revert: reverted.ok ? reverted.commit : reverted.reason };
  };
  const first = await made('wt1');
  // Another second on the clock: a commit dated "now" would differ.
  await new Promise((r) => setTimeout(r, 1100));
  const second = await made('wt2');
  t.match(first.am, /^[0-9a-f]{40}$/);
  t.match(first.revert, /^[0-9a-f]{40}$/);
  t.same(second, first, 'applied and reverted again later, in another worktree: the same commits');
  t.not(first.am, await git(['rev-parse', 'main']), 'the applied patch is faultline-committed, not the original');
  t.equal(
    (
      await run('git', ['-C', join(d, 'wt1'), 'log', '-1', '--format=%an <%ae>|%cn'], { timeoutMs: 30_000 })
    ).stdout.trim(),
    'faultline <faultline@localhost>|faultline',
    "the revert is faultline's, not the user's",
  );
});
