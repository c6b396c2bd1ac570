import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { BuildBrokenError, FaultlineError, UsageError, errorMessage } from '../util/errors.js';
import { cacheRoot, exists, isInside, sha256, writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { requireTool, shellLine, tail, which } from '../util/proc.js';
import { log } from '../util/log.js';
import { Git, treeWithGitDir } from '../vcs/git.js';
import { effectiveRequests, parseFragment, resolveFragments, type Fragment } from './kconfig.js';
import { ARCH, SRCARCH, commandLine, flush, logLine, makeArgs, step, type Ctx } from './build-step.js';
import { checkKernelTree, configure, configureCommands, resolveBase, type ResolvedBase } from './configure.js';
import type { SelftestBuild } from '../results/selftests.js';
import { readArtifacts, type BuildMetadata } from './build-metadata.js';
import { progressOf, type ProgressMode } from './build-progress.js';
import { ccacheStats, statsDelta, type CcacheStats } from './ccache.js';
import { forgetBrokenBuild, knownBrokenBuild, rememberBrokenBuild } from './broken-builds.js';
import { classifyBuildFailure } from '../toolchain/diagnostics.js';
import { DEBIAN_CACHE_DIR } from './debian.js';
import {
  OWNED_OBJ_PREFIX,
  RECIPE_VERSION,
  buildKey,
  commitState,
  compilerVersion,
  configHash,
  inputKey,
  isGitTop,
  kconfigInputsDigest,
  treeState,
  type TreeState,
} from './cache-key.js';
import { secs } from '../util/format.js';
import { withLock } from '../util/lock.js';
import { treeSandbox, type SandboxSpec } from '../util/sandbox.js';

/**
 * `faultline build`: a kernel from a source tree, out of tree (O=), with checked
 * config fragments and a build cache keyed by (tree state, final .config,
 * compiler). A cache hit runs no make at all.
 *
 * Cache layout (under $FAULTLINE_CACHE/kbuild unless opts.cacheDir):
 *   artifacts/<key>/    bzImage .config System.map build.log metadata.json, selftests/ (a link
 *                       into the selftest builder's cache: same tree sources -> same binaries)
 *   inputs/<inputKey>   -> key (same tree+base+fragments+compiler: skip even olddefconfig)
 *   obj/<id>/           persistent O= dirs, one per (source tree, base, fragments): incremental rebuilds
 *   worktrees/<id>/     git worktrees for --ref builds (never the user's checkout)
 *   locks/
 * ccache lives in $FAULTLINE_CACHE/ccache.
 *
 * This file plans and runs the build (inputs, cache lookup, worktree, make, install); its
 * parts have their own files: configure.ts (base, fragments, check), build-step.ts (one logged
 * command), build-progress.ts, ccache.ts and build-metadata.ts (metadata.json).
 */

export interface BuildKernelOptions {
  /** A Linux source tree (git checkout or plain directory). Never written to. */
  kernelSrc: string;
  /** Build this revision of kernelSrc (a git repository) in a cached worktree. */
  ref?: string;
  /** 'defconfig' (default) | 'tinyconfig' | 'allnoconfig' | path to a full config file. */
  base?: string;
  /** Fragment names (kconfigs/NAME.config) or paths; comma lists allowed. Default: base,uffd. */
  kconfig?: readonly string[];
  /** make -j; default: available CPUs. */
  jobs?: number;
  /** Use ccache when installed (default true). false: plain gcc (benchmarks). */
  ccache?: boolean;
  /**
   * Code from a stranger (a patch off a list): the build reads the shared ccache but cannot write
   * it, so a hostile make cannot plant objects that later builds of other trees would link.
   */
  ccacheReadOnly?: boolean;
  /**
   * Builds the tree's selftests too (selftests/'s buildSelftests, handed in by whoever needs both:
   * the kernel knows nothing of test programs); linked into the artifact dir. None when absent.
   */
  selftests?: SelftestsBuilder;
  /** Ignore cached artifacts and build again. */
  force?: boolean;
  /** Root of the kernel build cache; default $FAULTLINE_CACHE/kbuild. */
  cacheDir?: string;
  /** 'plain' log lines (default), 'off', or the caller's display (the CLI's terminal line). */
  progress?: ProgressMode;
  /** Deadline for the kernel compile step (default 4 h). */
  buildTimeoutMs?: number;
  /** Relative fragment paths resolve against this (default process.cwd()). */
  cwd?: string;
  /**
   * kernelSrc is a tree faultline owns (a bisect/series worktree; the Debian source trees it
   * extracted into its cache count by default): the O= dir goes inside it as a direct child, so
   * kbuild writes relative paths (srctree = ..) and ccache (hash_dir off) shares objects between
   * trees at different paths. Never for a user's tree: faultline does not write into those.
   */
  ownedTree?: boolean;
  /** The tree's state as the caller knows it (cache-key cleanCheckoutState): skips the scan. */
  knownState?: TreeState;
  /**
   * Run the tree's make and scripts in the build sandbox (util/sandbox.ts; default true).
   * false only for a tree the user trusts (`faultline build --unsandboxed-build`).
   */
  sandbox?: boolean;
}

/** Builds a tree's test programs into their own cache (keyed by their sources, not the kernel's). */
export type SelftestsBuilder = (o: { tree: string; logFile: string; sandbox?: boolean }) => Promise<SelftestBuild>;

export interface KernelBuild {
  /** The artifact directory. */
  dir: string;
  bzImage: string;
  config: string;
  systemMap: string;
  buildLog: string;
  metadataFile: string;
  selftestsDir: string;
  /** The selftest programs built from this tree (too-old ones 'unavailable' with a reason); null without a selftests builder. */
  selftests: SelftestBuild | null;
  /** `make kernelrelease`, e.g. 6.12.117 */
  release: string;
  configHash: string;
  key: string;
  cacheHit: boolean;
  /** The tree that was compiled (kernelSrc, or the worktree for --ref). */
  tree: string;
  commit?: string;
  durationsMs: Record<string, number>;
  ccache: CcacheStats | null;
  /** The tree's make ran in the build sandbox (undefined: built before sandboxed builds). */
  sandboxed?: boolean;
}

/**
 * The selftests of `tree`, from the selftest builder's own cache (keyed by the
 * selftest sources, uapi headers and compiler: editing mm/*.c does not rebuild
 * them), linked into the artifact dir as selftests/.
 */
async function selftestsFor(
  build: SelftestsBuilder,
  tree: string,
  dir: string,
  sandbox: boolean | undefined,
): Promise<SelftestBuild> {
  const st = await build({
    tree,
    logFile: join(dir, 'selftests-build.log'),
    ...(sandbox !== undefined ? { sandbox } : {}),
  });
  await rm(join(dir, 'selftests'), { recursive: true, force: true });
  await symlink(st.dir, join(dir, 'selftests'));
  return st;
}

/** A cached kernel built without selftests, now wanted with them: build only those (no make). */
async function withSelftests(dir: string, m: BuildMetadata, opts: BuildKernelOptions): Promise<BuildMetadata> {
  // A --ref worktree has moved on to other commits since: do not build from it.
  if (opts.selftests === undefined || m.selftests !== null || m.commit !== null) return m;
  const tree = m.tree;
  if (!(await exists(join(tree, 'Makefile')))) return m;
  const selftests = await selftestsFor(opts.selftests, tree, dir, opts.sandbox);
  const updated = { ...m, selftests };
  await writeJsonAtomic(join(dir, 'metadata.json'), updated);
  return updated;
}

function toKernelBuild(
  dir: string,
  m: BuildMetadata,
  cacheHit: boolean,
  durationsMs: Record<string, number>,
): KernelBuild {
  return {
    dir,
    bzImage: join(dir, 'bzImage'),
    config: join(dir, '.config'),
    systemMap: join(dir, 'System.map'),
    buildLog: join(dir, 'build.log'),
    metadataFile: join(dir, 'metadata.json'),
    selftestsDir: join(dir, 'selftests'),
    selftests: m.selftests,
    release: m.release,
    configHash: m.configHash,
    key: m.key,
    cacheHit,
    tree: m.tree,
    ...(m.commit ? { commit: m.commit } : {}),
    durationsMs,
    ccache: cacheHit ? null : m.ccache,
    ...(typeof m.sandboxed === 'boolean' ? { sandboxed: m.sandboxed } : {}),
  };
}

async function resolveRef(src: string, ref: string): Promise<string> {
  if (!(await isGitTop(src)))
    throw new UsageError(
      `--ref needs a git checkout, and ${src} is not one: drop --ref or point --kernel-src at a git repository`,
    );
  return new Git(src, { readOnly: true }).resolveCommit(ref).catch((e: unknown) => {
    throw e instanceof UsageError
      ? new UsageError(
          `unknown ref '${ref}' in ${src}: pass a commit, tag or branch that 'git -C ${src} rev-parse ${ref}' resolves`,
        )
      : e;
  });
}

/** Where --ref builds of src's repository check out: one worktree per repository. */
async function refWorktreePath(root: string, src: string): Promise<string> {
  return join(root, 'worktrees', sha256(await new Git(src, { readOnly: true }).commonDir()).slice(0, 16));
}

/** The cached worktree of src at `commit` (checkout is incremental for make; the obj dirs survive it). */
async function ensureWorktree(ctx: Ctx, src: string, commit: string): Promise<string> {
  const wt = await refWorktreePath(ctx.root, src);
  await new Git(src).reuseWorktree(wt, commit, OWNED_OBJ_PREFIX);
  await logLine(ctx, `# worktree ${wt} checked out at ${commit}`);
  return wt;
}

/** What decides a build's artifacts: resolved once, before the cache is consulted. */
interface BuildInputs {
  src: string;
  /** The resolved --ref, built in a cached worktree. */
  commit: string | undefined;
  fragments: Fragment[];
  base: ResolvedBase;
  /** Root of the kernel build cache. */
  root: string;
  compiler: string;
  state: TreeState;
  inKey: string;
  /** inputs/<inKey>: names the artifacts these inputs built. */
  inputFile: string;
}

const BUILD_TOOLS = ['make', 'gcc', 'flex', 'bison', 'bc', 'perl'] as const;

/** Check the tree, fragments, base, ref and tools; hash the inputs into the cache's input key. */
async function resolveInputs(opts: BuildKernelOptions, durations: Record<string, number>): Promise<BuildInputs> {
  const src = resolve(opts.kernelSrc);
  if (!(await exists(src))) throw new UsageError(`--kernel-src ${opts.kernelSrc} does not exist`);
  const cwd = opts.cwd ?? process.cwd();
  const fragmentPaths = await resolveFragments(
    opts.kconfig && opts.kconfig.length > 0 ? opts.kconfig : ['base', 'uffd'],
    { cwd },
  );
  const fragments = await Promise.all(fragmentPaths.map((p) => parseFragment(p)));
  const base = await resolveBase(opts.base, cwd);
  const commit = opts.ref !== undefined ? await resolveRef(src, opts.ref) : undefined;
  if (commit === undefined) await checkKernelTree(src);

  const root = opts.cacheDir ?? join(cacheRoot(), 'kbuild');
  await mkdir(root, { recursive: true });
  for (const tool of BUILD_TOOLS) await requireTool(tool, tool);
  const compiler = await compilerVersion('gcc');

  const t1 = Date.now();
  const state = commit !== undefined ? commitState(commit) : (opts.knownState ?? (await treeState(src)));
  durations['treeState'] = Date.now() - t1;
  const inKey = inputKey({
    tree: state,
    base: base.id,
    fragments: fragments.map((f) => sha256(f.text)),
    compiler,
    arch: ARCH,
  });
  return { src, commit, fragments, base, root, compiler, state, inKey, inputFile: join(root, 'inputs', inKey) };
}

/** How a build that missed the cache runs: ccache, its persistent O= dir, make -j. */
async function planBuild(
  opts: BuildKernelOptions,
  inputs: BuildInputs,
  t0: number,
  durations: Record<string, number>,
): Promise<BuildPlan> {
  const { src, commit, fragments, base, root } = inputs;
  const useCcache = opts.ccache !== false && (await which('ccache')) !== undefined;
  const ccacheDir = join(opts.cacheDir ? resolve(opts.cacheDir, '..') : cacheRoot(), 'ccache');
  const env: Record<string, string> = {
    LC_ALL: 'C',
    ...(useCcache ? { CCACHE_DIR: ccacheDir, CCACHE_NOHASHDIR: 'true' } : {}),
    // Read-only: ccache stores nothing and keeps its temporary files in /tmp (the sandbox's own).
    ...(useCcache && opts.ccacheReadOnly ? { CCACHE_READONLY: 'true', CCACHE_TEMPDIR: '/tmp' } : {}),
  };
  const recipeId = sha256(JSON.stringify({ base: base.id, frags: fragments.map((f) => f.text), arch: ARCH }));
  const owned = opts.ownedTree ?? isInside(src, join(cacheRoot(), DEBIAN_CACHE_DIR));
  // A --ref worktree is faultline's own too: its obj dir is a direct child like a bisect
  // worktree's, so kbuild's paths (srctree = ..) and ccache's objects are the same in both.
  const ownedObj = `${OWNED_OBJ_PREFIX}${recipeId.slice(0, 16)}`;
  const obj =
    commit !== undefined
      ? join(await refWorktreePath(root, src), ownedObj)
      : owned
        ? join(src, ownedObj)
        : join(root, 'obj', sha256(`tree:${src}\0${recipeId}`).slice(0, 16));
  return {
    ...inputs,
    opts,
    t0,
    durations,
    useCcache,
    ccacheDir,
    env,
    cc: useCcache ? 'ccache gcc' : 'gcc',
    jobs: opts.jobs ?? availableParallelism(),
    obj,
  };
}

/** Build (or find in the cache) a kernel. Throws UsageError/KconfigCheckError (exit 2), BuildBrokenError (exit 3). */
export async function buildKernel(opts: BuildKernelOptions): Promise<KernelBuild> {
  const t0 = Date.now();
  const durations: Record<string, number> = {};
  const inputs = await resolveInputs(opts, durations);
  // Fast path: same inputs as an earlier build, no make at all.
  const earlier = opts.force ? undefined : await artifactsForInputs(inputs.root, inputs.inputFile);
  if (earlier) {
    const m = await withSelftests(earlier.dir, earlier.metadata, opts);
    durations['total'] = Date.now() - t0;
    if (opts.progress !== 'off') log.info(`build: cache hit ${earlier.key} (${m.release}, ${earlier.dir})`);
    return toKernelBuild(earlier.dir, m, true, durations);
  }
  const broken = opts.force ? undefined : await knownBrokenBuild(inputs.root, inputs.inKey);
  if (broken) {
    if (opts.progress !== 'off') log.info(`build: known broken: ${broken.firstError}`);
    throw broken;
  }
  const plan = await planBuild(opts, inputs, t0, durations);
  const { src, commit, root, obj } = plan;
  const lockFile =
    commit !== undefined
      ? join(root, 'locks', `wt-${sha256(src).slice(0, 16)}`)
      : // By the whole path: the obj dirs of faultline's worktrees share a basename (the recipe's),
        // and a lock by basename made builds in two bisect worktrees wait for each other.
        join(root, 'locks', `obj-${sha256(obj).slice(0, 16)}`);
  return withLock(lockFile, commit !== undefined ? `the worktree of ${src}` : obj, 6 * 3600_000, () =>
    buildInObjDir(plan),
  );
}

/** A build's resolved inputs and settings, shared by its configure, make and install phases. */
interface BuildPlan extends BuildInputs {
  opts: BuildKernelOptions;
  /** When buildKernel started: durations.total counts from here. */
  t0: number;
  /** Filled in by each phase as it runs. */
  durations: Record<string, number>;
  useCcache: boolean;
  ccacheDir: string;
  env: Record<string, string>;
  /** The C compiler command (ccache gcc or gcc). */
  cc: string;
  jobs: number;
  /** The persistent O= dir. */
  obj: string;
}

/**
 * The sandbox the tree's make runs in: it reads the tree (a --ref build's worktree too), its
 * git directory and the config inputs, and writes only the obj dir and ccache. undefined when
 * the user opted out (sandbox: false).
 */
async function buildSandbox(plan: BuildPlan): Promise<SandboxSpec | undefined> {
  if (plan.opts.sandbox === false) return undefined;
  if (plan.useCcache) await mkdir(plan.ccacheDir, { recursive: true });
  const inputs = [...plan.fragments.map((f) => f.path), ...(plan.base.file !== undefined ? [plan.base.file] : [])];
  const worktree = plan.commit !== undefined ? [dirname(plan.obj)] : [];
  // The shared ccache is bound read-only for a stranger's code: CCACHE_READONLY alone is a
  // request to ccache, not a wall against the tree's own Makefile writing into the dir.
  const ccache = plan.useCcache ? [plan.ccacheDir] : [];
  const readOnlyCcache = plan.opts.ccacheReadOnly === true;
  return treeSandbox(
    await treeWithGitDir(plan.src),
    [plan.obj, ...(readOnlyCcache ? [] : ccache)],
    [...worktree, ...inputs, ...(readOnlyCcache ? ccache : [])],
  );
}

/** The artifacts an earlier build with the same inputs left (inputs/<inputKey> names them). */
async function artifactsForInputs(
  root: string,
  inputFile: string,
): Promise<{ key: string; dir: string; metadata: BuildMetadata } | undefined> {
  const key = (await readFile(inputFile, 'utf8').catch(() => '')).trim();
  if (!/^[0-9a-f]{24}$/.test(key)) return undefined;
  const dir = join(root, 'artifacts', key);
  const metadata = await readArtifacts(dir);
  return metadata ? { key, dir, metadata } : undefined;
}

/** Under the obj dir's lock: check out --ref, configure, then make and install under the artifact key's lock. */
async function buildInObjDir(plan: BuildPlan): Promise<KernelBuild> {
  const { opts, obj, root } = plan;
  // The log starts in the obj dir and is copied to the artifacts.
  const logPath = join(obj, 'faultline-build.log');
  await mkdir(obj, { recursive: true });
  await writeFile(logPath, `# faultline build ${new Date().toISOString()}\n`);
  const expectedUnits = Number((await readFile(join(obj, '.faultline-units'), 'utf8').catch(() => '0')).trim()) || 0;
  const ctx: Ctx = {
    root,
    env: plan.env,
    logStream: createWriteStream(logPath, { flags: 'a' }),
    progress: progressOf(opts.progress, expectedUnits),
    makeVars: [`ARCH=${ARCH}`, `CC=${plan.cc}`, `HOSTCC=${plan.cc}`],
    reproduce: [],
    sandbox: await buildSandbox(plan),
  };
  try {
    const tree = plan.commit !== undefined ? await checkoutRef(ctx, plan, plan.commit) : plan.src;
    ctx.progress.begin('configure');
    const tc = Date.now();
    const configText = await configureObjDir(ctx, plan, tree);
    plan.durations['configure'] = Date.now() - tc;
    const cfgHash = configHash(configText);
    const key = buildKey({ tree: plan.state, configHash: cfgHash, compiler: plan.compiler, arch: ARCH });
    const configured: ConfiguredBuild = { tree, key, cfgHash, logPath, dir: join(root, 'artifacts', key) };
    return await withLock(join(root, 'locks', `key-${key}`), `artifacts ${key}`, 6 * 3600_000, () =>
      makeAndInstall(ctx, plan, configured),
    );
  } finally {
    ctx.progress.end();
    await flush(ctx);
  }
}

/** The cached worktree at the --ref commit, checked to be a kernel tree. */
async function checkoutRef(ctx: Ctx, plan: BuildPlan, commit: string): Promise<string> {
  ctx.progress.begin(`worktree at ${commit.slice(0, 12)}`);
  const t = Date.now();
  const tree = await ensureWorktree(ctx, plan.src, commit);
  plan.durations['worktree'] = Date.now() - t;
  await checkKernelTree(tree).catch((e: unknown) => {
    throw e instanceof UsageError
      ? new UsageError(`${plan.opts.ref} (${commit.slice(0, 12)}) ${errorMessage(e).replace(`${tree} `, '')}`)
      : e;
  });
  return tree;
}

/** Configure the obj dir, or reuse its checked .config when no kconfig input changed. Returns the .config text. */
async function configureObjDir(ctx: Ctx, plan: BuildPlan, tree: string): Promise<string> {
  const { obj, base, fragments } = plan;
  // Same kconfig inputs as the last configure of this obj dir, .config untouched since: skip kconfig.
  const stampFile = join(obj, '.faultline-configured');
  const stamp = sha256(
    JSON.stringify({
      v: RECIPE_VERSION,
      k: await kconfigInputsDigest(tree, plan.state),
      base: base.id,
      frags: fragments.map((f) => f.text),
      compiler: plan.compiler,
      vars: ctx.makeVars,
    }),
  );
  const prev = (await readFile(stampFile, 'utf8').catch(() => '')).trim().split(' ');
  const existing = await readFile(join(obj, '.config'), 'utf8').catch(() => '');
  if (!plan.opts.force && prev[0] === stamp && existing !== '' && prev[1] === configHash(existing)) {
    await logLine(ctx, `# kconfig inputs unchanged since the last configure of ${obj}: reusing its checked .config`);
    // The recipe still names every configure command: the reuse is a shortcut, not a different build.
    ctx.reproduce.push(...configureCommands(ctx, { tree, obj, base, fragments }).map(commandLine));
    return existing;
  }
  await rm(stampFile, { force: true });
  const configText = await configure(ctx, { tree, obj, base, fragments });
  await writeFile(stampFile, `${stamp} ${configHash(configText)}\n`);
  return configText;
}

/** A configured build: the tree, its final .config's hash and the artifact key and dir that follow. */
interface ConfiguredBuild {
  tree: string;
  key: string;
  cfgHash: string;
  /** The build log in the obj dir (copied to the artifacts). */
  logPath: string;
  /** artifacts/<key> */
  dir: string;
}

/** Under the artifact key's lock: reuse artifacts another build left for this key, or make and install them. */
async function makeAndInstall(ctx: Ctx, plan: BuildPlan, configured: ConfiguredBuild): Promise<KernelBuild> {
  const { opts, durations } = plan;
  const { key, dir } = configured;
  if (!opts.force) {
    const cached = await readArtifacts(dir);
    if (cached) {
      ctx.progress.end();
      const m = await withSelftests(dir, cached, opts);
      await writeFileAtomicText(plan.inputFile, key);
      durations['total'] = Date.now() - plan.t0;
      if (opts.progress !== 'off') log.info(`build: cache hit ${key} after configure (${m.release}, ${dir})`);
      return toKernelBuild(dir, m, true, durations);
    }
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const made = await makeBzImage(ctx, plan, configured);
  await forgetBrokenBuild(plan.root, plan.inKey);
  return installArtifacts(ctx, plan, configured, made);
}

/** make bzImage in the obj dir; a failure throws BuildBrokenError (the revision's fault) or an infrastructure error. */
async function makeBzImage(
  ctx: Ctx,
  plan: BuildPlan,
  configured: ConfiguredBuild,
): Promise<{ compileUnits: number; ccache: CcacheStats | null }> {
  const { opts, useCcache, ccacheDir, env, jobs, obj, commit } = plan;
  const { tree, dir } = configured;
  const before = useCcache ? await ccacheStats(ccacheDir, env) : {};
  ctx.progress.begin(`make -j${jobs} bzImage`);
  const tk = Date.now();
  const r = await step(ctx, 'make', makeArgs(ctx, tree, obj, ['bzImage'], jobs), {
    timeoutMs: opts.buildTimeoutMs ?? 4 * 3600_000,
    sandboxed: true,
  });
  plan.durations['kernel'] = Date.now() - tk;
  const compileUnits = ctx.progress.compiled;
  if (r.exitCode !== 0) {
    ctx.progress.end();
    await flush(ctx);
    await copyFile(configured.logPath, join(dir, 'build.log'));
    const f = classifyBuildFailure(r.all, tree);
    const where = commit !== undefined ? `${opts.ref} (${commit.slice(0, 12)})` : tree;
    const detail = `${tail(r.all, 30)}\nfull log: ${join(dir, 'build.log')}`;
    if (f.kind === 'broken') {
      const e = new BuildBrokenError(`kernel does not build at ${where}: ${f.firstError}`, f.firstError, detail);
      await rememberBrokenBuild(plan.root, plan.inKey, e);
      throw e;
    }
    throw new FaultlineError(`kernel build failed (infrastructure) at ${where}: ${f.firstError}`, { detail });
  }
  const ccache = useCcache ? statsDelta(ccacheDir, before, await ccacheStats(ccacheDir, env)) : null;
  if (compileUnits > 0) await writeFile(join(obj, '.faultline-units'), `${compileUnits}\n`);
  return { compileUnits, ccache };
}

/** Copy the build's outputs into the artifact dir, add the selftests, and write metadata.json last. */
async function installArtifacts(
  ctx: Ctx,
  plan: BuildPlan,
  configured: ConfiguredBuild,
  made: { compileUnits: number; ccache: CcacheStats | null },
): Promise<KernelBuild> {
  const { opts, durations, obj, fragments, commit, src, useCcache, ccacheDir } = plan;
  const { tree, dir, key } = configured;
  const { ccache } = made;
  const release = (await readFile(join(obj, 'include/config/kernel.release'), 'utf8')).trim();
  await copyFile(join(obj, 'arch', SRCARCH, 'boot', 'bzImage'), join(dir, 'bzImage'));
  await copyFile(join(obj, '.config'), join(dir, '.config'));
  await copyFile(join(obj, 'System.map'), join(dir, 'System.map'));
  await mkdir(join(dir, 'fragments'), { recursive: true });
  for (const [i, f] of fragments.entries()) await writeFile(join(dir, 'fragments', `${i}-${f.name}`), f.text);

  let selftests: SelftestBuild | null = null;
  if (opts.selftests !== undefined) {
    // Same tree, its own uapi headers, static: the binaries match this kernel.
    ctx.progress.begin('selftests');
    const ts = Date.now();
    await flush(ctx);
    selftests = await selftestsFor(opts.selftests, tree, dir, opts.sandbox);
    durations['selftests'] = Date.now() - ts;
  }
  ctx.progress.end();
  durations['total'] = Date.now() - plan.t0;
  await flush(ctx);
  await copyFile(configured.logPath, join(dir, 'build.log'));
  const { overrides } = effectiveRequests(fragments);
  if (overrides.length > 0) log.info(`kconfig: ${overrides.join('; ')}`);
  const meta: BuildMetadata = {
    recipeVersion: RECIPE_VERSION,
    key,
    inputKey: plan.inKey,
    createdAt: new Date().toISOString(),
    kernelSrc: src,
    tree,
    ref: opts.ref ?? null,
    commit: commit ?? null,
    treeState: plan.state,
    base: plan.base.file ?? plan.base.id,
    fragments: fragments.map((f) => ({ path: f.path, sha256: sha256(f.text) })),
    configHash: configured.cfgHash,
    compiler: plan.compiler,
    arch: ARCH,
    release,
    jobs: plan.jobs,
    durationsMs: durations,
    ccache,
    compileUnits: made.compileUnits,
    selftests,
    sandboxed: ctx.sandbox !== undefined,
    reproduce: [
      ...(commit !== undefined ? [shellLine('git', ['-C', src, 'worktree', 'add', '--detach', tree, commit])] : []),
      ...(useCcache ? [`export CCACHE_DIR=${shellLine(ccacheDir, [])} CCACHE_NOHASHDIR=true`] : []),
      ...ctx.reproduce.filter((l) => !l.startsWith('git ')),
    ],
  };
  // metadata.json last: its presence marks the artifacts complete.
  await writeJsonAtomic(join(dir, 'metadata.json'), meta);
  await writeFileAtomicText(plan.inputFile, key);
  log.info(
    `build: ${release} built in ${secs(durations['total'])} -> ${dir}${ccache ? ` (ccache ${ccache.hits} hits, ${ccache.misses} misses)` : ''}`,
  );
  return toKernelBuild(dir, meta, false, durations);
}

async function writeFileAtomicText(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, text + '\n');
}
