import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseUffdUnitTests } from './parsers/uffd-unit.js';
import { parseKtap } from './parsers/ktap.js';
import { uffdSuite, selectsBacking, stressArgs, QUICK_UNIT_FILTERS } from './uffd.js';
import type { GuestCommand, SuiteContext } from './types.js';
import type { Backing } from '../results/types.js';
import type { SelftestProgram } from '../results/selftests.js';
import { stressBackingArgs } from '../selftests/source-info.js';
import { programOutput } from './fixtures/program-output.js';

// Fixtures are real outputs: "6.12-tcg" from Debian's 6.12.117 kernel in a faultline
// guest under TCG, "host-6.18" from the same static binaries on this machine's kernel.
const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', 'uffd', name), 'utf8');

const ctx = (backings: Backing[], quick = false): SuiteContext => ({
  backings,
  smp: 2,
  memMiB: 1024,
  hugepages2m: 64,
  quick,
  programs: [],
});
const unitCmd: GuestCommand = { program: 'uffd-unit-tests', args: [], timeoutSec: 60, label: 'uffd-unit-tests' };

t.test('uffd-unit-tests: every "Testing X on M..." line becomes a subtest with its memory type', async (t) => {
  const p = parseUffdUnitTests(fixture('uffd-unit-tests.zeropage.6.12-tcg.txt'));
  t.same(
    p.subtests.map((s) => `${s.test}/${s.mem}/${s.outcome}`),
    [
      'zeropage/anon/pass',
      'zeropage/shmem/pass',
      'zeropage/shmem-private/pass',
      'zeropage/hugetlb/pass',
      'zeropage/hugetlb-private/pass',
    ],
  );
  t.same(p.summary, { pass: 5, skip: 0, fail: 0, total: 5 });

  const minor = parseUffdUnitTests(fixture('uffd-unit-tests.minor.6.12-tcg.txt'));
  t.same(
    minor.subtests.map((s) => `${s.test}/${s.mem}`),
    ['minor/shmem', 'minor/hugetlb', 'minor-wp/shmem', 'minor-wp/hugetlb', 'minor-collapse/shmem'],
  );
  const sigbus = parseUffdUnitTests(fixture('uffd-unit-tests.sigbus.6.12-tcg.txt'));
  t.equal(sigbus.subtests.length, 10);
  t.equal(sigbus.summary?.total, 10);
});

t.test('uffd-unit-tests: the suite keeps only the selected backings (hugetlb includes hugetlb-private)', async (t) => {
  const r = uffdSuite.parse(
    unitCmd,
    programOutput(fixture('uffd-unit-tests.zeropage.6.12-tcg.txt'), 0),
    ctx(['hugetlb', 'shmem']),
  );
  t.equal(r.status, 'pass');
  t.same(
    r.subtests.map((s) => s.id),
    [
      'uffd-unit-tests/zeropage/shmem',
      'uffd-unit-tests/zeropage/shmem-private',
      'uffd-unit-tests/zeropage/hugetlb',
      'uffd-unit-tests/zeropage/hugetlb-private',
    ],
  );
  t.same(
    r.subtests.map((s) => s.backing),
    ['shmem', 'shmem-private', 'hugetlb', 'hugetlb-private'],
  );
  t.ok(selectsBacking(['hugetlb-private'], 'hugetlb-private'));
  t.notOk(selectsBacking(['hugetlb-private'], 'hugetlb'));
});

t.test('uffd-unit-tests: a failure on a memory not asked for is named, not hidden', async (t) => {
  // The binary ran every memory type and died in events on anon; the user asked for hugetlb.
  // Hiding the anon subtest left a failed program with no failed subtest: a red run naming nothing.
  const text = fixture('uffd-unit-tests.died-at-events.6.12-tcg.txt');
  const r = uffdSuite.parse(unitCmd, programOutput(text, 1), ctx(['hugetlb']));
  t.equal(r.status, 'error');
  const shown = r.subtests.filter((s) => s.backing !== undefined && !s.backing.startsWith('hugetlb'));
  t.same(
    shown.map((s) => [s.id, s.status]),
    [['uffd-unit-tests/events/anon', 'error']],
    'only the failure of the unselected memories is kept',
  );
  t.match(shown[0]?.reason, /^crashed: ERROR: UFFDIO_COPY error: -2 /);
  t.ok(
    r.subtests.some((s) => s.backing === 'hugetlb' && s.status === 'pass'),
    'the selected memory keeps its passes',
  );
});

t.test('uffd-unit-tests killed mid-test: a crash of the running subtest, never a pass', async (t) => {
  const text = fixture('uffd-unit-tests.killed.host-6.18.txt');
  const p = parseUffdUnitTests(text);
  t.equal(p.summary, undefined);
  t.equal(p.subtests.at(-1)?.outcome, 'crash');
  const r = uffdSuite.parse(unitCmd, programOutput(text, null), ctx(['anon']));
  t.equal(r.status, 'error');
  t.equal(r.subtests.at(-1)?.status, 'error');
});

t.test('uffd-unit-tests hard error through err(): ERROR line is the reason, no summary is an error', async (t) => {
  // err() prints "ERROR: <msg> (errno=N, @file:line)" on stderr and exit(1), as uffd-common.h does.
  const text =
    'Testing minor on shmem... done\nTesting minor on hugetlb... ERROR: UFFDIO_REGISTER (errno=22, @uffd-common.c:341)\n';
  const r = uffdSuite.parse(unitCmd, programOutput(text, 1), ctx(['hugetlb', 'shmem']));
  t.equal(r.status, 'error');
  t.match(r.reason, /without its summary/);
  const hug = r.subtests.find((s) => s.id === 'uffd-unit-tests/minor/hugetlb');
  t.equal(hug?.status, 'error');
  t.match(hug?.reason, /crashed: ERROR: UFFDIO_REGISTER \(errno=22/);
  t.equal(r.subtests.find((s) => s.id === 'uffd-unit-tests/minor/shmem')?.status, 'pass');
});

t.test('uffd-unit-tests: failed and skipped outcomes with reasons; exit 1 is a failure', async (t) => {
  const text = [
    'Testing wp-fork on anon... failed [reason: Detected stale uffd-wp bit in child in present pte]',
    'Testing wp-fork on hugetlb... skipped [reason: feature missing]',
    'Userfaults unit tests: pass=0, skip=1, fail=1 (total=2)',
    '',
  ].join('\n');
  const r = uffdSuite.parse(unitCmd, programOutput(text, 1), ctx(['anon', 'hugetlb']));
  t.equal(r.status, 'fail');
  t.same(
    r.subtests.map((s) => [s.status, s.reason]),
    [
      ['fail', 'Detected stale uffd-wp bit in child in present pte'],
      ['skip', 'feature missing'],
    ],
  );
});

t.test('uffd-stress: pass/fail/skip by exit code, timeout is an error', async (t) => {
  const cmd: GuestCommand = {
    program: 'uffd-stress',
    args: ['hugetlb', '8', '4'],
    backing: 'hugetlb',
    timeoutSec: 60,
    label: 'uffd-stress.hugetlb',
  };
  const text = fixture('uffd-stress.hugetlb.6.12-tcg.txt');
  t.equal(uffdSuite.parse(cmd, programOutput(text, 0), ctx(['hugetlb'])).status, 'pass');
  t.equal(uffdSuite.parse(cmd, programOutput(text, 4), ctx(['hugetlb'])).subtests[0]?.status, 'skip');
  const failed = uffdSuite.parse(
    cmd,
    programOutput(text + 'ERROR: unexpected missing fault (errno=0, @uffd-stress.c:120)\n', 1),
    ctx(['hugetlb']),
  );
  t.equal(failed.status, 'fail');
  t.match(failed.reason, /^ERROR: unexpected missing fault/);
  t.equal(uffdSuite.parse(cmd, programOutput(text, null, { timedOut: true }), ctx(['hugetlb'])).status, 'error');
  t.equal(failed.subtests[0]?.id, 'uffd-stress/stress/hugetlb');
});

t.test('uffd-stress sizes: hugetlb MiB >= 2 x nCPUs; quick mode uses fewer bounces', async (t) => {
  const [, mib, bounces] = stressArgs('hugetlb', ctx(['hugetlb'], true));
  t.ok(Number(mib) >= 4);
  t.equal(bounces, '4');
  t.equal(stressArgs('anon', ctx(['anon']))[2], '16');
});

t.test('pagemap_ioctl: KTAP per subtest, duplicate names numbered, zero tests is a skip', async (t) => {
  const cmd: GuestCommand = { program: 'pagemap_ioctl', args: [], timeoutSec: 60, label: 'pagemap_ioctl' };
  const text = fixture('pagemap_ioctl.6.12-tcg.txt');
  const k = parseKtap(text);
  t.equal(k.plan, 115);
  t.equal(k.tests.length, 115);
  t.same(k.totals, { pass: 115, fail: 0, xfail: 0, xpass: 0, skip: 0, error: 0 });
  const r = uffdSuite.parse(cmd, programOutput(text, 0), ctx(['anon']));
  t.equal(r.status, 'pass');
  t.equal(new Set(r.subtests.map((s) => s.id)).size, 115, 'ids are unique');
  // A kernel without PAGEMAP_SCAN: pagemap_ioctl "passes" having run nothing.
  const none = uffdSuite.parse(
    cmd,
    programOutput('TAP version 13\n1..0\n# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:0\n', 0),
    ctx(['anon']),
  );
  t.equal(none.status, 'skip');
  // Truncated (crashed) KTAP: fewer results than planned.
  const cut = text.split('\n').slice(0, 40).join('\n');
  t.equal(uffdSuite.parse(cmd, programOutput(cut, null), ctx(['anon'])).status, 'error');
});

t.test('plan: quick mode runs the quick filters, stress per selected backing, pagemap_ioctl once', async (t) => {
  const cmds = uffdSuite.plan(ctx(['hugetlb', 'shmem'], true));
  t.same(
    cmds.filter((c) => c.program === 'uffd-unit-tests').map((c) => c.args),
    QUICK_UNIT_FILTERS.map((f) => ['-f', f]),
  );
  t.same(
    cmds.filter((c) => c.program === 'uffd-stress').map((c) => c.backing),
    ['shmem', 'shmem-private', 'hugetlb', 'hugetlb-private'],
  );
  t.equal(cmds.filter((c) => c.program === 'pagemap_ioctl').length, 1);
  t.equal(new Set(cmds.map((c) => c.label)).size, cmds.length, 'labels unique');
});

t.test('Debian 6.1 kernel (6.12 selftests): no PAGEMAP_SCAN is a skip, a missing uffd feature is a skip', async (t) => {
  const cmd: GuestCommand = { program: 'pagemap_ioctl', args: [], timeoutSec: 60, label: 'pagemap_ioctl' };
  // Real capture: pagemap_ioctl on 6.1 prints a header and zero results, and exits 0.
  const r = uffdSuite.parse(cmd, programOutput(fixture('pagemap_ioctl.6.1-tcg.txt'), 0), ctx(['anon']));
  t.equal(r.status, 'skip');
  t.match(r.reason, /zero tests/);
  t.same(r.subtests, []);
  const wp = uffdSuite.parse(
    unitCmd,
    programOutput(fixture('uffd-unit-tests.wp-unpopulated.6.1-tcg.txt'), 0),
    ctx(['anon']),
  );
  t.equal(wp.status, 'pass');
  t.same(
    wp.subtests.map((s) => [s.id, s.status, s.reason]),
    [['uffd-unit-tests/wp-unpopulated/anon', 'skip', 'feature missing']],
  );
});

t.test(
  'full uffd-unit-tests run (no filter): the UFFDIO_API checks count in the total and the run passes',
  async (t) => {
    // Real capture of the whole program on Debian 6.12 under TCG: 2 API checks + 64 memory-type subtests.
    const text = fixture('uffd-unit-tests.full.6.12-tcg.txt');
    const p = parseUffdUnitTests(text);
    t.same(p.summary, { pass: 56, skip: 10, fail: 0, total: 66 });
    t.equal(p.subtests.length, 66);
    t.same(
      p.subtests.slice(0, 2).map((s) => [s.test, s.mem, s.outcome]),
      [
        ['UFFDIO_API-with-syscall', undefined, 'pass'],
        ['UFFDIO_API-with-_dev_userfaultfd', undefined, 'pass'],
      ],
    );
    const r = uffdSuite.parse(unitCmd, programOutput(text, 0), ctx(['hugetlb', 'shmem', 'anon']));
    t.equal(r.status, 'pass', r.reason ?? '');
    t.ok(r.subtests.some((s) => s.id === 'uffd-unit-tests/UFFDIO_API-with-syscall' && s.backing === undefined));
    t.equal(new Set(r.subtests.map((s) => s.id)).size, r.subtests.length, 'ids unique');
    // Selecting one backing keeps the API checks (they belong to no backing) and drops other memory types.
    const hug = uffdSuite.parse(unitCmd, programOutput(text, 0), ctx(['hugetlb']));
    t.ok(hug.subtests.every((s) => s.backing === undefined || s.backing.startsWith('hugetlb')));
    t.equal(hug.status, 'pass');
  },
);

t.test("6.12: uffd-stress.c takes faultline's backing names, so the manifest's words change nothing", async (t) => {
  // The words faultline records for 6.12, read from the real uffd-stress.c (Debian 6.12.117).
  const source = readFileSync(
    join(import.meta.dirname, '..', 'selftests', 'fixtures', 'uffd-stress.6.12.117.c'),
    'utf8',
  );
  const stress: SelftestProgram = {
    name: 'uffd-stress',
    status: 'built',
    path: '/cache/bin/uffd-stress',
    source: 'uffd-stress.c',
    backingArgs: stressBackingArgs(source),
  };
  const with612 = { ...ctx(['hugetlb', 'shmem', 'anon']), programs: [stress] };
  const cmds = uffdSuite.plan(with612);
  t.same(cmds, uffdSuite.plan(ctx(['hugetlb', 'shmem', 'anon'])), 'same commands as without the manifest');
  t.same(
    cmds.filter((c) => c.program === 'uffd-stress').map((c) => [c.backing, c.args.join(' ')]),
    [
      ['anon', 'anon 64 16'],
      ['shmem', 'shmem 64 16'],
      ['shmem-private', 'shmem-private 64 16'],
      ['hugetlb', 'hugetlb 8 16'],
      ['hugetlb-private', 'hugetlb-private 8 16'],
    ],
  );
  const cmd = cmds.find((c) => c.backing === 'hugetlb' && c.program === 'uffd-stress');
  if (!cmd) throw new Error('no hugetlb stress command');
  const r = uffdSuite.parse(cmd, programOutput(fixture('uffd-stress.hugetlb.6.12-tcg.txt'), 0), with612);
  t.same(
    r.subtests.map((s) => [s.id, s.status]),
    [['uffd-stress/stress/hugetlb', 'pass']],
    'one stress subtest per backing, as before',
  );
  t.equal(
    uffdSuite.runningSubtest?.(cmd, fixture('uffd-stress.hugetlb.6.12-tcg.txt'), with612),
    undefined,
    'its only subtest is the program',
  );
});
