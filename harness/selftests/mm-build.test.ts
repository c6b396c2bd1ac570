/**
 * Suite mm's selftests compile in the build sandbox: a hostile test source that includes a file
 * from the user's home (which, compiled on the host, would put its content into a binary the guest
 * runs and prints) finds nothing there, while the tree's other programs build. On a hard-link copy
 * of Debian's 6.12 tree with one program replaced; about a minute of gcc.
 */
import t from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { debianTreeWith } from '../testkit/kernel-repo.js';
import { buildMmSelftests } from './mm-build.js';

t.setTimeout(30 * 60_000);

t.test("a test source that includes a file of the user's home does not compile, the others do", async (t) => {
  const canary = join(homedir(), `.faultline-mm-canary-${process.pid}`);
  // Valid C: compiled on the host, the program would build and carry the "secret".
  await writeFile(canary, 'int faultline_secret = 0x5ec2e7;\n');
  t.teardown(() => rm(canary, { force: true }));
  const copy = await debianTreeWith(t, 'mm-hostile', {
    'tools/testing/selftests/mm/hugepage-mmap.c': () =>
      `#include "${canary}"\nint main(void)\n{\n\treturn faultline_secret == 0;\n}\n`,
  });

  const built = await buildMmSelftests(copy);
  t.teardown(() => rm(built.dir, { recursive: true, force: true }));
  const hostile = built.programs.find((p) => p.name === 'hugepage-mmap');
  t.equal(hostile?.status, 'failed', 'the hostile program did not compile');
  t.match(
    hostile?.reason,
    new RegExp(`hugepage-mmap does not compile: .*${canary.replace(/[.]/g, '\\.')}: No such file or directory`),
  );
  const others = built.programs.filter((p) => p.status === 'built' && p.mmRuns);
  t.ok(others.length >= 10, `the tree's other programs built in the sandbox (${others.length})`);
  t.notMatch(await readFile(join(built.dir, 'build.log'), 'utf8'), /5ec2e7/, 'the secret is nowhere in the log');
});
