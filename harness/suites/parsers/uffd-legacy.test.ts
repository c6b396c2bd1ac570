import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkName, legacyRunningCheck, parseLegacyUffd } from './uffd-legacy.js';
import { uffdSuite } from '../uffd.js';
import { stressBackingArgs, takesHugetlbfsFile } from '../../selftests/source-info.js';
import type { SelftestProgram } from '../../results/selftests.js';
import type { GuestCommand, SuiteContext } from '../types.js';
import type { Backing } from '../../results/types.js';
import { programOutput } from '../fixtures/program-output.js';

/*
 * Real captures: the uffd-stress that faultline builds from Debian's linux-source-6.1
 * (6.1.192, tools/testing/selftests/vm/userfaultfd.c), run by `faultline run
 * --debian-kernel 6.1 --quick` in a TCG guest of Debian's 6.1.0-57 kernel (2 vCPUs):
 *   uffd-stress.<backing>.6.1-tcg.txt           ./uffd-stress <word> 16|8 4 [file]   exit 0
 *                                               (shmem-private: exit 1, the program rejects the word)
 *   uffd-stress.anon.full.6.1-tcg.txt           the same without --quick: ./uffd-stress anon 64 16, exit 0
 *   uffd-stress.shmem.timeout30.6.1-tcg.txt     --timeout 30: killed in the minor check
 *   uffd-stress.hugetlb.hugepages0.6.1-tcg.txt  --hugepages 0: err() in the area setup, exit 1
 *   uffd-stress.hugetlb-private.hugepages6.6.1-tcg.txt  --hugepages 6 (private): err() in the first bounce, exit 1
 */
const fixture = (name: string): string =>
  readFileSync(join(import.meta.dirname, '..', 'fixtures', 'uffd', name), 'utf8');
const source61 = readFileSync(
  join(import.meta.dirname, '..', '..', 'selftests', 'fixtures', 'userfaultfd.6.1.192.c'),
  'utf8',
);

/** The manifest entry faultline writes for 6.1's stress program, from the real source. */
const stress61: SelftestProgram = {
  name: 'uffd-stress',
  status: 'built',
  path: '/cache/bin/uffd-stress',
  source: 'userfaultfd.c',
  backingArgs: stressBackingArgs(source61),
  hugetlbfsFileArg: takesHugetlbfsFile(source61),
};
const ctx61 = (backings: Backing[], quick = true): SuiteContext => ({
  backings,
  smp: 2,
  memMiB: 1024,
  hugepages2m: 64,
  quick,
  programs: [
    { name: 'uffd-unit-tests', status: 'unavailable', reason: 'the tree has no uffd-unit-tests (added in 6.4)' },
    stress61,
  ],
});
/** The command faultline's plan gives for `b` on 6.1 (what produced the capture). */
const cmdFor = (b: Backing): GuestCommand => {
  const c = uffdSuite.plan(ctx61([b])).find((x) => x.backing === b);
  if (!c) throw new Error(`no command for ${b}`);
  return c;
};
const statuses = (r: { subtests: { id: string; status: string }[] }): string[] =>
  r.subtests.map((s) => `${s.id} ${s.status}`);

t.test("plan on 6.1: the program's own words, shared hugetlb on a hugetlbfs file and last", async (t) => {
  t.same(stress61.backingArgs, {
    anon: 'anon',
    'hugetlb-private': 'hugetlb',
    hugetlb: 'hugetlb_shared',
    shmem: 'shmem',
  });
  const cmds = uffdSuite.plan(ctx61(['hugetlb', 'shmem', 'anon'])).filter((c) => c.program === 'uffd-stress');
  t.same(
    cmds.map((c) => [c.backing, c.args.join(' ')]),
    [
      ['anon', 'anon 16 4'],
      ['shmem', 'shmem 16 4'],
      ['shmem-private', 'shmem-private 16 4'],
      ['hugetlb-private', 'hugetlb 8 4'],
      ['hugetlb', 'hugetlb_shared 8 4 /dev/hugepages/uffd-stress-hugetlb'],
    ],
  );
  t.same(
    cmds.map((c) => c.label),
    [
      'uffd-stress.anon',
      'uffd-stress.shmem',
      'uffd-stress.shmem-private',
      'uffd-stress.hugetlb-private',
      'uffd-stress.hugetlb',
    ],
  );
  t.same(
    cmds.map((c) => c.leaves ?? []),
    [[], [], [], [], ['/dev/hugepages/uffd-stress-hugetlb']],
    'the hugetlbfs file is removed after the run',
  );
});

t.test('every check 6.1 runs in each mode is a subtest uffd-stress/<check>/<backing>', async (t) => {
  const anon = uffdSuite.parse(
    cmdFor('anon'),
    programOutput(fixture('uffd-stress.anon.6.1-tcg.txt'), 0),
    ctx61(['anon']),
  );
  t.equal(anon.status, 'pass');
  t.same(statuses(anon), [
    'uffd-stress/stress/anon pass',
    'uffd-stress/pagemap-wp-4k/anon pass',
    'uffd-stress/pagemap-wp-2m/anon pass',
    'uffd-stress/zeropage/anon pass',
    'uffd-stress/signal/anon pass',
    'uffd-stress/events/anon pass',
  ]);
  t.ok(anon.subtests.every((s) => s.backing === 'anon' && s.program === 'uffd-stress' && s.suite === 'uffd'));
  t.same(
    anon.subtests.map((s) => s.name),
    ['stress', 'pagemap-wp-4k', 'pagemap-wp-2m', 'zeropage', 'signal', 'events'],
  );

  const shmem = uffdSuite.parse(
    cmdFor('shmem'),
    programOutput(fixture('uffd-stress.shmem.6.1-tcg.txt'), 0),
    ctx61(['shmem']),
  );
  t.same(statuses(shmem), [
    'uffd-stress/stress/shmem pass',
    'uffd-stress/zeropage/shmem pass',
    'uffd-stress/signal/shmem pass',
    'uffd-stress/events/shmem pass',
    'uffd-stress/minor/shmem pass',
  ]);
  // "hugetlb" is hugetlb_shared there: it runs the minor check; the private one does not.
  const hug = uffdSuite.parse(
    cmdFor('hugetlb'),
    programOutput(fixture('uffd-stress.hugetlb.6.1-tcg.txt'), 0),
    ctx61(['hugetlb']),
  );
  t.same(
    hug.subtests.map((s) => s.id),
    ['stress', 'zeropage', 'signal', 'events', 'minor'].map((c) => `uffd-stress/${c}/hugetlb`),
  );
  const priv = uffdSuite.parse(
    cmdFor('hugetlb-private'),
    programOutput(fixture('uffd-stress.hugetlb-private.6.1-tcg.txt'), 0),
    ctx61(['hugetlb']),
  );
  t.same(
    priv.subtests.map((s) => s.id),
    ['stress', 'zeropage', 'signal', 'events'].map((c) => `uffd-stress/${c}/hugetlb-private`),
  );
  t.ok([...hug.subtests, ...priv.subtests].every((s) => s.status === 'pass'));
});

t.test('a full run (16 bounces, every mode) is counted bounce by bounce', async (t) => {
  const cmd = uffdSuite.plan(ctx61(['anon'], false)).find((c) => c.program === 'uffd-stress');
  t.same(cmd?.args, ['anon', '64', '16']);
  if (!cmd) return;
  const r = uffdSuite.parse(
    cmd,
    programOutput(fixture('uffd-stress.anon.full.6.1-tcg.txt'), 0),
    ctx61(['anon'], false),
  );
  t.equal(r.status, 'pass');
  t.same(
    r.subtests.map((s) => s.name),
    ['stress', 'pagemap-wp-4k', 'pagemap-wp-2m', 'zeropage', 'signal', 'events'],
  );
  // The same output from a command that asked for more bounces than it reports is not a pass.
  const more = uffdSuite.parse(
    { ...cmd, args: ['anon', '64', '32'] },
    programOutput(fixture('uffd-stress.anon.full.6.1-tcg.txt'), 0),
    ctx61(['anon'], false),
  );
  t.equal(more.subtests[0]?.status, 'error');
});

t.test("a backing 6.1's program has no word for is a skip naming the program, never a fail", async (t) => {
  const r = uffdSuite.parse(
    cmdFor('shmem-private'),
    programOutput(fixture('uffd-stress.shmem-private.6.1-tcg.txt'), 1),
    ctx61(['shmem']),
  );
  t.equal(r.status, 'skip');
  t.same(statuses(r), ['uffd-stress/stress/shmem-private skip']);
  t.equal(r.subtests[0]?.backing, 'shmem-private');
  t.equal(
    r.reason,
    "uffd-stress, built from the tree's userfaultfd.c, has no test type for shmem-private (it accepts anon, hugetlb, hugetlb_shared, shmem)",
  );
});

t.test('killed at its deadline in the minor check: that check is an error, the earlier ones passed', async (t) => {
  const text = fixture('uffd-stress.shmem.timeout30.6.1-tcg.txt');
  const r = uffdSuite.parse(
    cmdFor('shmem'),
    programOutput(text, null, { timedOut: true, durationMs: 30_258 }),
    ctx61(['shmem']),
  );
  t.equal(r.status, 'error');
  t.same(statuses(r), [
    'uffd-stress/stress/shmem pass',
    'uffd-stress/zeropage/shmem pass',
    'uffd-stress/signal/shmem pass',
    'uffd-stress/events/shmem pass',
    'uffd-stress/minor/shmem error',
  ]);
  t.equal(r.subtests.at(-1)?.reason, 'timed out after 30 s during the minor check');
  t.equal(r.reason, 'minor: timed out after 30 s during the minor check');
  // Killed by a signal (no deadline): the same check, an error too.
  const killed = parseLegacyUffd(text, { exitCode: null, timedOut: false, durationMs: 1 }, 4);
  t.same(killed.at(-1), {
    check: 'minor',
    label: 'minor faults',
    outcome: 'error',
    reason: 'killed by a signal during the minor check',
  });
});

t.test('err() in the area setup and in the first bounce: the stress check fails with the ERROR line', async (t) => {
  const setup = uffdSuite.parse(
    cmdFor('hugetlb'),
    programOutput(fixture('uffd-stress.hugetlb.hugepages0.6.1-tcg.txt'), 1),
    ctx61(['hugetlb']),
  );
  t.equal(setup.status, 'fail');
  t.same(
    setup.subtests.map((s) => [s.id, s.status, s.reason]),
    [['uffd-stress/stress/hugetlb', 'fail', 'ERROR: mmap of hugetlbfs file failed (errno=12, line=283)']],
  );
  const bounce = uffdSuite.parse(
    cmdFor('hugetlb-private'),
    programOutput(fixture('uffd-stress.hugetlb-private.hugepages6.6.1-tcg.txt'), 1),
    ctx61(['hugetlb']),
  );
  t.same(
    bounce.subtests.map((s) => [s.id, s.status, s.reason]),
    [['uffd-stress/stress/hugetlb-private', 'fail', 'ERROR: UFFDIO_COPY error: -12 (errno=12, line=699)']],
  );
  t.equal(bounce.reason, 'stress: ERROR: UFFDIO_COPY error: -12 (errno=12, line=699)');
});

t.test('the exit status decides the check the program ended in', async (t) => {
  const text = fixture('uffd-stress.anon.6.1-tcg.txt');
  // userfaultfd_events_test() returns non-zero when its fault count is off: main() exits 1 after the report.
  const failed = parseLegacyUffd(text, { exitCode: 1, timedOut: false, durationMs: 1 }, 4);
  t.same(
    failed.slice(0, -1).map((c) => c.outcome),
    ['pass', 'pass', 'pass', 'pass', 'pass'],
  );
  t.equal(failed.at(-1)?.outcome, 'fail');
  t.match(
    failed.at(-1)?.reason,
    /^exit 1 after the check's report "testing events \(fork, remap, remove\): userfaults: 4096 missing \(4096\) 4096 wp \(4096\)"/,
  );
  t.equal(parseLegacyUffd(text, { exitCode: 4, timedOut: false, durationMs: 1 }, 4).at(-1)?.outcome, 'skip');
  t.equal(parseLegacyUffd(text, { exitCode: 139, timedOut: false, durationMs: 1 }, 4).at(-1)?.outcome, 'error');
  // More bounces asked for than reported, and the program said it succeeded: not a pass.
  const short = parseLegacyUffd(
    fixture('uffd-stress.hugetlb.6.1-tcg.txt'),
    { exitCode: 0, timedOut: false, durationMs: 1 },
    16,
  );
  t.same(short[0], { check: 'stress', outcome: 'error', reason: 'went on to the next check without reporting stress' });
});

t.test('killed at any point of a real run: never a pass for the check it was in', async (t) => {
  const text = fixture('uffd-stress.shmem.6.1-tcg.txt');
  for (let cut = 0; cut < text.length; cut += 7) {
    const checks = parseLegacyUffd(text.slice(0, cut), { exitCode: null, timedOut: true, durationMs: 600_000 }, 4);
    const last = checks.at(-1);
    t.equal(last?.outcome, 'error', `cut at ${cut}: ${last?.check ?? ''} is an error`);
    t.ok(
      checks.slice(0, -1).every((c) => c.outcome === 'pass'),
      `cut at ${cut}: the checks before it passed`,
    );
    t.equal(last?.check, legacyRunningCheck(text.slice(0, cut)), `cut at ${cut}: runningSubtest names the same check`);
  }
});

t.test('runningSubtest: the check userfaultfd.c was in when it had printed a prefix of its output', async (t) => {
  const text = fixture('uffd-stress.anon.6.1-tcg.txt');
  const cmd = cmdFor('anon');
  const at = (marker: string): string | undefined =>
    uffdSuite.runningSubtest?.(cmd, text.slice(0, text.indexOf(marker) + marker.length), ctx61(['anon']));
  t.equal(
    uffdSuite.runningSubtest?.(cmd, '', ctx61(['anon'])),
    'uffd-stress/stress/anon',
    'before any output: the setup belongs to the stress check',
  );
  t.equal(at('bounces: 2, mode:'), 'uffd-stress/stress/anon');
  t.equal(at('testing uffd-wp with pagemap (pgsize=2097152): '), 'uffd-stress/pagemap-wp-2m/anon');
  t.equal(at('testing signal delivery: '), 'uffd-stress/signal/anon');
  t.equal(at('testing signal deliv'), 'uffd-stress/zeropage/anon', 'a half-printed line does not start the next check');
  t.equal(uffdSuite.runningSubtest?.(cmd, text, ctx61(['anon'])), 'uffd-stress/events/anon');
});

t.test('check names: the known checks by meaning, others of other trees by their words', async (t) => {
  t.equal(checkName('UFFDIO_ZEROPAGE'), 'zeropage');
  t.equal(checkName('events (fork, remap, remove)'), 'events');
  t.equal(checkName('collapse of uffd memory into PMD-mapped THPs'), 'minor-collapse');
  t.equal(checkName('uffd-wp with pagemap (pgsize=4096)'), 'pagemap-wp-4k');
  t.equal(checkName('something new (x/y)'), 'something-new-x-y');
});
