import { firstErrorLine } from '../toolchain/diagnostics.js';
import { chmod, copyFile, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { FaultlineError } from '../util/errors.js';
import { cacheDir, exists, sha256, writeJsonAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { requireTool, run } from '../util/proc.js';
import { runMaybeSandboxed, treeSandbox, type SandboxSpec } from '../util/sandbox.js';
import { treeWithGitDir } from '../vcs/git.js';
import { fillCacheEntry } from '../util/lock.js';
import { CFLAGS, hashFiles, installUapiHeaders, readCachedManifest, selftestsMmDir, uapiHeadersKey } from './build.js';
import type { MmRun, SelftestProgram } from '../results/selftests.js';
import { MM_PROGRAMS, mmProgramSpec, type MmProgramSpec } from './mm-programs.js';
import { hugetlbfsMountOf, parseVmtestsScript, type VmtestsInvocation } from './vmtests-script.js';

/**
 * Builds suite `mm`'s programs from the tested tree, statically, against its uapi headers,
 * the way tools/testing/selftests/mm/Makefile does (vm_util.c and thp_settings.c linked into
 * every program, -lrt -lpthread -lm), into their own cache entry: runs that do not ask for
 * suite `mm` do not pay for it. Each program's invocations come from the tree's run_vmtests.sh.
 */

/** Debian's bash-static: kselftest's shell scripts are bash, the guest has busybox sh. */
const BASH_STATIC = '/bin/bash-static';
const COMPILE_TIMEOUT_MS = 5 * 60_000;
/** Library sources the mm Makefile links into every program (those the tree has). */
const MM_LIB_SOURCES = ['vm_util.c', 'thp_settings.c'];

function programOf(argv: readonly string[]): string | undefined {
  const first = argv[0] === 'bash' ? argv[1] : argv[0];
  return first?.startsWith('./') ? first.slice(2) : undefined;
}

/**
 * run_vmtests.sh's words for this invocation as faultline passes them: the XFS path
 * split_huge_page_test takes is empty without XFS (unquoted, so no argument at all), and
 * 6.1's `$mnt` is the hugetlbfs mount the script makes (the suite makes the same one).
 */
function resolveArgs(argv: readonly string[], mount: string | undefined): { args: string[]; unresolved?: string } {
  const rest = argv.slice(argv[0] === 'bash' ? 2 : 1);
  const args = rest
    .filter((a) => a !== '${SPLIT_HUGE_PAGE_TEST_XFS_PATH}')
    .map((a) => (mount ? a.replace(/^\$(mnt|\{mnt\})(?=\/|$)/, mount) : a));
  const unknown = args.find((a) => a.includes('$'));
  return unknown
    ? { args, unresolved: `run_vmtests.sh passes ${unknown}, a value faultline does not provide` }
    : { args };
}

/** The invocations of `spec` in the tree's run_vmtests.sh (or faultline's own, for memfd). */
export function mmRunsOf(spec: MmProgramSpec, script: readonly VmtestsInvocation[], mount?: string): MmRun[] {
  if (spec.ownRuns)
    return spec.ownRuns.map((r) => ({ category: spec.category, args: [...r.args], backings: [...r.backings] }));
  return script
    .filter((inv) => programOf(inv.argv) === spec.name)
    .map((inv) => ({
      category: inv.category ?? spec.category,
      ...resolveArgs(inv.argv, mount),
      ...(mount ? { hugetlbfsDir: mount } : {}),
      backings: [...spec.backings],
      ...(inv.destructive ? { destructive: true } : {}),
    }));
}

async function sourceDirs(tree: string): Promise<{ mm: string; memfd: string }> {
  return { mm: await selftestsMmDir(tree), memfd: join(tree, 'tools', 'testing', 'selftests', 'memfd') };
}

async function mmBuildKey(tree: string): Promise<string> {
  const { mm, memfd } = await sourceDirs(tree);
  const files: string[] = [];
  for (const d of [mm, memfd]) {
    if (!(await exists(d))) continue;
    for (const f of (await readdir(d)).sort()) if (/\.(c|h|sh)$|^Makefile$/.test(f)) files.push(join(d, f));
  }
  files.push(join(tree, 'tools', 'testing', 'selftests', 'kselftest.h'), join(tree, 'mm', 'gup_test.h'));
  const gcc = (await run('gcc', ['--version'], { timeoutMs: 10_000 })).stdout.split('\n')[0] ?? '';
  const bash = (await exists(BASH_STATIC)) ? sha256(await readFile(BASH_STATIC)) : 'absent';
  const parts = ['mm-v6', gcc, CFLAGS.join(' '), bash, await uapiHeadersKey(tree), await hashFiles(tree, files)];
  parts.push(JSON.stringify(MM_PROGRAMS));
  return sha256(parts.join('\n')).slice(0, 24);
}

/** The tree's selftests (mm, memfd, their shared headers) staged with their relative layout. */
async function stage(tree: string, dir: string): Promise<{ mm: string; memfd: string }> {
  const src = await sourceDirs(tree);
  const root = join(dir, 'src');
  await rm(root, { recursive: true, force: true });
  const selftests = join(tree, 'tools', 'testing', 'selftests');
  const staged = { mm: join(root, relative(tree, src.mm)), memfd: join(root, relative(tree, src.memfd)) };
  const noObjects = (p: string): boolean => !/\.(o|a)$/.test(p);
  await cp(src.mm, staged.mm, { recursive: true, filter: noObjects });
  if (await exists(src.memfd)) await cp(src.memfd, staged.memfd, { recursive: true, filter: noObjects });
  for (const h of (await readdir(selftests)).filter((f) => f.endsWith('.h')))
    await cp(join(selftests, h), join(root, relative(tree, join(selftests, h))));
  // check_config.sh writes local_config.h; without liburing (as here) it is empty.
  if (!(await exists(join(staged.mm, 'local_config.h')))) await writeFile(join(staged.mm, 'local_config.h'), '');
  for (const extra of [join('mm', 'gup_test.h'), join('tools', 'include')]) {
    if (await exists(join(tree, extra))) await cp(join(tree, extra), join(root, extra), { recursive: true });
  }
  return staged;
}

/**
 * gcc on one program of the staged tree, in the build sandbox: a tree's test source is code from
 * a stranger as much as its Makefile (`#include "/home/..."` or `.incbin` would copy a host file
 * into a binary the guest then prints), so gcc sees the staged entry and the headers, nothing else.
 */
async function compile(
  spec: MmProgramSpec,
  srcDir: string,
  out: string,
  env: Pick<BuildEnv, 'includes' | 'logFile' | 'sandbox'>,
): Promise<string | undefined> {
  const libSources: string[] = [];
  if (spec.dir === 'memfd') libSources.push('common.c');
  else for (const f of MM_LIB_SOURCES) if (await exists(join(srcDir, f))) libSources.push(f);
  const r = await runMaybeSandboxed(
    'gcc',
    [
      ...CFLAGS,
      ...env.includes,
      `${spec.name}.c`,
      ...libSources,
      '-lrt',
      '-lpthread',
      '-lm',
      ...(spec.libs ?? []),
      '-o',
      out,
    ],
    { timeoutMs: COMPILE_TIMEOUT_MS, cwd: srcDir, logFile: env.logFile, allowFailure: true },
    env.sandbox,
  );
  return r.exitCode === 0 ? undefined : firstErrorLine(r.all);
}

/** A program, script or helper file into bin/: compiled from NAME.c, or copied when it is a script. */
async function buildFile(
  name: string,
  spec: MmProgramSpec | undefined,
  srcDir: string,
  env: Omit<BuildEnv, 'staged'>,
): Promise<string | undefined> {
  const out = join(env.bin, name);
  if (name.endsWith('.sh')) {
    if (!(await exists(join(srcDir, name)))) return `the tree has no ${name}`;
    await copyFile(join(srcDir, name), out);
    await chmod(out, 0o755);
    return undefined;
  }
  if (!(await exists(join(srcDir, `${name}.c`)))) return `the tree has no ${name}.c`;
  return compile(spec ?? { name, category: '', backings: [] }, srcDir, out, env);
}

/** The tree's own runner, for suite vmtests (the reference suite mm is compared with). */
async function runnerEntry(path: string, script: readonly VmtestsInvocation[], bin: string): Promise<SelftestProgram> {
  const name = 'run_vmtests.sh';
  if (!(await exists(path))) return { name, status: 'unavailable', reason: 'the tree has no run_vmtests.sh' };
  await copyFile(path, join(bin, name));
  const categories = [...new Set(script.flatMap((i) => (i.category ? [i.category] : [])))];
  return { name, status: 'built', path: join(bin, name), scriptCategories: categories };
}

export interface MmBuild {
  dir: string;
  programs: SelftestProgram[];
}

/** Where one build's inputs and outputs are. */
interface BuildEnv {
  staged: { mm: string; memfd: string };
  bin: string;
  includes: string[];
  logFile: string;
  /** The build sandbox gcc runs in. */
  sandbox: SandboxSpec;
}

/** One program of the table: built, unavailable (the tree lacks it: a skip) or failed (an error). */
async function buildMmProgram(spec: MmProgramSpec, runs: MmRun[], env: BuildEnv): Promise<SelftestProgram> {
  const { name } = spec;
  if (runs.length === 0)
    return { name, status: 'unavailable', reason: `the tree's run_vmtests.sh does not run ${name}` };
  const srcDir = spec.dir === 'memfd' ? env.staged.memfd : env.staged.mm;
  const err = await buildFile(name, spec, srcDir, env);
  if (err?.startsWith('the tree has no')) return { name, status: 'unavailable', reason: err, mmRuns: runs };
  const where = `tools/testing/selftests/${basename(srcDir)}/${name}`;
  if (err) return { name, status: 'failed', reason: `${where} does not compile: ${err}`, mmRuns: runs };
  return { name, status: 'built', path: join(env.bin, name), mmRuns: runs, ...(spec.script ? { script: true } : {}) };
}

/**
 * Suite mm's programs for `tree`: built, or unavailable naming what the tree lacks
 * (a skip), or failed with the compiler's first error. Cached by every input.
 */
export async function buildMmSelftests(tree: string): Promise<MmBuild> {
  await requireTool('gcc', 'gcc');
  await requireTool('bash-static', 'bash-static');
  const key = await mmBuildKey(tree);
  const dir = await cacheDir('selftests-mm', key);
  const manifest = join(dir, 'manifest.json');
  // Another faultline may be filling this entry: wait for it rather than restage under its compiler.
  return fillCacheEntry(`selftests-mm-${key}`, `the mm selftests build ${key}`, {
    cached: async () => ((await exists(manifest)) ? { dir, programs: await readCachedManifest(dir) } : undefined),
    fill: () => buildMmInto(tree, dir),
  });
}

/** Stage the tree's mm and memfd selftests into `dir`, build them, and write its manifest last. */
async function buildMmInto(tree: string, dir: string): Promise<MmBuild> {
  const manifest = join(dir, 'manifest.json');
  const logFile = join(dir, 'build.log');
  const hdr = await installUapiHeaders(tree, logFile);
  log.info('building the mm selftests (suite mm; once per tree state)');
  const staged = await stage(tree, dir);
  const scriptPath = join(staged.mm, 'run_vmtests.sh');
  const scriptText = (await exists(scriptPath)) ? await readFile(scriptPath, 'utf8') : '';
  const script = scriptText ? parseVmtestsScript(scriptText) : [];
  const mount = hugetlbfsMountOf(scriptText);
  const root = join(dir, 'src');
  const env: BuildEnv = {
    staged,
    bin: join(dir, 'bin'),
    includes: ['-I', root, '-isystem', join(hdr, 'include'), '-isystem', join(root, 'tools', 'include', 'uapi')],
    logFile,
    // The entry (staged sources, bin/) is all it writes; it reads the headers installed for it.
    sandbox: treeSandbox(await treeWithGitDir(tree), [dir], [hdr]),
  };
  await mkdir(env.bin, { recursive: true });
  const programs: SelftestProgram[] = [];
  for (const spec of MM_PROGRAMS) programs.push(await buildMmProgram(spec, mmRunsOf(spec, script, mount), env));
  // The files the scripts run, the tree's own runner, and bash for both.
  for (const h of new Set(MM_PROGRAMS.flatMap((spec) => spec.helpers ?? []))) {
    const err = await buildFile(h, mmProgramSpec(h), staged.mm, env);
    programs.push(
      err ? { name: h, status: 'failed', reason: err } : { name: h, status: 'built', path: join(env.bin, h) },
    );
  }
  programs.push(await runnerEntry(scriptPath, script, env.bin));
  await copyFile(BASH_STATIC, join(env.bin, 'bash'));
  programs.push({ name: 'bash', status: 'built', path: join(env.bin, 'bash') });
  for (const p of programs) if (p.status === 'failed') log.warn(`mm selftest ${p.name}: ${p.reason ?? p.status}`);
  if (!programs.some((p) => p.status === 'built' && p.mmRuns))
    throw new FaultlineError(`no mm selftest could be built from ${tree}; see ${logFile}`);
  await writeJsonAtomic(manifest, programs);
  return { dir, programs };
}
