import t, { type Test } from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { access, constants, rm } from 'node:fs/promises';
import { cacheRoot } from '../util/fsutil.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import { PROJECT_ROOT } from '../util/project.js';
import { notPassed } from './upstream-flakes.js';
import { qemuChildren } from '../testkit/qemu-children.js';

/**
 * End to end, on real parts: Debian's 6.12 kernel (downloaded with apt-get, cached),
 * a real QEMU (TCG when KVM does not work), a real sshd in the guest, the real
 * selftests built from linux-source-6.12. No mocks.
 */
const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const results = mkdtempSync(join(tmpdir(), 'faultline-e2e-'));
const faultline = (args: string[], timeoutMin = 20) =>
  execa('node', [cli, ...args], {
    reject: false,
    all: true,
    timeout: timeoutMin * 60_000,
    env: { FAULTLINE_VERBOSE: '0' },
  });

t.test(
  'faultline run --quick on hugetlb and shmem boots the Debian kernel and passes the quick uffd subset',
  async (t) => {
    const r = await faultline([
      'run',
      '--quick',
      '--backing',
      'hugetlb,shmem',
      '--results',
      results,
      '--run-id',
      'quick',
    ]);
    t.equal(r.exitCode, 0, `exit 0 (output tail: ${String(r.all).slice(-1500)})`);
    const dir = join(results, 'quick');
    const rec = await readGuestRunRecord(join(dir, 'results.json'));
    t.equal(rec.verdict, 'pass');
    t.equal(rec.kernel.source, 'debian-package');
    t.match(rec.guest.uname, /^6\.12\./);
    t.ok(rec.guest.clocksource, 'clocksource recorded');
    t.ok(
      rec.qemu.command.some((a) => a.includes('qemu-system-x86_64')),
      'QEMU command line recorded',
    );
    t.ok(['tcg', 'kvm'].includes(rec.qemu.accel));
    const ids = new Set(rec.subtests.map((s) => s.id));
    // `pass`, except that register-ioctls/shmem may be its known upstream flake (upstream-flakes.ts).
    for (const id of [
      'uffd-unit-tests/zeropage/hugetlb',
      'uffd-unit-tests/zeropage/shmem',
      'uffd-unit-tests/register-ioctls/hugetlb',
      'uffd-unit-tests/register-ioctls/shmem',
      'uffd-stress/stress/hugetlb',
      'uffd-stress/stress/shmem',
    ]) {
      t.equal(notPassed(rec.subtests.find((s) => s.id === id)), undefined, `${id} ran and passed`);
    }
    t.same(
      rec.subtests.flatMap((s) => {
        const why = s.status === 'skip' ? undefined : notPassed(s);
        return why === undefined ? [] : [`${s.id}: ${why}`];
      }),
      [],
      'every other subtest passed or was skipped',
    );
    t.notOk(
      [...ids].some((id) => id.endsWith('/anon')),
      'anon not selected, not reported',
    );
    t.ok(rec.subtests.filter((s) => s.program === 'pagemap_ioctl').length > 50, 'pagemap_ioctl subtests parsed');
    t.equal(rec.splats.length, 0);
    t.match(readFileSync(join(dir, 'console.log'), 'utf8'), /Linux version 6\.12\./);
    t.match(readFileSync(join(dir, 'console.log'), 'utf8'), /faultline: begin uffd-unit-tests\.zeropage/);
    t.match(readFileSync(join(dir, 'results.tap'), 'utf8'), /^TAP version 14\n/);
    t.match(
      readFileSync(join(dir, 'junit.xml'), 'utf8'),
      /<testsuites name="faultline" tests="\d+" failures="0" errors="0"/,
    );
    t.ok(existsSync(join(dir, 'output', 'uffd-unit-tests.zeropage.txt')));
  },
);

t.test(
  'a kernel that panics before SSH comes up: FAIL (exit 1), with the panic and the last console lines',
  async (t) => {
    // No such rdinit: the kernel looks for a root filesystem instead, finds none and panics;
    // with panic=-1 and -no-reboot QEMU exits, and the harness says so with the console tail.
    // The boot timeout is far beyond the panic (seconds into the boot): QEMU's exit ends the wait,
    // never the deadline, so the cause is always the exit.
    const r = await faultline(
      [
        'run',
        '--quick',
        '--boot-timeout',
        '120',
        '--cmdline',
        'rdinit=/faultline-no-such-init',
        '--results',
        results,
        '--run-id',
        'noboot',
      ],
      10,
    );
    t.equal(r.exitCode, 1, 'the console explains it: the kernel failed');
    t.match(r.all, /QEMU exited during boot \(exit 0\); guest console \(last 30 lines\) follows/);
    t.match(r.all, /Kernel panic - not syncing/, 'the console tail shows why');
    const rec = await readGuestRunRecord(join(results, 'noboot', 'results.json'));
    t.equal(rec.verdict, 'fail');
    t.match(rec.infraError, /^QEMU exited during boot \(exit 0\)/);
    t.match(rec.splats[0], { kind: 'panic', title: /^Kernel panic - not syncing: VFS: Unable to mount root fs/ });
  },
);

t.test('SSH that never comes up, with no sign from the kernel: ERROR (exit 2)', async (t) => {
  // A healthy kernel whose init never starts sshd: `sleep` as PID 1 (arguments after "--" go to init).
  const r = await faultline(
    [
      'run',
      '--quick',
      '--boot-timeout',
      '20',
      '--cmdline',
      'rdinit=/bin/sleep -- 100000',
      '--results',
      results,
      '--run-id',
      'slowboot',
    ],
    10,
  );
  t.equal(r.exitCode, 2);
  const rec = await readGuestRunRecord(join(results, 'slowboot', 'results.json'));
  t.equal(rec.verdict, 'error');
  t.match(rec.infraError, /SSH to the guest never came up/);
  t.equal(rec.splats.length, 0);
});

t.test('bad input: one line, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['run', '--kernel', '/etc/passwd'], /is not an x86 bzImage/],
    [['run', '--kernel', '/nonexistent/bzImage'], /no such file/],
    [['run', '--backing', 'hugetlb,bogus'], /unknown backing 'bogus'/],
    [['run', '--suite', 'nope'], /unknown suite 'nope'/],
    [['run', '--accel', 'fast'], /--accel must be auto, kvm or tcg/],
    [['run', '--mem', '12'], /--mem must be an integer/],
    [['frobnicate'], /^faultline: Unknown argument: frobnicate$/m],
  ];
  for (const [args, re] of cases) {
    const r = await faultline(args[0] === 'run' ? [...args, '--results', results] : args, 2);
    t.equal(r.exitCode, 2, `${args.join(' ')} exits 2`);
    t.match(r.stderr, re, `${args.join(' ')}: ${r.stderr.split('\n')[0] ?? ''}`);
  }
});

/** Start `faultline run`, wait for its QEMU child whose command line matches `which`, SIGKILL faultline. */
async function killFaultlineDuring(t: Test, runId: string, which: RegExp): Promise<void> {
  const child = execa('node', [cli, 'run', '--quick', '--results', results, '--run-id', runId], {
    reject: false,
    all: true,
    timeout: 10 * 60_000,
  });
  const qemuChild = async (): Promise<number | undefined> =>
    child.pid === undefined ? undefined : (await qemuChildren(child.pid)).find((c) => which.test(c.command))?.pid;
  let qemuPid: number | undefined;
  for (let i = 0; i < 2400 && qemuPid === undefined && child.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    qemuPid = await qemuChild();
  }
  t.ok(qemuPid, `QEMU matching ${String(which)} started`);
  child.kill('SIGKILL');
  await child;
  await new Promise((r) => setTimeout(r, 2000));
  const alive = await execa('kill', ['-0', String(qemuPid)], { reject: false });
  t.not(alive.exitCode, 0, 'QEMU died with faultline (PR_SET_PDEATHSIG)');
  t.notOk(existsSync(join(results, runId, 'results.json')), 'no results.json for an unfinished run');
}

t.test('kill -9 of faultline mid-boot leaves no QEMU behind and no half-written results', async (t) => {
  await killFaultlineDuring(t, 'killed', /hostfwd=/);
});

t.test('kill -9 of faultline during the KVM probe leaves no probe QEMU behind', async (t) => {
  if (
    !(await access('/dev/kvm', constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ))
  ) {
    t.plan(0, 'no accessible /dev/kvm here: faultline does not probe KVM at all');
    return;
  }
  // Forget this host's cached answer so the next run probes again.
  await rm(join(cacheRoot(), 'host', 'kvm-probe.json'), { force: true });
  await killFaultlineDuring(t, 'killed-probe', /-accel kvm/);
});

t.test('--timeout caps a test program: the guest kills it and the run reports the timeout', async (t) => {
  const r = await faultline(
    [
      'run',
      '--quick',
      '--filter',
      'minor',
      '--backing',
      'shmem',
      '--timeout',
      '3',
      '--results',
      results,
      '--run-id',
      'timeout',
    ],
    10,
  );
  t.equal(r.exitCode, 1, 'a timed-out test fails the run');
  const rec = await readGuestRunRecord(join(results, 'timeout', 'results.json'));
  const prog = rec.programs.find((p) => p.program === 'uffd-unit-tests');
  t.equal(prog?.status, 'error');
  t.equal(prog?.timedOut, true);
  // The reason gives the run time measured on the host: 3 s, 4 s seen at load average 22.
  const ms = prog?.durationMs ?? 0;
  t.ok(ms < 15_000, `killed at its 3 s deadline, not long after (${ms} ms)`);
  t.equal(prog?.reason, `uffd-unit-tests timed out after ${Math.round(ms / 1000)} s`);
  t.equal(rec.infraError, undefined, 'the guest kept answering');
  // The program was killed mid-way: what it planned and had not reached was run by resumes.
  for (const id of [
    'uffd-unit-tests/minor/shmem',
    'uffd-unit-tests/minor-wp/shmem',
    'uffd-unit-tests/minor-collapse/shmem',
  ]) {
    t.ok(
      rec.subtests.some((s) => s.id === id),
      `${id} reported`,
    );
  }
  t.ok(
    rec.programs.some((p) => p.purpose === 'resume'),
    'resumed after the kill',
  );
});
