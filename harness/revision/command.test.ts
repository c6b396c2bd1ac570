import t from 'tap';
import { join } from 'node:path';
import { CommandRunner } from './command.js';

// A bisect or series `--test` command that prints KTAP: here `cat` of a real capture
// (harness/suites/fixtures/program/host-isolation.c in a Debian 6.12 guest), so the runner
// parses exactly what that program printed.
const capture = join(import.meta.dirname, '..', 'suites', 'fixtures', 'program', 'host-isolation.anon.txt');

t.test("a --test command's KTAP failure carries the diagnostics before it as its reason", async (t) => {
  const runner = new CommandRunner({ test: ['cat', capture], program: 'host-isolation' });
  const { record } = await runner.run({
    rev: 'HEAD',
    worktree: import.meta.dirname,
    artifact: undefined,
    index: 0,
    runId: 'r0',
  });
  t.same(
    record.subtests.map((s) => [s.id, s.status, s.reason]),
    [
      [
        'host-isolation/guest-isolated-from-host',
        'fail',
        'reached host loopback service: 10.0.2.2:8123 answered "HTTP/1.0 200 OK" | ' +
          'connecting to 10.0.2.2:8123 from the guest succeeded | backing anon',
      ],
    ],
  );
});
