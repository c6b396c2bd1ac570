import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BisectRefusedError, runBisect } from './bisect.js';
import { JudgedTester } from './judge.js';
import { git } from '../testkit/toy-repo.js';
import { CommandBuilder, CommandRunner, type CommandArtifact } from '../revision/command.js';
import { GuestRunner, type RunSettings } from '../revision/kernel.js';
import { RevisionTester } from '../revision/tester.js';
import type { RevisionRunner } from '../revision/types.js';

/**
 * A --program that does not compile against a revision's uapi headers is not the revision's
 * build breaking: bisect skips it and says why. A tiny "kernel tree" with a headers_install
 * target and one uapi header stands in for the kernel; the program is compiled for real
 * (buildUserProgram, static gcc) by the kernel runner's prepare step, and the host runs the test.
 */

const HEADER = (define: string, value: number): string => `#define ${define} ${value}\n`;
const MAKEFILE = `headers_install:
\tmkdir -p $(INSTALL_HDR_PATH)/include/linux
\tcp include/uapi/linux/toy.h $(INSTALL_HDR_PATH)/include/linux/toy.h
`;
/** Generation i's header: 1 and 2 rename the define (the program cannot compile), 4 on: a wrong value. */
const generations = [
  HEADER('TOY_ANSWER', 42),
  HEADER('TOY_ANSWER_RENAMED', 42),
  HEADER('TOY_ANSWER_RENAMED', 42) + '/* still renamed */\n',
  HEADER('TOY_ANSWER', 42),
  HEADER('TOY_ANSWER', 41),
  HEADER('TOY_ANSWER', 41) + '/* tail */\n',
];

/** The toy tree: one commit per generation of the header, oldest first. */
async function createToyTree(root: string): Promise<{ repo: string; hashes: string[] }> {
  const repo = join(root, 'tree');
  await mkdir(join(repo, 'include', 'uapi', 'linux'), { recursive: true });
  await git(repo, ['init', '-q', '-b', 'main']);
  await writeFile(join(repo, 'Makefile'), MAKEFILE);
  const hashes: string[] = [];
  for (const [i, header] of generations.entries()) {
    await writeFile(join(repo, 'include', 'uapi', 'linux', 'toy.h'), header);
    await git(repo, ['add', '-A']);
    await git(repo, ['commit', '-q', '-m', `toy: generation ${i}`]);
    hashes.push(await git(repo, ['rev-parse', 'HEAD']));
  }
  return { repo, hashes };
}

/**
 * The program compiled for real by the kernel runner's prepare step, the test run on the host:
 * a step fails when the program exits non-zero.
 */
function hostTester(root: string, program: string): JudgedTester<CommandArtifact> {
  const settings: RunSettings = {
    suites: [],
    programs: [program],
    backings: ['anon'],
    memMiB: 1024,
    smp: 1,
    accel: 'tcg',
    guestRam: 'anon',
    timeoutSec: 60,
    bootTimeoutSec: 60,
    resultsRoot: join(root, 'runs'),
    quick: true,
    keepVm: false,
    hugepages2m: 0,
    hugepages1g: 0,
  };
  const guest = new GuestRunner(settings);
  // The header's value decides the host test (what the program would return in a guest).
  const host = new CommandRunner({ test: ['grep', '-q', 'TOY_ANSWER 42', 'include/uapi/linux/toy.h'], program: 'toy' });
  const runner: RevisionRunner<CommandArtifact> = {
    prepare: (rev, worktree) => guest.prepare(rev, worktree),
    run: (ctx) => host.run(ctx),
    describe: () => `${guest.describe()} (on the host)`,
    settings: () => ({}),
  };
  return new JudgedTester(new RevisionTester(new CommandBuilder({ outRoot: join(root, 'out') }), runner), (record) => ({
    kind: record.programs[0]?.exitCode === 0 ? 'pass' : 'fail',
    detail: `exit ${String(record.programs[0]?.exitCode)}`,
  }));
}

t.test('bisect --program: a revision the program does not compile against is skipped, not a build break', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-bisect-program-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  process.env['FAULTLINE_CACHE'] = join(root, 'cache');
  const { repo, hashes } = await createToyTree(root);
  const program = join(root, 'toy-repro.c');
  await writeFile(program, '#include <linux/toy.h>\n\nint main(void)\n{\n\treturn TOY_ANSWER == 42 ? 0 : 1;\n}\n');

  const tester = hostTester(root, program);
  const opts = { repo, spec: '--program toy-repro.c', policy: { endpointRuns: 1 } };

  const wt = join(root, 'probe');
  await git(repo, ['worktree', 'add', '-q', '--detach', wt, hashes[1] ?? '']);
  t.match(
    await tester.test(hashes[1] ?? '', wt, { runs: 1, label: 'probe' }),
    {
      kind: 'program-broken',
      detail:
        /^--program .*toy-repro\.c does not compile: .*toy-repro\.c:5:\d+: error: 'TOY_ANSWER' undeclared .* \(at [0-9a-f]{12}\)$/,
    },
    'one line: file:line and the first error, and the revision',
  );
  await git(repo, ['worktree', 'remove', '--force', wt]);

  const refused = await runBisect(
    { ...opts, good: hashes[1] ?? '', bad: 'main', resultsDir: join(root, 'refused') },
    tester,
  ).catch((e: unknown) => e);
  t.ok(refused instanceof BisectRefusedError);
  t.match(
    (refused as Error).message,
    /^good revision [0-9a-f]{12} \("toy: generation 1"\) cannot be tested: program does not compile here \(the kernel builds\): --program .*toy-repro\.c does not compile: .*'TOY_ANSWER' undeclared/,
  );

  const r = await runBisect({ ...opts, good: hashes[0] ?? '', bad: 'main', resultsDir: join(root, 'results') }, tester);
  t.equal(r.outcome, 'found');
  t.equal(r.culprit?.hash, hashes[4], 'the commit that changed the value');
  // Bisect must land on generation 1 or 2 (it does: git's first midpoint of 0..5 is generation 2),
  // else the skip is never exercised and the checks below would pass on no step at all.
  const skipped = r.steps.filter((x) => x.verdict === 'skip');
  t.ok(skipped.length > 0, 'bisect visited a revision the program does not compile against');
  for (const s of skipped) {
    t.ok(s.rev === hashes[1] || s.rev === hashes[2], `${s.subject}: only a renamed-define revision is skipped`);
    t.match(s.reason, /^program does not compile here \(the kernel builds\): /, `${s.subject}: skipped, and why`);
  }
  t.equal(r.stats.skips, skipped.length);
  t.notOk(
    r.steps.some((s) => (s.rev === hashes[1] || s.rev === hashes[2]) && s.verdict !== 'skip'),
    'a revision the program does not compile against is never good or bad',
  );
});
