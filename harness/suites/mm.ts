import type { Backing, Status, SubtestResult } from '../results/types.js';
import type { MmRun, SelftestProgram } from '../results/selftests.js';
import { buildMmSelftests } from '../selftests/mm-build.js';
import { mmProgramSpec } from '../selftests/mm-programs.js';
import { failureReason, parseKtap, type KtapTest } from './parsers/ktap.js';
import { ktapNames } from './parsers/ktap-names.js';
import {
  EXIT_STATUS,
  killedBy,
  type GuestCommand,
  type ParsedProgram,
  type ProgramOutput,
  type Suite,
  type SuiteContext,
} from './types.js';

/**
 * Suite `mm`: the kernel's hugetlb, shmem and THP selftests (tools/testing/selftests/mm and
 * memfd), each invoked as the tree's run_vmtests.sh invokes it, with the sysctls it sets
 * around the call. KTAP output becomes subtests; a program without KTAP is one subtest
 * judged by its exit code with kselftest's meaning (0 pass, 4 skip, else fail), as
 * run_vmtests.sh judges every program.
 */

const SUITE = 'mm';
const KSFT_SKIP = 4;
const TIMEOUT_SEC = 900;

/** run_vmtests.sh's name for an invocation ("gup_test -u"): what the subtest ids start with. */
function invocationName(program: string, args: readonly string[]): string {
  return [program, ...args].join(' ');
}

function label(program: string, args: readonly string[]): string {
  return `mm.${invocationName(program, args).replace(/[^\w.-]+/g, '_')}`;
}

/** The memory a subtest names ("... with hugetlb (2048 kB)", "... shmem ..."), else the program's. */
export function backingNamed(text: string, fallback: Backing | undefined): Backing | undefined {
  if (/1048576 ?kB|1 ?GiB hugetlb/i.test(text)) return 'hugetlb-1g';
  if (/hugetlb/i.test(text)) return 'hugetlb';
  if (/shmem|memfd|tmpfs/i.test(text)) return /THP|huge/i.test(text) ? 'shmem-thp' : 'shmem';
  if (/\banon/i.test(text)) return 'anon';
  return fallback;
}

function selected(run: MmRun, ctx: SuiteContext): boolean {
  if (ctx.categories?.length && !ctx.categories.includes(run.category)) return false;
  return run.backings.some((b) => ctx.backings.includes(b));
}

function command(p: SelftestProgram, run: MmRun, quick: boolean): GuestCommand {
  const spec = mmProgramSpec(p.name);
  return {
    program: p.name,
    args: run.args,
    ...(spec?.script ? { interpreter: 'bash' } : {}),
    ...(spec?.sysctls?.length ? { sysctls: spec.sysctls.map((s) => ({ ...s })) } : {}),
    // run_vmtests.sh drops caches and compacts memory before each hugetlb program.
    ...(run.category === 'hugetlb' ? { settle: true } : {}),
    backing: run.backings[0]!,
    ...(run.hugetlbfsDir ? { hugetlbfsDir: run.hugetlbfsDir } : {}),
    // Files 6.1's hugetlb programs make on that mount hold hugepages until removed.
    ...(run.hugetlbfsDir && run.args.some((a) => a.startsWith(`${run.hugetlbfsDir}/`))
      ? { leaves: run.args.filter((a) => a.startsWith(`${run.hugetlbfsDir}/`)) }
      : {}),
    timeoutSec: TIMEOUT_SEC,
    label: label(p.name, run.args),
    ...(run.unresolved
      ? { skipReason: run.unresolved }
      : quick && spec?.long
        ? { skipReason: `left out of --quick runs: ${spec.long}` }
        : {}),
  };
}

/**
 * The selected invocations in run_vmtests.sh's order, except that the destructive ones
 * (soft-offlining and poisoning hugepages for good) run last, where the memory they take
 * away cannot change another program's result.
 */
function plan(ctx: SuiteContext): GuestCommand[] {
  const runs: { p: SelftestProgram; run: MmRun }[] = [];
  for (const p of ctx.programs) {
    const spec = mmProgramSpec(p.name);
    if (!spec) continue;
    // A program the tree lacks still gets its line: a skip naming what the tree lacks.
    const lacking: MmRun[] = [{ category: spec.category, args: [], backings: [...spec.backings] }];
    for (const run of p.mmRuns ?? (p.status === 'unavailable' ? lacking : [])) {
      if (!selected(run, ctx)) continue;
      if (ctx.filter && !invocationName(p.name, run.args).includes(ctx.filter)) continue;
      runs.push({ p, run });
    }
  }
  const ordered = [...runs.filter((r) => !r.run.destructive), ...runs.filter((r) => r.run.destructive)];
  return ordered.map((r) => command(r.p, r.run, ctx.quick));
}

/** "[RUN] ..." diagnostics name what cow and gup_longterm test; their results repeat one phrase. */
const RUN_HEADING = /^\s*\[RUN\]\s*(.*)$/;

function runHeading(t: KtapTest): string | undefined {
  return t.diagnostics
    .map((d) => RUN_HEADING.exec(d.trim())?.[1])
    .filter((x) => x)
    .at(-1);
}

function ktapSubtests(cmd: GuestCommand, tests: KtapTest[]): SubtestResult[] {
  const inv = invocationName(cmd.program, cmd.args);
  const names = ktapNames(tests, cmd.program);
  const seen = new Map<string, number>();
  return tests.map((t, i) => {
    // Stable: without the numbers that change from run to run; a result with no description
    // ("ok 1 # SKIP reason") is named by its number (and heading).
    const { name: stable, title: printed, metrics } = names[i] ?? { name: t.name, metrics: [] };
    const run = t.name ? runHeading(t) : undefined;
    const base = run ? `${run}: ${stable}` : stable;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const name = n > 1 ? `${base} (${n})` : base;
    const title = printed !== undefined && (run ? `${run}: ${printed}` : printed);
    const backing = backingNamed(name, cmd.backing);
    const status: Status = t.directive === 'SKIP' ? 'skip' : t.ok ? 'pass' : t.directive === 'XFAIL' ? 'pass' : 'fail';
    // The "[RUN]" heading is in the name already: the lines after it say why it failed.
    const reason = status === 'fail' ? failureReason(t, (d) => !RUN_HEADING.test(d)) : t.reason;
    return {
      suite: SUITE,
      program: cmd.program,
      id: `${inv}/${name}`,
      name,
      ...(title ? { title } : {}),
      ...(backing ? { backing } : {}),
      status,
      ...(reason ? { reason } : {}),
      ...(metrics.length ? { metrics } : {}),
    };
  });
}

/** kselftest's meaning of an exit code, with the program's last line as the reason. */
function exitStatus(out: ProgramOutput, cmd: GuestCommand): { status: Status; reason?: string } {
  const last = out.output.replace(/\r/g, '').trim().split('\n').at(-1)?.trim();
  if (out.timedOut) return { status: 'error', reason: `timed out: killed at its ${cmd.timeoutSec} s deadline` };
  // A test that aborts or crashes failed, as run_vmtests.sh counts it (a lost guest or an
  // OOM kill is told apart before this, by the program runner).
  if (out.exitCode === null) return { status: 'fail', reason: `${cmd.program} was ${killedBy(out)}: ${last ?? ''}` };
  if (out.exitCode === 0) return { status: 'pass' };
  if (out.exitCode === KSFT_SKIP) return { status: 'skip', reason: last || 'exit 4 (skip)' };
  return { status: 'fail', reason: `exit ${out.exitCode}${last ? `: ${last}` : ''}` };
}

function parse(cmd: GuestCommand, out: ProgramOutput): ParsedProgram {
  const inv = invocationName(cmd.program, cmd.args);
  const whole = exitStatus(out, cmd);
  const k = parseKtap(out.output.replace(/\r/g, ''));
  const subtests = k.version !== undefined || k.tests.length ? ktapSubtests(cmd, k.tests) : [];
  const base = { suite: SUITE, program: cmd.program, ...(cmd.backing ? { backing: cmd.backing } : {}) };
  // The invocation's own verdict stands beside its KTAP results when they do not explain it
  // (an exit 1 after all passed, a crash mid-way, no KTAP at all): run_vmtests.sh counts it.
  const explained =
    whole.status === 'pass' ||
    (whole.status === 'fail' && subtests.some((t) => t.status === 'fail')) ||
    (whole.status === 'skip' && subtests.length > 0);
  if (!explained || subtests.length === 0) {
    subtests.push({
      ...base,
      id: subtests.length ? `${inv}/${EXIT_STATUS}` : inv,
      name: subtests.length ? EXIT_STATUS : inv,
      status: whole.status,
      ...(whole.reason ? { reason: whole.reason } : {}),
      durationMs: out.durationMs,
    });
  }
  return { ...whole, subtests };
}

export const mmSuite: Suite = {
  name: SUITE,
  description: "the kernel's hugetlb, shmem and THP selftests, invoked as run_vmtests.sh invokes them (+ memfd)",
  programs: [],
  buildPrograms: async (tree) => (await buildMmSelftests(tree)).programs,
  plan,
  parse,
};
