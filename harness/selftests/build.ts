import { firstErrorLine } from '../toolchain/diagnostics.js';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { FaultlineError, UsageError } from '../util/errors.js';
import { cacheDir, exists, listFiles, sha256, writeJsonAtomic } from '../util/fsutil.js';
import { availableParallelism } from 'node:os';
import { log } from '../util/log.js';
import { requireTool, run, tail } from '../util/proc.js';
import { runMaybeSandboxed, treeSandbox, type SandboxSpec } from '../util/sandbox.js';
import { treeWithGitDir } from '../vcs/git.js';
import { PROJECT_ROOT } from '../util/project.js';
import { lazyValidator, readJsonFile } from '../util/schema.js';
import { fillCacheEntry } from '../util/lock.js';
import { stressBackingArgs, takesHugetlbfsFile, unitTestCases } from './source-info.js';
import { MANIFEST_SCHEMA, type SelftestBuild, type SelftestProgram } from '../results/selftests.js';

/**
 * Builds the test programs that run in the guest, statically, against the uapi
 * headers of the kernel tree under test (installed with `make headers_install O=...`
 * into our cache, never into the tree):
 *  - upstream selftests from tools/testing/selftests/mm (vm/ before 6.3),
 *  - faultline's own programs from tests/<name>/<name>.c (+ tests/lib/*.c).
 * A program the tree is too old for is reported unavailable with a reason.
 */

const validateManifest = lazyValidator<SelftestProgram[]>(MANIFEST_SCHEMA);

/** A selftests manifest.json read back from disk: validated, or one line naming the file. */
export async function readSelftestManifest(path: string): Promise<SelftestProgram[]> {
  return validateManifest.checked(await readJsonFile(path), path, 'selftest manifest');
}

/**
 * A cached build's programs. The cache may have been written under another mount point (a
 * container's cache volume): the programs are in this directory's bin/, whatever path the
 * manifest recorded.
 */
export async function readCachedManifest(dir: string): Promise<SelftestProgram[]> {
  return (await readSelftestManifest(join(dir, 'manifest.json'))).map((p) =>
    p.path === undefined ? p : { ...p, path: join(dir, 'bin', basename(p.path)) },
  );
}

export interface SelftestBuildOptions {
  tree: string;
  /** Override the output dir (default: the cache, keyed by sources + compiler). */
  outDir?: string;
  logFile?: string;
  /** Run the tree's headers_install and compile its programs in the build sandbox (default true). */
  sandbox?: boolean;
}

/** Where faultline's own C programs live. */
const OWN_TESTS_DIR = join(PROJECT_ROOT, 'tests');

interface UpstreamRecipe {
  name: string;
  /** Alternatives: the first whose main source exists is used. */
  variants: { main: string; extra: string[] }[];
  tooOld: string;
}

const UPSTREAM: UpstreamRecipe[] = [
  {
    name: 'uffd-unit-tests',
    variants: [{ main: 'uffd-unit-tests.c', extra: ['uffd-common.c', 'vm_util.c'] }],
    tooOld: 'the tree has no uffd-unit-tests (added in 6.4)',
  },
  {
    name: 'uffd-stress',
    variants: [
      { main: 'uffd-stress.c', extra: ['uffd-common.c', 'vm_util.c'] },
      // Before 6.4 the stress test was the monolithic userfaultfd.c: other test-type words
      // (read from its source into the manifest) and its own unit checks in every mode.
      { main: 'userfaultfd.c', extra: ['vm_util.c'] },
    ],
    tooOld: 'the tree has neither uffd-stress.c nor userfaultfd.c',
  },
  {
    name: 'pagemap_ioctl',
    variants: [{ main: 'pagemap_ioctl.c', extra: ['vm_util.c'] }],
    tooOld: 'the tree has no pagemap_ioctl (PAGEMAP_SCAN, added in 6.7)',
  },
];

export const CFLAGS = ['-static', '-O2', '-Wall', '-U_FORTIFY_SOURCE', '-no-pie', '-pthread'];
/**
 * faultline's own programs (tests/) must build warning-free; the kernel's selftests and users'
 * programs may warn. Not in the cache key: the warning flags change no binary, only whether it builds.
 */
const OWN_CFLAGS = [...CFLAGS, '-Wextra', '-Werror'];
const COMPILE_TIMEOUT_MS = 5 * 60_000;

export async function selftestsMmDir(tree: string): Promise<string> {
  for (const d of ['mm', 'vm']) {
    const p = join(tree, 'tools', 'testing', 'selftests', d);
    if (await exists(p)) return p;
  }
  throw new UsageError(`${tree} has no tools/testing/selftests/mm: pass a Linux kernel tree (--kernel-src)`);
}

async function ownPrograms(): Promise<{ name: string; main: string }[]> {
  if (!(await exists(OWN_TESTS_DIR))) return [];
  const out: { name: string; main: string }[] = [];
  for (const e of await readdir(OWN_TESTS_DIR, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === 'lib') continue;
    const main = join(OWN_TESTS_DIR, e.name, `${e.name}.c`);
    if (await exists(main)) out.push({ name: e.name, main });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function ownLibSources(): Promise<string[]> {
  const lib = join(OWN_TESTS_DIR, 'lib');
  if (!(await exists(lib))) return [];
  return (await readdir(lib))
    .filter((f) => f.endsWith('.c'))
    .sort()
    .map((f) => join(lib, f));
}

/**
 * Hash of files named relative to `root`: the same sources in another checkout (every series
 * and bisect worktree is a new directory) give the same key, so headers and tests are reused.
 */
export async function hashFiles(root: string, paths: string[]): Promise<string> {
  const parts: string[] = [];
  for (const p of paths) parts.push(relative(root, p), (await exists(p)) ? sha256(await readFile(p)) : 'absent');
  return sha256(parts.join('\n'));
}

/** Key of the tree's uapi header set: what headers_install reads. */
export async function uapiHeadersKey(tree: string): Promise<string> {
  const inputs: string[] = [join(tree, 'Makefile')];
  for (const d of ['include/uapi', 'arch/x86/include/uapi', 'scripts/headers_install.sh']) {
    const p = join(tree, d);
    if (!(await exists(p))) continue;
    if (d.endsWith('.sh')) inputs.push(p);
    else inputs.push(...(await listFiles(p)).map((f) => join(p, f)));
  }
  return (await hashFiles(tree, inputs)).slice(0, 24);
}

/**
 * The tree's uapi headers, installed once per distinct header set (headers_install
 * takes a minute or more here, so it is cached apart from the test binaries).
 */
export async function installUapiHeaders(tree: string, logFile: string, sandbox = true): Promise<string> {
  const key = await uapiHeadersKey(tree);
  const dir = await cacheDir('uapi-headers', key);
  const hdr = join(dir, 'usr');
  return fillCacheEntry(`uapi-headers-${key}`, `the uapi headers ${key}`, {
    cached: async () => ((await exists(join(dir, '.complete'))) ? hdr : undefined),
    fill: async () => {
      await headersInstall(
        tree,
        dir,
        hdr,
        logFile,
        sandbox ? treeSandbox(await treeWithGitDir(tree), [dir]) : undefined,
      );
      return hdr;
    },
  });
}

async function headersInstall(
  tree: string,
  dir: string,
  hdr: string,
  logFile: string,
  sandbox: SandboxSpec | undefined,
): Promise<void> {
  log.info("installing the tree's uapi headers (make headers_install O=...; once per header set)");
  // The tree's Makefile runs here: in the sandbox, like the kernel build.
  const r = await runMaybeSandboxed(
    'make',
    [
      '-C',
      tree,
      `O=${join(dir, 'obj')}`,
      `-j${Math.max(2, availableParallelism())}`,
      'headers_install',
      `INSTALL_HDR_PATH=${hdr}`,
    ],
    { timeoutMs: 15 * 60_000, logFile, allowFailure: true },
    sandbox,
  );
  if (r.exitCode !== 0)
    throw new FaultlineError(`make headers_install failed in ${tree} (exit ${r.exitCode}): see ${logFile}`, {
      detail: tail(r.all, 20),
    });
  await rm(join(dir, 'obj'), { recursive: true, force: true });
  await writeFile(join(dir, '.complete'), tree + '\n');
}

/** Cache key: every source that goes into the binaries, the uapi inputs, and the compiler. */
export async function selftestsKey(tree: string): Promise<string> {
  const mmDir = await selftestsMmDir(tree);
  const mmFiles = (await readdir(mmDir))
    .filter((f) => /\.[ch]$/.test(f))
    .sort()
    .map((f) => join(mmDir, f));
  const uapi = join(tree, 'include', 'uapi', 'linux');
  const uapiFiles = ['userfaultfd.h', 'fs.h', 'mman.h', 'memfd.h', 'mempolicy.h'].map((f) => join(uapi, f));
  const ownDir = OWN_TESTS_DIR;
  const own = (await ownPrograms()).map((p) => p.main).concat(await ownLibSources());
  const ownHeaders = (await exists(join(ownDir, 'lib')))
    ? (await readdir(join(ownDir, 'lib'))).filter((f) => f.endsWith('.h')).map((f) => join(ownDir, 'lib', f))
    : [];
  const gcc = (await run('gcc', ['--version'], { timeoutMs: 10_000 })).stdout.split('\n')[0] ?? '';
  const treeFiles = [
    ...mmFiles,
    join(tree, 'tools', 'testing', 'selftests', 'kselftest.h'),
    join(tree, 'mm', 'gup_test.h'),
    join(tree, 'Makefile'),
    ...uapiFiles,
  ];
  const parts = [
    'selftests-v3',
    gcc,
    CFLAGS.join(' '),
    await hashFiles(tree, treeFiles),
    await hashFiles(PROJECT_ROOT, [...own, ...ownHeaders]),
  ];
  return sha256(parts.join('\n')).slice(0, 24);
}

/**
 * What the harness must know about an upstream program from its source: argument words
 * (uffd-stress) and planned cases (uffd-unit-tests). A source the readers do not
 * understand leaves the fact out with a warning: the program still runs.
 */
async function sourceFacts(name: string, mainPath: string): Promise<Partial<SelftestProgram>> {
  const text = await readFile(mainPath, 'utf8');
  const facts: Partial<SelftestProgram> = { source: basename(mainPath) };
  try {
    if (name === 'uffd-stress') {
      facts.backingArgs = stressBackingArgs(text);
      if (takesHugetlbfsFile(text)) facts.hugetlbfsFileArg = true;
    } else if (name === 'uffd-unit-tests') {
      facts.cases = unitTestCases(text);
    }
  } catch (e) {
    log.warn(
      `selftest ${name}: cannot read its ${name === 'uffd-stress' ? 'test types' : 'test table'} from ${basename(mainPath)}: ${(e as Error).message}`,
    );
  }
  return facts;
}

/**
 * The tree's mm selftests staged with their relative layout: the mm tests include
 * "../kselftest.h" and "../../../../mm/gup_test.h", and pagemap_ioctl must be compiled
 * from a relative source path (it names its own source file in tests). Returns the
 * staged mm directory.
 */
async function stageSelftests(tree: string, mmDir: string, stage: string): Promise<string> {
  const selftests = join(tree, 'tools', 'testing', 'selftests');
  await rm(stage, { recursive: true, force: true });
  const stageMm = join(stage, 'tools', 'testing', 'selftests', relative(selftests, mmDir));
  await cp(mmDir, stageMm, { recursive: true, filter: (src) => !/\.(o|a)$/.test(src) });
  await cp(join(selftests, 'kselftest.h'), join(stage, 'tools', 'testing', 'selftests', 'kselftest.h'));
  if (await exists(join(tree, 'mm', 'gup_test.h'))) {
    await mkdir(join(stage, 'mm'), { recursive: true });
    await cp(join(tree, 'mm', 'gup_test.h'), join(stage, 'mm', 'gup_test.h'));
  }
  // Older trees keep local_config.h generated by check_config.sh; an empty one is what it writes without liburing.
  if (!(await exists(join(stageMm, 'local_config.h')))) await writeFile(join(stageMm, 'local_config.h'), '');
  return stageMm;
}

/** One upstream program: the first variant the tree has, built; or why not. */
async function buildUpstream(
  recipe: UpstreamRecipe,
  stageMm: string,
  bin: string,
  isystem: string[],
  logFile: string,
  sandbox: SandboxSpec | undefined,
): Promise<SelftestProgram> {
  let variant: UpstreamRecipe['variants'][number] | undefined;
  for (const v of recipe.variants) if (!variant && (await exists(join(stageMm, v.main)))) variant = v;
  if (!variant) return { name: recipe.name, status: 'unavailable', reason: recipe.tooOld };
  const extra: string[] = [];
  for (const f of variant.extra) if (await exists(join(stageMm, f))) extra.push(f);
  const out = join(bin, recipe.name);
  const r = await runMaybeSandboxed(
    'gcc',
    [...CFLAGS, ...isystem, variant.main, ...extra, '-lrt', '-lm', '-o', out],
    { timeoutMs: COMPILE_TIMEOUT_MS, cwd: stageMm, logFile, allowFailure: true },
    sandbox,
  );
  if (r.exitCode !== 0)
    return {
      name: recipe.name,
      status: 'failed',
      source: variant.main,
      reason: `does not compile: ${firstErrorLine(r.all)}`,
    };
  return {
    name: recipe.name,
    status: 'built',
    path: out,
    ...(await sourceFacts(recipe.name, join(stageMm, variant.main))),
  };
}

/** faultline's own programs (tests/), warning-free against the tree's headers. */
async function buildOwn(
  bin: string,
  isystem: string[],
  logFile: string,
  sandbox: SandboxSpec | undefined,
): Promise<SelftestProgram[]> {
  const lib = await ownLibSources();
  const programs: SelftestProgram[] = [];
  for (const p of await ownPrograms()) {
    const out = join(bin, p.name);
    const r = await runMaybeSandboxed(
      'gcc',
      [...OWN_CFLAGS, ...isystem, `-I${join(OWN_TESTS_DIR, 'lib')}`, p.main, ...lib, '-lm', '-o', out],
      { timeoutMs: COMPILE_TIMEOUT_MS, logFile, allowFailure: true },
      sandbox,
    );
    programs.push(
      r.exitCode === 0
        ? { name: p.name, status: 'built', path: out, source: basename(p.main) }
        : {
            name: p.name,
            status: 'failed',
            reason: `does not compile against this tree's headers: ${firstErrorLine(r.all)}`,
          },
    );
  }
  return programs;
}

export async function buildSelftests(opts: SelftestBuildOptions): Promise<SelftestBuild> {
  await requireTool('gcc', 'gcc');
  await requireTool('make', 'make');
  const tree = opts.tree;
  if (!(await exists(join(tree, 'Makefile'))) || !(await exists(join(tree, 'include', 'uapi')))) {
    throw new UsageError(`${tree} is not a Linux kernel tree (no Makefile/include/uapi): pass --kernel-src DIR`);
  }
  const mmDir = await selftestsMmDir(tree);
  const key = await selftestsKey(tree);
  if (opts.outDir !== undefined) return buildSelftestsInto(opts.outDir, key, tree, mmDir, opts);
  const dir = await cacheDir('selftests', key);
  // Another faultline may be filling this entry: wait for it rather than restage under its compiler.
  return fillCacheEntry(`selftests-${key}`, `the selftests build ${key}`, {
    cached: async () => {
      if (!(await exists(join(dir, 'manifest.json')))) return undefined;
      log.debug(`selftests cache hit ${dir}`);
      return { dir, key, tree, programs: await readCachedManifest(dir) };
    },
    fill: () => buildSelftestsInto(dir, key, tree, mmDir, opts),
  });
}

/** Stage the tree's selftests into `dir`, build every program, and write its manifest last. */
async function buildSelftestsInto(
  dir: string,
  key: string,
  tree: string,
  mmDir: string,
  opts: Pick<SelftestBuildOptions, 'logFile' | 'sandbox'>,
): Promise<SelftestBuild> {
  await mkdir(dir, { recursive: true });
  const logFile = opts.logFile ?? join(dir, 'build.log');
  const hdr = await installUapiHeaders(tree, logFile, opts.sandbox !== false);
  const isystem = ['-isystem', join(hdr, 'include')];
  // The compiles read the staged sources, the headers and faultline's tests/, and write this entry.
  const sandbox = opts.sandbox !== false ? { writable: [dir], readable: [hdr, OWN_TESTS_DIR] } : undefined;
  const stageMm = await stageSelftests(tree, mmDir, join(dir, 'src'));
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const programs: SelftestProgram[] = [];
  for (const recipe of UPSTREAM) programs.push(await buildUpstream(recipe, stageMm, bin, isystem, logFile, sandbox));
  programs.push(...(await buildOwn(bin, isystem, logFile, sandbox)));
  for (const p of programs) if (p.status !== 'built') log.warn(`selftest ${p.name}: ${p.reason ?? p.status}`);
  if (programs.every((p) => p.status !== 'built')) {
    throw new FaultlineError(`no selftest could be built from ${tree}; see ${logFile}`);
  }
  await writeJsonAtomic(join(dir, 'manifest.json'), programs);
  return { dir, key, tree, programs };
}
