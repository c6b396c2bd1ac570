import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backing } from '../results/types.js';
import { unitTestCases } from '../selftests/source-info.js';
import type { GuestCommand, SuiteContext } from './types.js';
import { uffdSuite } from './uffd.js';
import { isolateUnit, plannedUnitSubtests, resumeUnit, unitRunningSubtest } from './uffd-unit.js';

// Real inputs: the test table of Debian 6.12.117's uffd-unit-tests.c, and the output of a
// full uffd-unit-tests run in a faultline guest on that kernel (TCG).
const source = readFileSync(
  join(import.meta.dirname, '..', 'selftests', 'fixtures', 'uffd-unit-tests.6.12.117.c'),
  'utf8',
);
const full = readFileSync(join(import.meta.dirname, 'fixtures', 'uffd', 'uffd-unit-tests.full.6.12-tcg.txt'), 'utf8');
const ctx = (backings: Backing[]): SuiteContext => ({
  backings,
  smp: 2,
  memMiB: 1024,
  hugepages2m: 64,
  quick: false,
  programs: [{ name: 'uffd-unit-tests', status: 'built', path: '/x', cases: unitTestCases(source) }],
});
const fullCmd: GuestCommand = { program: 'uffd-unit-tests', args: [], timeoutSec: 1200, label: 'uffd-unit-tests' };
const exitOk = { exitCode: 0, timedOut: false, durationMs: 1 };

t.test('the planned subtests from the source are exactly those a full run reports (API checks aside)', async (t) => {
  const all: Backing[] = ['anon', 'shmem', 'hugetlb'];
  const reported = uffdSuite
    .parse(fullCmd, { output: full, ...exitOk }, ctx(all))
    .subtests.map((s) => s.id)
    .filter((id) => id.split('/').length === 3);
  t.same(
    plannedUnitSubtests(fullCmd, ctx(all))?.map((p) => p.id),
    reported,
  );
  t.ok(reported.length > 50, `${reported.length} subtests`);
  const hugetlbOnly = plannedUnitSubtests(fullCmd, ctx(['hugetlb'])) ?? [];
  t.ok(
    hugetlbOnly.every((p) => p.backing === 'hugetlb' || p.backing === 'hugetlb-private'),
    'only the selected backings',
  );
  t.same(
    plannedUnitSubtests({ ...fullCmd, args: ['-f', 'minor'] }, ctx(all))?.map((p) => p.id),
    [
      'uffd-unit-tests/minor/shmem',
      'uffd-unit-tests/minor/hugetlb',
      'uffd-unit-tests/minor-wp/shmem',
      'uffd-unit-tests/minor-wp/hugetlb',
      'uffd-unit-tests/minor-collapse/shmem',
    ],
    '-f filters by substring, as the program does',
  );
  t.equal(
    plannedUnitSubtests(fullCmd, { ...ctx(all), programs: [] }),
    undefined,
    'no test table: the suite cannot tell',
  );
});

t.test('died at "events on anon": resume runs every test it had not reached, in order', async (t) => {
  // A real run that hit the intermittent hard error seen on this host: uffd-unit-tests exits at its first err().
  const died = readFileSync(
    join(import.meta.dirname, 'fixtures', 'uffd', 'uffd-unit-tests.died-at-events.6.12-tcg.txt'),
    'utf8',
  );
  const parsed = uffdSuite.parse(
    fullCmd,
    { output: died, exitCode: 1, timedOut: false, durationMs: 1 },
    ctx(['anon', 'shmem', 'hugetlb']),
  );
  t.equal(parsed.status, 'error');
  t.match(parsed.subtests.at(-1), {
    id: 'uffd-unit-tests/events/anon',
    status: 'error',
    reason: /UFFDIO_COPY error: -2/,
  });
  const plan = resumeUnit(fullCmd, new Set(parsed.subtests.map((s) => s.id)), ctx(['anon', 'shmem', 'hugetlb']));
  t.same(
    plan.commands.map((c) => c.args),
    [
      ['-f', 'events'],
      ['-f', 'events-wp'],
      ['-f', 'poison'],
    ],
  );
  t.same(
    plan.commands.map((c) => c.label),
    ['uffd-unit-tests.events', 'uffd-unit-tests.events-wp', 'uffd-unit-tests.poison'],
  );
  t.equal(plan.unreached.length, 14, 'events on 4 more memory types, events-wp and poison on 5 each');
  t.notOk(
    plan.unreached.some((u) => u.id === 'uffd-unit-tests/events/anon'),
    'the subtest that died was reached',
  );
});

t.test('the running subtest is the last "Testing X on M" line printed; a retry runs -f X', async (t) => {
  const upTo = full.slice(0, full.indexOf('Testing minor-wp on shmem... ') + 30);
  t.equal(unitRunningSubtest(upTo), 'uffd-unit-tests/minor-wp/shmem');
  t.equal(unitRunningSubtest('Testing UFFDIO_API (with syscall)... '), 'uffd-unit-tests/UFFDIO_API-with-syscall');
  t.equal(unitRunningSubtest(''), undefined);
  t.same(isolateUnit(fullCmd, 'uffd-unit-tests/events/anon').args, ['-f', 'events']);
  t.same(
    isolateUnit(fullCmd, 'uffd-unit-tests/UFFDIO_API-with-syscall'),
    fullCmd,
    'the API checks run only unfiltered',
  );
});

t.test(
  'a subtest that crashed the kernel is never rerun by a resume (panic_on_warn in wp-fork on shmem)',
  async (t) => {
    const c = ctx(['shmem']);
    const planned = plannedUnitSubtests(fullCmd, c) ?? [];
    const upTo = (id: string) => new Set(planned.slice(0, planned.findIndex((p) => p.id === id) + 1).map((p) => p.id));
    // The panic was charged to wp-fork on shmem: shmem-private of the same test is still unreached.
    let crashed = new Set(['uffd-unit-tests/wp-fork/shmem']);
    let plan = resumeUnit(fullCmd, upTo('uffd-unit-tests/wp-fork/shmem'), c, crashed);
    t.same(plan.commands[0]?.args, ['-f', 'wp-fork-with-event'], 'resumes after the crashed test');
    t.notOk(
      plan.commands.some((cmd) => 'wp-fork'.includes(cmd.args[1] ?? '')),
      'no filter that selects wp-fork again',
    );
    t.match(
      plan.unreached.find((u) => u.id === 'uffd-unit-tests/wp-fork/shmem-private'),
      {
        reason: /^not run: uffd-unit-tests\/wp-fork\/shmem crashed the kernel/,
      },
    );
    // The resume then crashed in wp-fork-with-event on shmem: it is not run a second time either.
    crashed = new Set([...crashed, 'uffd-unit-tests/wp-fork-with-event/shmem']);
    const reached = new Set([...upTo('uffd-unit-tests/wp-fork/shmem'), 'uffd-unit-tests/wp-fork-with-event/shmem']);
    plan = resumeUnit(fullCmd, reached, c, crashed);
    t.same(plan.commands[0]?.args, ['-f', 'wp-fork-pin'], 'the next test after the second crash');
    t.notOk(
      plan.commands.some((cmd) => ['wp-fork', 'wp-fork-with-event'].some((n) => n.includes(cmd.args[1] ?? ''))),
      'neither crashed test is selected',
    );
    t.equal(plan.unreached.filter((u) => u.reason !== undefined).length, 2, 'shmem-private of both crashed tests');
  },
);

t.test(
  'a crash on a memory type the run does not select still stops that test (zeropage on anon, --backing shmem)',
  async (t) => {
    const c = ctx(['shmem']);
    const cmd: GuestCommand = { ...fullCmd, args: ['-f', 'zeropage'], label: 'uffd-unit-tests.zeropage' };
    const plan = resumeUnit(
      cmd,
      new Set(['uffd-unit-tests/zeropage/anon']),
      c,
      new Set(['uffd-unit-tests/zeropage/anon']),
    );
    t.same(plan.commands, [], 'no -f zeropage again: it would run anon first and crash again');
    t.same(
      plan.unreached.map((u) => u.id),
      ['uffd-unit-tests/zeropage/shmem', 'uffd-unit-tests/zeropage/shmem-private'],
    );
    t.ok(plan.unreached.every((u) => /zeropage\/anon crashed the kernel/.test(u.reason ?? '')));
  },
);
