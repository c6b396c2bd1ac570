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

// Real output of fixtures/program/host-isolation.c in a faultline guest (Debian 6.12.118, TCG)
// with a web server on the host's 127.0.0.1:8123: `faultline run --program host-isolation.c
// --backing anon --retries 0`. The program says why it failed only in "# " lines.
t.test("a KTAP failure's reason is the diagnostic lines printed before it", async (t) => {
  const suite = programSuite(['host-isolation'], 60);
  const cmd: GuestCommand = { program: 'host-isolation', args: ['anon'], backing: 'anon', timeoutSec: 60, label: '' };
  const p = suite.parse(
    cmd,
    { output: capture('host-isolation.anon.txt'), exitCode: 1, timedOut: false, durationMs: 812 },
    { backings: ['anon'], smp: 2, memMiB: 1024, hugepages2m: 64, quick: false, programs: [] },
  );
  t.equal(p.status, 'fail');
  t.same(
    p.subtests.map((s) => [s.id, s.status, s.reason]),
    [
      [
        'host-isolation/guest-isolated-from-host/anon',
        'fail',
        'reached host loopback service: 10.0.2.2:8123 answered "HTTP/1.0 200 OK" | ' +
          'connecting to 10.0.2.2:8123 from the guest succeeded | backing anon',
      ],
    ],
    'the summary, TAP and JUnit say what the guest reached',
  );
});
