import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SplatKind } from '../results/types.js';
import { SplatDetector, detectSplats, stripConsolePrefix } from './splats.js';

/*
 * Every fixture is a verbatim serial console capture (CRLF, timestamps) of a real
 * guest booted by `faultline run --keep-vm`, with the report provoked between
 * `faultline: begin fake-test` / `faultline: end fake-test` written to /dev/kmsg.
 * See fixtures/README.md for the kernel and trigger of each one.
 */
const fixtures = join(import.meta.dirname, 'fixtures');
const load = (name: string): string => readFileSync(join(fixtures, `${name}.console.txt`), 'utf8');

interface Expected {
  kind: SplatKind;
  title: string;
  /** 1-based console line of the header (the title). */
  line: number;
  /** 1-based console lines [from, to] the excerpt must be, timestamps stripped. */
  excerpt: [number, number];
}

function check(name: string, want: Expected[]): void {
  t.test(name, async (t) => {
    const text = load(name);
    const lines = text.split('\n').map(stripConsolePrefix);
    const got = detectSplats(text);
    t.same(
      got.map((s) => s.kind),
      want.map((w) => w.kind),
      'kinds, one splat per report',
    );
    want.forEach((w, i) => {
      const s = got[i];
      if (!s) return;
      t.equal(s.title, w.title, `#${i} title`);
      t.equal(s.line, w.line, `#${i} line`);
      t.equal(s.test, 'fake-test', `#${i} attributed to the running test`);
      t.equal(lines[w.line - 1], w.title, `#${i} title is the header line`);
      t.equal(
        s.excerpt,
        lines.slice(w.excerpt[0] - 1, w.excerpt[1]).join('\n'),
        `#${i} excerpt is lines ${w.excerpt[0]}-${w.excerpt[1]}`,
      );
    });
  });
}

t.test('a clean boot (Debian 6.12, whole console incl. a uffd run) has no splat', async (t) => {
  const text = load('clean-boot');
  t.ok(text.split('\n').length > 300, 'whole boot');
  t.same(detectSplats(text), []);
});

// WARN(): busybox insmod retries finit_module with init_module, so the warning fires twice.
const warnTitle =
  'WARNING: CPU: 1 PID: 238 at /tmp/splat-work/mods/splat_common.h:22 splat_init+0x28/0xff0 [splat_warn]';
check('warning', [
  // cut here + the WARN message lead into the header; "end trace" ends it.
  { kind: 'warning', title: warnTitle, line: 7, excerpt: [5, 49] },
  { kind: 'warning', title: warnTitle, line: 54, excerpt: [52, 90] },
]);

// BUG(): "kernel BUG at" and its "Oops: invalid opcode" are one report.
check('bug', [
  { kind: 'bug', title: 'kernel BUG at /tmp/splat-work/mods/splat_common.h:24!', line: 4, excerpt: [3, 54] },
]);

// NULL dereference: "BUG: kernel NULL pointer dereference" + "Oops: Oops: 0000 [#2]" are one report.
check('oops', [
  { kind: 'oops', title: 'BUG: kernel NULL pointer dereference, address: 0000000000000000', line: 3, excerpt: [3, 58] },
]);

// panic_on_oops: "Fatal exception" comes after "end trace" and the register summary; it is the same report.
check('oops-panic', [
  { kind: 'oops', title: 'BUG: kernel NULL pointer dereference, address: 0000000000000000', line: 5, excerpt: [5, 66] },
]);

// panic_on_warn: the panic inside the warning makes it a panic.
check('panic-on-warn', [
  { kind: 'panic', title: warnTitle.replace('PID: 238', 'PID: 263'), line: 5, excerpt: [3, 51] },
]);

// echo c > /proc/sysrq-trigger: the panic's own stack dump is its excerpt.
check('panic-sysrq', [
  { kind: 'panic', title: 'Kernel panic - not syncing: sysrq triggered crash', line: 5, excerpt: [5, 38] },
]);

// D state for 35 s twice (insmod retry), hung_task_timeout_secs=10: five reports, each ends with its stack.
check('hung-task', [
  { kind: 'hung-task', title: 'INFO: task insmod:243 blocked for more than 10 seconds.', line: 3, excerpt: [3, 34] },
  { kind: 'hung-task', title: 'INFO: task insmod:243 blocked for more than 20 seconds.', line: 35, excerpt: [35, 66] },
  { kind: 'hung-task', title: 'INFO: task insmod:243 blocked for more than 30 seconds.', line: 67, excerpt: [67, 98] },
  {
    kind: 'hung-task',
    title: 'INFO: task insmod:243 blocked for more than 10 seconds.',
    line: 101,
    excerpt: [101, 138],
  },
  {
    kind: 'hung-task',
    title: 'INFO: task insmod:243 blocked for more than 20 seconds.',
    line: 139,
    excerpt: [139, 176],
  },
]);

// preempt_disable() spin for 50 s twice: soft lockups and an RCU stall, each its own report.
check('soft-lockup', [
  {
    kind: 'soft-lockup',
    title: 'watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [insmod:247]',
    line: 3,
    excerpt: [3, 44],
  },
  { kind: 'rcu-stall', title: 'rcu: INFO: rcu_preempt self-detected stall on CPU', line: 47, excerpt: [47, 97] },
  {
    kind: 'soft-lockup',
    title: 'watchdog: BUG: soft lockup - CPU#1 stuck for 44s! [insmod:247]',
    line: 98,
    excerpt: [98, 147],
  },
]);

// use-after-free of a KFENCE-sampled kmalloc (kfence.sample_interval=10), twice: header to closing ====.
const kfenceTitle = 'BUG: KFENCE: use-after-free read in splat_init+0x84/0xff0 [splat_kfence]';
check('kfence', [
  { kind: 'kfence', title: kfenceTitle, line: 4, excerpt: [4, 41] },
  { kind: 'kfence', title: kfenceTitle, line: 46, excerpt: [46, 77] },
]);

// Debug kernel (tinyconfig + LKDTM, generic KASAN, UBSAN_BOUNDS, KFENCE, buddy hard-lockup detector).
t.test('a clean boot of the debug kernel (KASAN, KFENCE, lockup detectors initialising) has no splat', async (t) => {
  t.same(detectSplats(load('clean-boot-debug')), []);
});

check('lkdtm-warning', [
  {
    kind: 'warning',
    title: 'WARNING: CPU: 1 PID: 95 at drivers/misc/lkdtm/bugs.c:112 lkdtm_WARNING+0xc/0xf',
    line: 4,
    excerpt: [3, 42],
  },
]);

// The BUG kills the shell before it writes the end marker: the report still ends at "end trace".
check('lkdtm-bug', [{ kind: 'bug', title: 'kernel BUG at drivers/misc/lkdtm/bugs.c:105!', line: 4, excerpt: [3, 44] }]);

// NULL write under inline KASAN: the shadow check faults first, as a general protection fault.
check('lkdtm-exception', [
  {
    kind: 'oops',
    title: 'Oops: general protection fault, maybe for address 0xffffffff81616ca9: 0000 [#2] SMP KASAN',
    line: 3,
    excerpt: [3, 42],
  },
]);

// lkdtm READ_AFTER_FREE: 90 lines from the header to the closing ====.
check('kasan', [
  {
    kind: 'kasan',
    title: 'BUG: KASAN: slab-use-after-free in lkdtm_READ_AFTER_FREE+0x153/0x263',
    line: 6,
    excerpt: [6, 95],
  },
]);

check('ubsan', [
  {
    kind: 'ubsan',
    title:
      'UBSAN: array-index-out-of-bounds in /root/.cache/faultline/debian/linux-source-6.12_6.12.117-1~deb12u1/tree/drivers/misc/lkdtm/bugs.c:406:16',
    line: 6,
    excerpt: [5, 38],
  },
]);

check('lkdtm-kfence', [
  {
    kind: 'kfence',
    title: 'BUG: KFENCE: use-after-free read in lkdtm_KFENCE_READ_AFTER_FREE+0x228/0x3bd',
    line: 6,
    excerpt: [6, 42],
  },
]);

// 30 s with interrupts off, twice: the buddy detector reports the first, an RCU stall (seen from the other CPU) the second.
check('hard-lockup', [
  { kind: 'hard-lockup', title: 'watchdog: Watchdog detected hard LOCKUP on cpu 0', line: 4, excerpt: [4, 50] },
  { kind: 'rcu-stall', title: 'rcu: INFO: rcu_sched detected stalls on CPUs/tasks:', line: 55, excerpt: [55, 101] },
]);

// lkdtm HUNG_TASK with hung_task_warnings=3: three reports, then "suppressed" (not a report).
check('lkdtm-hung-task', [
  { kind: 'hung-task', title: 'INFO: task sh:99 blocked for more than 10 seconds.', line: 3, excerpt: [3, 33] },
  { kind: 'hung-task', title: 'INFO: task sh:99 blocked for more than 20 seconds.', line: 34, excerpt: [34, 64] },
  { kind: 'hung-task', title: 'INFO: task sh:99 blocked for more than 30 seconds.', line: 65, excerpt: [65, 95] },
]);

check('lkdtm-soft-lockup', [
  { kind: 'rcu-stall', title: 'rcu: INFO: rcu_sched self-detected stall on CPU', line: 3, excerpt: [3, 41] },
  {
    kind: 'soft-lockup',
    title: 'watchdog: BUG: soft lockup - CPU#1 stuck for 45s! [sh:104]',
    line: 42,
    excerpt: [42, 79],
  },
]);

check('lkdtm-panic', [{ kind: 'panic', title: 'Kernel panic - not syncing: dumptest', line: 3, excerpt: [3, 33] }]);

t.test('fed line by line, the detector tracks the running test and agrees with detectSplats', async (t) => {
  const text = load('soft-lockup');
  const d = new SplatDetector();
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    d.push(l);
    if (i === 0) t.equal(d.runningTest, 'fake-test', 'begin marker sets the test');
  });
  t.equal(d.runningTest, undefined, 'end marker clears it');
  d.close();
  t.same(d.splats, detectSplats(text));
});

t.test('a report outside any test has no test; markers end an open report', async (t) => {
  const text = load('hung-task');
  // Drop the begin marker: the reports still count, unattributed.
  const body = text.split('\n').slice(1).join('\n');
  const got = detectSplats(body);
  t.equal(got.length, 5);
  t.ok(got.every((s) => s.test === undefined));
  // Cut the capture in the middle of the third report and end the test there.
  const cut = text.split('\n').slice(0, 80).join('\n') + '\n[ 1101.1] faultline: end fake-test\r\n';
  const partial = detectSplats(cut);
  t.same(
    partial.map((s) => s.kind),
    ['hung-task', 'hung-task', 'hung-task'],
  );
  t.notMatch(partial[2]?.excerpt ?? '', /faultline: end/);
});
