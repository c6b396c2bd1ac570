import t from 'tap';
import { gitReason, parseBisectOutput } from './git.js';

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
  t.same(parseBisectOutput(AMBIGUOUS), { kind: 'ambiguous', candidates: ['619118e3bd6723d36c25bac7123e7ccaa36626e3', '4b0c3720ed4e246a19eb57043af7115590e190f8'] });
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
  t.equal(gitReason({ all, stderr: '' }), 'error: patch failed: util.c:14; error: util.c: patch does not apply; Patch failed at 0001 toy: add a scale() helper');
});
