import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianSource } from '../kernel/debian.js';
import { UsageError } from '../util/errors.js';
import { buildUserProgram } from './user-program.js';

/**
 * A --program is compiled in the build sandbox, for real against Debian 6.12's uapi headers
 * (cached; ~5 s): a source that #includes a file from the user's home (a key, a token) does
 * not compile, while the same program without it does. On the host the include is read and
 * the program builds (checked by hand with the sandbox spec removed).
 */

const { tree } = await ensureDebianSource('6.12');
const dir = mkdtempSync(join(tmpdir(), 'faultline-user-program-'));
const secret = join(homedir(), `.faultline-program-secret-${process.pid}.h`);
writeFileSync(secret, 'static const char leaked_key[] = "ssh-ed25519 AAAA";\n');
t.teardown(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(secret, { force: true });
});

const program = (name: string, includes: string): string => {
  const path = join(dir, `${name}.c`);
  // A distinct body per run: the compile cache (keyed by the source) must not answer.
  writeFileSync(path, `${includes}#include <stdio.h>\nint main(void) { puts("${process.pid}"); return 0; }\n`);
  return path;
};

t.test('a --program cannot #include a file from the home', async (t) => {
  const e = await buildUserProgram(program('reads-home', `#include "${secret}"\n`), tree).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(e instanceof UsageError, "a compile error, the user's to fix");
  t.match(e instanceof Error ? e.message : String(e), /does not compile: .*No such file or directory/);
});

t.test('the same program without the include builds', async (t) => {
  const p = await buildUserProgram(program('plain', ''), tree);
  t.equal(p.status, 'built');
});
