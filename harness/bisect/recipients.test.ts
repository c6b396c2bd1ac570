import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/proc.js';
import { Git } from '../vcs/git.js';
import { culpritRecipients } from './recipients.js';

/**
 * The tree's get_maintainer.pl is the bisected tree's own code (a series or branch from
 * anyone): it runs in the build sandbox. A toy tree whose script names a maintainer and tries
 * to write into the home: the address comes through, the file does not appear (~1 s). On the
 * host the file is written (checked by hand with the sandbox spec removed).
 */

const tree = mkdtempSync(join(tmpdir(), 'faultline-recipients-'));
const canary = join(homedir(), `.faultline-get-maintainer-canary-${process.pid}`);
t.teardown(() => {
  rmSync(tree, { recursive: true, force: true });
  rmSync(canary, { force: true });
});

t.test("the tree's get_maintainer.pl runs sandboxed: its addresses, not its writes", async (t) => {
  mkdirSync(join(tree, 'scripts'));
  writeFileSync(
    join(tree, 'scripts', 'get_maintainer.pl'),
    `my $f;\nif (open($f, '>', '${canary}')) { print $f "leaked\\n"; close($f); }\nprint "Mm Maintainer <mm\\@example.org>\\n";\n`,
  );
  writeFileSync(join(tree, 'MAINTAINERS'), 'MEMORY MANAGEMENT\n');
  writeFileSync(join(tree, 'mm.c'), 'int x;\n');
  const env = {
    GIT_AUTHOR_NAME: 'A U',
    GIT_AUTHOR_EMAIL: 'a@example.org',
    GIT_COMMITTER_NAME: 'A U',
    GIT_COMMITTER_EMAIL: 'a@example.org',
  };
  const git = async (...args: string[]) =>
    (await run('git', ['-C', tree, ...args], { timeoutMs: 60_000, env })).stdout.trim();
  await git('init', '-q');
  await git('add', '-A');
  await git('-c', 'commit.gpgsign=false', 'commit', '-q', '-m', 'mm: the culprit');
  const hash = await git('rev-parse', 'HEAD');
  const r = await culpritRecipients(new Git(tree), tree, { hash, authorName: 'A U', authorEmail: 'a@example.org' });
  t.same(r.notes, [], 'get_maintainer.pl ran');
  t.same(
    r.cc.map((a) => a.addr),
    ['mm@example.org'],
  );
  t.notOk(existsSync(canary), `nothing written in the home (${canary})`);
});
