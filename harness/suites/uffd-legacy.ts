import type { Backing, Status, SubtestResult } from '../results/types.js';
import type { SelftestProgram } from '../results/selftests.js';
import { legacyRunningCheck, parseLegacyUffd } from './parsers/uffd-legacy.js';
import type { GuestCommand, ParsedProgram, ProgramOutput, SuiteContext } from './types.js';

/**
 * uffd-stress as the tested tree builds it: the backing words come from the program's
 * own source (the selftests manifest), and a tree whose stress program is the old
 * monolithic userfaultfd.c (before 6.4) runs its unit checks in every mode, reported
 * here as subtests `uffd-stress/<check>/<backing>` (the stress bounces are
 * `uffd-stress/stress/<backing>`, as on newer trees).
 */

const PROGRAM = 'uffd-stress';

function stressProgram(ctx: SuiteContext): SelftestProgram | undefined {
  return ctx.programs.find((p) => p.name === PROGRAM);
}

/** The tree's stress program is userfaultfd.c: parse its per-check lines. */
export function usesLegacyStress(ctx: SuiteContext): boolean {
  return stressProgram(ctx)?.source === 'userfaultfd.c';
}

/**
 * The program's word for `b`: from the manifest, or `b` itself when the manifest says
 * nothing (built before the manifest recorded words); undefined when the program has none.
 */
export function stressWord(b: Backing, ctx: SuiteContext): string | undefined {
  const words = stressProgram(ctx)?.backingArgs;
  return words === undefined ? b : words[b];
}

/**
 * userfaultfd.c's commands, one per backing (`argsOf`: word, MiB, bounces as for
 * uffd-stress). Shared hugetlb maps a hugetlbfs file the program names in its 4th
 * argument and never removes (the upstream runner rm's it): a fixed path under the guest's
 * /dev/hugepages, removed after the program (`leaves`), and the command runs last so
 * that even a guest where the removal failed has run the other backings first.
 */
export function legacyStressPlan(
  backings: readonly Backing[],
  ctx: SuiteContext,
  argsOf: (b: Backing) => string[],
): GuestCommand[] {
  const keepsFile = (b: Backing): boolean => b === 'hugetlb' && stressProgram(ctx)?.hugetlbfsFileArg === true;
  const ordered = [...backings.filter((b) => !keepsFile(b)), ...backings.filter(keepsFile)];
  return ordered.map((b) => {
    const file = keepsFile(b) ? [`/dev/hugepages/uffd-stress-${b}`] : [];
    return {
      program: PROGRAM,
      args: [...argsOf(b), ...file],
      backing: b,
      timeoutSec: 600,
      label: `${PROGRAM}.${b}`,
      ...(file.length ? { leaves: file } : {}),
    };
  });
}

/** "uffd-stress, built from the tree's userfaultfd.c": which program said what. */
function programLabel(ctx: SuiteContext): string {
  const source = stressProgram(ctx)?.source;
  return source !== undefined && source !== `${PROGRAM}.c` ? `${PROGRAM}, built from the tree's ${source},` : PROGRAM;
}

/**
 * A backing the tree's program has no word for is a skip naming the program, not a
 * failure: the command still ran (the program's rejection is in its output), but it
 * tested nothing. Undefined when the program accepts the backing or ran anyway.
 */
export function unsupportedStress(cmd: GuestCommand, out: ProgramOutput, ctx: SuiteContext): ParsedProgram | undefined {
  const b = cmd.backing;
  if (b === undefined || stressWord(b, ctx) !== undefined || /^nr_pages: /m.test(out.output)) return undefined;
  const words = Object.values(stressProgram(ctx)?.backingArgs ?? {}).join(', ');
  const reason = `${programLabel(ctx)} has no test type for ${b} (it accepts ${words})`;
  const sub: SubtestResult = {
    id: legacySubtestId('stress', b),
    suite: 'uffd',
    program: PROGRAM,
    name: 'stress',
    backing: b,
    status: 'skip',
    reason,
  };
  return { status: 'skip', reason, subtests: [sub] };
}

/** Which subtest's outcome the program's status takes: the worst one. */
const RANK: Record<Status, number> = { pass: 0, skip: 0, flaky: 1, fail: 2, error: 3 };

/** userfaultfd.c's output: one subtest per check it started, the one it died in charged with it. */
export function parseLegacyStress(cmd: GuestCommand, out: ProgramOutput): ParsedProgram {
  const b = cmd.backing;
  const expected = Number(cmd.args[2]);
  const checks = parseLegacyUffd(out.output, out, Number.isInteger(expected) && expected > 0 ? expected : undefined);
  const subtests: SubtestResult[] = checks.map((c) => ({
    id: legacySubtestId(c.check, b),
    suite: 'uffd',
    program: PROGRAM,
    name: c.check,
    ...(b ? { backing: b } : {}),
    status: c.outcome,
    ...(c.reason !== undefined ? { reason: c.reason } : {}),
  }));
  if (subtests.every((s) => s.status === 'skip')) {
    return { status: 'skip', reason: subtests[0]?.reason ?? `${PROGRAM} skipped`, subtests };
  }
  const worst = subtests.filter((s) => RANK[s.status] > 0).sort((x, y) => RANK[y.status] - RANK[x.status])[0];
  if (worst === undefined) return { status: 'pass', subtests };
  return { status: worst.status, reason: `${worst.name}: ${worst.reason ?? worst.status}`, subtests };
}

function legacySubtestId(check: string, b: Backing | undefined): string {
  return `${PROGRAM}/${check}/${b ?? 'all'}`;
}

/** The subtest userfaultfd.c was in when it had printed `output` (a splat then is charged to it). */
export function legacyStressRunning(cmd: GuestCommand, output: string): string {
  return legacySubtestId(legacyRunningCheck(output), cmd.backing);
}
