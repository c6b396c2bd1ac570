import t from 'tap';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandBuilder, CommandRunner } from '../revision/command.js';
import { RevisionTester } from '../revision/tester.js';
import type { RunRecord } from '../results/types.js';
import { JudgedTester } from './judge.js';
import type { Evaluation } from './spec.js';

/**
 * JudgedTester's rule for runs a known issue explains (--known-issues): such a run did not test
 * the bisected failure, so the step runs again, at most twice more, and a revision where the
 * known issue keeps striking is untestable (skipped), never good or bad. Real processes: the
 * test command counts its runs in the worktree and exits 3 (what the judge reads as a run a known
 * issue explains, as spec.test.ts shows evaluateRecord does on a real record) the first K times.
 */
const root = await mkdtemp(join(tmpdir(), 'faultline-judge-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

const judge = (r: RunRecord): Evaluation => {
  const code = r.programs[0]?.exitCode;
  if (code === 3) return { kind: 'known', detail: 'known issue flake-x: error' };
  return code === 0 ? { kind: 'pass', detail: 'exit 0' } : { kind: 'fail', detail: `exit ${String(code)}` };
};

/** A tester whose test exits 3 on its first `knownRuns` runs in `dir`, then `then`. */
async function tester(name: string, knownRuns: number, then: number) {
  const dir = join(root, name);
  const script = `n=$(cat runs 2>/dev/null || echo 0); echo $((n+1)) > runs; [ "$n" -lt ${knownRuns} ] && exit 3; exit ${then}`;
  await mkdir(dir, { recursive: true });
  const revision = new RevisionTester(
    new CommandBuilder({ outRoot: join(dir, 'out') }),
    new CommandRunner({ test: ['sh', '-c', script], program: 'test-cmd' }),
  );
  return {
    dir,
    judged: new JudgedTester(revision, judge),
    runs: async () => Number(await readFile(join(dir, 'runs'), 'utf8')),
  };
}

t.test('a known issue striking twice: the step runs again and answers', async (t) => {
  const k = await tester('twice', 2, 1);
  const out = await k.judged.test('c0ffee', k.dir, { runs: 1, label: 'step 1' });
  t.match(out, { kind: 'runs', runs: [{ result: 'fail', detail: 'exit 1' }] }, 'one answer: the bisected failure');
  t.equal(await k.runs(), 3, 'two runs the known issue took, then the one that answered');
});

t.test('a known issue striking every time: untestable after three runs, neither good nor bad', async (t) => {
  const k = await tester('always', 100, 0);
  const out = await k.judged.test('c0ffee', k.dir, { runs: 2, label: 'step 1' });
  t.match(out, {
    kind: 'untestable',
    detail: /^3 runs hit a known issue, not the bisected failure \(last: known issue flake-x: error\)$/,
  });
  t.equal(await k.runs(), 3, 'bounded: no fourth run');
});

t.test('runs asked for are all answered; known ones do not count among them', async (t) => {
  const k = await tester('mixed', 1, 0);
  const out = await k.judged.test('c0ffee', k.dir, { runs: 2, label: 'step 1' });
  t.match(out, { kind: 'runs', runs: [{ result: 'pass' }, { result: 'pass' }] });
  t.equal(await k.runs(), 3);
});
