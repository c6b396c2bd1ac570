/**
 * Every path flag of every command, given as each kind of path its role cannot take, through the
 * real CLI (bin/faultline.js on the compiled dist/, as a user runs it): exit 2, one line on stderr
 * naming the flag and the path, no stack trace, nothing on stdout, and no hang. The checks come
 * before any download, build or boot, so no row starts a guest.
 *
 * Root may write almost anywhere, so "unwritable" is made real two ways: a read-only bind mount
 * (in a private user and mount namespace: unshare, nothing leaks to the host) and /proc, where
 * mkdir fails with ENOENT and Node's recursive mkdir spins forever.
 */
import t from 'tap';
import { execa } from 'execa';
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/project.js';
import { checkPaths, type PathRole } from './paths.js';

const BIN = join(PROJECT_ROOT, 'bin', 'faultline.js');
const COMPILED = join(PROJECT_ROOT, 'dist', 'harness', 'cli', 'paths.js');
const ROW_TIMEOUT_MS = 120_000; // only a bound on a hang: a loaded machine starts Node slowly

type Kind = 'file' | 'dir' | 'missing' | 'under-file' | 'read-only' | 'proc';

/** The kinds of path each role refuses (the others it takes: see the last test). */
const REFUSED: Record<PathRole, readonly Kind[]> = {
  'read-file': ['dir', 'missing', 'under-file'],
  'read-dir': ['file', 'missing', 'under-file'],
  'read-dir-or-none': ['file', 'under-file'],
  'write-dir': ['file', 'under-file', 'read-only', 'proc'],
  'write-file': ['dir', 'under-file', 'read-only', 'proc'],
  'git-worktrees': ['file', 'dir', 'missing', 'under-file', 'read-only'],
};

const root = await mkdtemp(join(tmpdir(), 'faultline-paths-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
const F = join(root, 'a-file');
const D = join(root, 'a-dir');
const OK = join(root, 'ok'); // a writable directory for the flags a row does not test
const REPO = join(root, 'repo');
const RO_SRC = join(root, 'ro-src');
const RO = join(root, 'ro'); // RO_SRC bound read-only here, inside the row's namespace
const RO_REPO = join(root, 'ro-repo'); // REPO bound read-only here
const PLAN = join(PROJECT_ROOT, 'harness', 'nightly', 'fixtures', 'plans', 'good.yaml');
await writeFile(F, 'not what any flag wants\n');
for (const d of [D, OK, RO_SRC, RO, RO_REPO]) await mkdir(d);
await execa('git', ['init', '-q', REPO], { timeout: 30_000 });

function pathOf(kind: Kind, role: PathRole): string {
  const file = role === 'write-file' ? 'out.json' : 'x';
  switch (kind) {
    case 'file':
      return F;
    case 'dir':
      return D;
    case 'missing':
      return join(root, 'nothing', 'here');
    case 'under-file':
      return join(F, 'sub');
    case 'read-only':
      return role === 'git-worktrees' ? RO_REPO : role === 'write-file' ? join(RO, file) : RO;
    case 'proc':
      return join('/proc', `faultline-paths-test-${file}`);
  }
}

/**
 * A command line where only the flag under test is bad. Every flag name meets every kind its role
 * refuses in one command (`every`); in the other commands that take it, one kind shows that the
 * command asks the check too (each row is a Node start-up: about a second of CPU).
 */
interface Row {
  every?: true;
  flag: string;
  role: PathRole;
  argv: (path: string) => string[];
}

const RUN = ['run', '--quick', '--backing', 'anon'];
const BISECT = ['bisect', '--good', 'HEAD~1', '--bad', 'HEAD', '--splat', 'any'];
const SERIES = ['series', '--range', 'HEAD~1..HEAD'];
const NIGHTLY = ['nightly', '--plan', PLAN];

const ROWS: Row[] = [
  { every: true, flag: '--kernel', role: 'read-file', argv: (p) => [...RUN, '--kernel', p, '--results', OK] },
  {
    every: true,
    flag: '--modules',
    role: 'read-dir',
    argv: (p) => [...RUN, '--kernel', F, '--modules', p, '--results', OK],
  },
  { every: true, flag: '--kernel-src', role: 'read-dir', argv: (p) => [...RUN, '--kernel-src', p, '--results', OK] },
  {
    flag: '--kernel-src',
    role: 'git-worktrees',
    argv: (p) => [...RUN, '--kernel-src', p, '--ref', 'HEAD', '--kconfig', 'base', '--results', OK],
  },
  { every: true, flag: '--program', role: 'read-file', argv: (p) => [...RUN, '--program', p, '--results', OK] },
  { every: true, flag: '--results', role: 'write-dir', argv: (p) => [...RUN, '--results', p] },
  {
    every: true,
    flag: '--known-issues',
    role: 'read-file',
    argv: (p) => [...RUN, '--known-issues', p, '--results', OK],
  },
  { flag: '--kernel-src', role: 'read-dir', argv: (p) => ['build', '--kernel-src', p] },
  { flag: '--kernel-src', role: 'git-worktrees', argv: (p) => ['build', '--kernel-src', p, '--ref', 'HEAD'] },
  {
    every: true,
    flag: '--kernel-src',
    role: 'git-worktrees',
    argv: (p) => [...BISECT, '--kernel-src', p, '--results-dir', OK],
  },
  {
    every: true,
    flag: '--results-dir',
    role: 'write-dir',
    argv: (p) => [...BISECT, '--kernel-src', REPO, '--results-dir', p],
  },
  {
    every: true,
    flag: '--worktree',
    role: 'write-dir',
    argv: (p) => [...BISECT, '--kernel-src', REPO, '--results-dir', OK, '--worktree', p],
  },
  {
    flag: '--program',
    role: 'read-file',
    argv: (p) => [...BISECT, '--kernel-src', REPO, '--results-dir', OK, '--program', p],
  },
  { flag: '--kernel-src', role: 'git-worktrees', argv: (p) => [...SERIES, '--kernel-src', p, '--results-dir', OK] },
  {
    every: true,
    flag: '--mbox',
    role: 'read-file',
    argv: (p) => ['series', '--kernel-src', REPO, '--mbox', p, '--base', 'HEAD', '--results-dir', OK],
  },
  { flag: '--results-dir', role: 'write-dir', argv: (p) => [...SERIES, '--kernel-src', REPO, '--results-dir', p] },
  {
    flag: '--worktree',
    role: 'write-dir',
    argv: (p) => [...SERIES, '--kernel-src', REPO, '--results-dir', OK, '--worktree', p],
  },
  {
    flag: '--program',
    role: 'read-file',
    argv: (p) => [...SERIES, '--kernel-src', REPO, '--results-dir', OK, '--program', p],
  },
  { every: true, flag: '--plan', role: 'read-file', argv: (p) => ['nightly', '--plan', p, '--dry-run'] },
  { flag: '--results', role: 'write-dir', argv: (p) => [...NIGHTLY, '--results', p] },
  { flag: '--results', role: 'read-dir-or-none', argv: (p) => [...NIGHTLY, '--dry-run', '--results', p] },
  { every: true, flag: '--out', role: 'write-dir', argv: (p) => [...NIGHTLY, '--results', OK, '--out', p] },
  {
    every: true,
    flag: '--durations-from',
    role: 'read-dir',
    argv: (p) => [...NIGHTLY, '--dry-run', '--durations-from', p],
  },
  { every: true, flag: '--baseline', role: 'read-dir', argv: (p) => [...NIGHTLY, '--results', OK, '--baseline', p] },
  { flag: '--known-issues', role: 'read-file', argv: (p) => [...NIGHTLY, '--results', OK, '--known-issues', p] },
  { every: true, flag: '--results', role: 'read-dir-or-none', argv: (p) => ['history', '--results', p] },
  { flag: '--results', role: 'write-dir', argv: (p) => ['history', '--rebuild', '--results', p] },
  { every: true, flag: 'serve', role: 'read-dir', argv: (p) => ['serve', p, '--port', '0'] },
  { flag: '--results', role: 'read-dir-or-none', argv: (p) => ['export', OK, '--kcidb', '--results', p] },
  { every: true, flag: '--out', role: 'write-file', argv: (p) => ['export', OK, '--kcidb', '--out', p] },
  { flag: '--out', role: 'write-dir', argv: (p) => ['export', OK, '--html', '--out', p] },
  { flag: '--results', role: 'read-dir-or-none', argv: (p) => ['compare', OK, OK, '--results', p] },
  { flag: '--out', role: 'write-file', argv: (p) => ['compare', OK, OK, '--html', '--out', p] },
  { every: true, flag: 'merge', role: 'read-dir', argv: (p) => ['merge', p] },
  { flag: '--out', role: 'write-dir', argv: (p) => ['merge', OK, '--results', OK, '--out', p] },
  { flag: '--results', role: 'write-dir', argv: (p) => ['merge', OK, '--results', p] },
  { flag: '--baseline', role: 'read-dir', argv: (p) => ['merge', OK, '--results', OK, '--baseline', p] },
];

/** Run the CLI; read-only rows run in their own user and mount namespace with RO and RO_REPO bound read-only. */
function faultline(args: string[], kind: Kind) {
  const cli = [process.execPath, BIN, ...args];
  const bind = 'mount --bind -o ro "$1" "$2" && mount --bind -o ro "$3" "$4" && shift 4 && exec "$@"';
  const [cmd, ...rest] =
    kind === 'read-only'
      ? ['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c', bind, 'sh', RO_SRC, RO, REPO, RO_REPO, ...cli]
      : cli;
  return execa(cmd ?? 'node', rest, {
    cwd: root,
    // GIT_CEILING_DIRECTORIES: a plain directory is not a checkout even if the temp dir sits in one.
    env: { FAULTLINE_CACHE: join(root, 'cache'), GIT_CEILING_DIRECTORIES: tmpdir() },
    reject: false,
    timeout: ROW_TIMEOUT_MS,
    stdin: 'ignore',
  });
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.before(() => {
  // The rows test the compiled CLI: a dist/ older than the sources would test old code.
  if (
    !existsSync(COMPILED) ||
    statSync(COMPILED).mtimeMs < statSync(join(PROJECT_ROOT, 'harness/cli/paths.ts')).mtimeMs
  )
    throw new Error(`${COMPILED} is missing or older than its source: run npx tsc -p tsconfig.json first`);
});

const kindsOf = (row: Row): readonly Kind[] => (row.every ? REFUSED[row.role] : REFUSED[row.role].slice(0, 1));
const cases = ROWS.flatMap((row) => kindsOf(row).map((kind) => ({ row, kind })));

t.test('each path flag x each kind of path its role refuses, through the real CLI', async (t) => {
  // Two at a time: each row is a Node start-up, and the machine has other work.
  const queue = [...cases];
  const worker = async (): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const { row, kind } = c;
      const path = pathOf(kind, row.role);
      const args = row.argv(path);
      const r = await faultline(args, kind);
      const name = `${args[0] ?? ''} ${row.flag} (${row.role}) given ${kind}: ${path}`;
      const lines = r.stderr.trimEnd().split('\n');
      t.equal(r.timedOut, false, `${name}: answers within ${ROW_TIMEOUT_MS / 1000} s`);
      t.equal(r.exitCode, 2, `${name}: exit 2`);
      t.equal(lines.length, 1, `${name}: one line on stderr`, { stderr: r.stderr });
      t.match(lines[0], new RegExp(`^faultline: ${escape(row.flag)} ${escape(path)}\\b.*: pass `), `${name}: names it`);
      t.notMatch(r.stderr, /internal error|\n\s+at /, `${name}: no stack trace`);
      t.equal(r.stdout, '', `${name}: nothing on stdout`);
    }
  };
  await Promise.all([worker(), worker()]);
});

t.test('a refused path leaves nothing behind and a run directory is not made', async (t) => {
  t.same(await readdir(RO_SRC), [], 'no write check left in the read-only directory');
  t.same(await readdir(D), [], 'nothing made in a directory given as a file');
  t.notOk(existsSync(join(root, 'nothing')), 'a missing input path is not created');
});

t.test('what each role takes', async (t) => {
  const takes = (role: PathRole, path: string, what: string): Promise<boolean | Error> =>
    t.resolves(checkPaths([{ flag: '--x', path, role, wants: 'x' }]), `${role} takes ${what}`);
  const missing = join(root, 'made-later', 'x');
  for (const role of ['write-dir', 'write-file', 'read-dir-or-none'] as const)
    await takes(role, missing, 'a missing path');
  t.notOk(existsSync(join(root, 'made-later')), 'checking a missing output does not make it');
  await takes('write-dir', OK, 'an existing writable directory');
  await takes('write-file', F, 'an existing file in a writable directory');
  t.same(await readdir(OK), [], 'the write check leaves nothing behind');
  await takes('read-file', F, 'a file');
  await takes('read-dir', D, 'a directory');
  await takes('read-dir-or-none', D, 'a directory');
  await takes('git-worktrees', REPO, 'a git checkout');
  // Reading needs no write access: /proc takes no new entries, yet its files and directories read.
  await takes('read-file', '/proc/self/status', 'a file where nothing can be written');
  await takes('read-dir', '/proc/self', 'a directory where nothing can be written');
  const flagRoles = new Set(ROWS.map((r) => `${r.flag} ${r.role}`));
  const everyKind = new Set(ROWS.filter((r) => r.every).map((r) => `${r.flag} ${r.role}`));
  t.same(
    [...flagRoles].filter((fr) => !everyKind.has(fr)),
    [],
    'every flag meets every kind its role refuses',
  );
});
