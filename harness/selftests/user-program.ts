import { firstErrorLine } from '../toolchain/diagnostics.js';
import { readFile, rename } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { cacheDir, exists, sha256 } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { requireTool, run } from '../util/proc.js';
import { runMaybeSandboxed } from '../util/sandbox.js';
import { CFLAGS, installUapiHeaders, uapiHeadersKey } from './build.js';
import type { SelftestProgram } from '../results/selftests.js';

/**
 * A user's own C program (`--program repro.c`): built statically against the tested
 * tree's uapi headers with the selftests' flags, cached by its source, the header set and
 * the compiler. A compiler error is the user's to fix: one line, file:line and the error.
 */

const COMPILE_TIMEOUT_MS = 5 * 60_000;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The program's name in the guest and in subtest ids: its file name without `.c`. */
function userProgramName(path: string): string {
  return basename(path).replace(/\.c$/, '');
}

export async function buildUserProgram(path: string, tree: string): Promise<SelftestProgram> {
  await requireTool('gcc', 'gcc');
  const src = resolve(path);
  if (!src.endsWith('.c')) throw new UsageError(`--program ${path}: expected a C source file (NAME.c)`);
  if (!(await exists(src))) throw new UsageError(`--program ${path}: no such file`);
  const name = userProgramName(src);
  if (!NAME_RE.test(name))
    throw new UsageError(
      `--program ${path}: name the file with letters, digits, '.', '_' or '-' (it becomes the program's name in the guest)`,
    );
  const gcc = (await run('gcc', ['--version'], { timeoutMs: 10_000 })).stdout.split('\n')[0] ?? '';
  const key = sha256([await readFile(src, 'utf8'), await uapiHeadersKey(tree), gcc, CFLAGS.join(' ')].join('\n')).slice(
    0,
    24,
  );
  const dir = await cacheDir('user-programs', key);
  const out = join(dir, name);
  if (await exists(out)) return { name, status: 'built', path: out };
  const logFile = join(dir, 'build.log');
  const hdr = await installUapiHeaders(tree, logFile);
  log.info(`compiling ${path} against ${tree}'s uapi headers`);
  // In the build sandbox: the source may #include any path, and the user's home and keys are
  // not there to read (only the file itself, the headers and this cache entry are).
  const r = await runMaybeSandboxed(
    'gcc',
    [...CFLAGS, '-Wextra', '-isystem', join(hdr, 'include'), src, '-lrt', '-lm', '-o', `${out}.tmp`],
    {
      // ASCII quotes in the messages, whatever the user's locale.
      timeoutMs: COMPILE_TIMEOUT_MS,
      logFile,
      allowFailure: true,
      env: { LC_ALL: 'C' },
    },
    { writable: [dir], readable: [hdr, src] },
  );
  if (r.exitCode !== 0)
    throw new UsageError(`--program ${path} does not compile: ${firstErrorLine(r.all)} (compiler output: ${logFile})`);
  await rename(`${out}.tmp`, out);
  return { name, status: 'built', path: out };
}
