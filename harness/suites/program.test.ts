import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { programSuite } from './program.js';
import type { GuestCommand, ProgramOutput } from './types.js';

// Real outputs of harness/e2e/faults/{crashes,passes}.c in a faultline guest (Debian 6.12.117,
// TCG): `faultline run --program crashes.c --program passes.c --backing anon --retries 0`.
const capture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', 'program', name), 'utf8');
const suite = programSuite(['crashes', 'passes'], 60);

function parse(program: string, file: string, end: Pick<ProgramOutput, 'exitCode' | 'signal'>) {
  const cmd: GuestCommand = { program, args: ['anon'], backing: 'anon', timeoutSec: 60, label: `${program}.anon` };
  return suite.parse(
    cmd,
    { output: capture(file), timedOut: false, durationMs: 126, ...end },
    {
      backings: ['anon'],
      smp: 2,
      memMiB: 1024,
      hugepages2m: 64,
      quick: false,
      programs: [],
    },
  );
}

t.test('a KTAP program killed mid-way: its result so far, and the crash as a result named by its signal', async (t) => {
  const p = parse('crashes', 'crashes.anon.txt', { exitCode: null, signal: 'SIGSEGV' });
  t.equal(p.status, 'error');
  t.same(
    p.subtests.map((s) => [s.id, s.status, s.reason]),
    [
      ['crashes/before the crash/anon', 'pass', undefined],
      ['crashes/exit status/anon', 'error', 'crashes was killed by SIGSEGV'],
    ],
    'TAP and JUnit show the crash, not only the pass before it',
  );
  const unnamed = parse('crashes', 'crashes.anon.txt', { exitCode: null });
  t.equal(unnamed.subtests.at(-1)?.reason, 'crashes was killed by a signal', 'a signal the transport did not name');
});

t.test('a short plan with exit 0 is still a result of its own', async (t) => {
  const p = parse('crashes', 'crashes.anon.txt', { exitCode: 0 });
  t.match(p.subtests.at(-1), { name: 'exit status', status: 'error', reason: 'planned 2 tests but 1 reported' });
});

t.test('results that explain the exit code stand alone; an exit code they do not explain is added', async (t) => {
  const ok = parse('passes', 'passes.anon.txt', { exitCode: 0 });
  t.equal(ok.status, 'pass');
  t.same(
    ok.subtests.map((s) => s.name),
    ['backing in argv', 'backing in FAULTLINE_BACKING'],
  );
  const exit1 = parse('passes', 'passes.anon.txt', { exitCode: 1 });
  t.equal(exit1.status, 'fail');
  t.match(exit1.subtests.at(-1), { id: 'passes/exit status/anon', status: 'fail', reason: 'exit 1' });
});
