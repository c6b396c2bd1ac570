import type { Backing } from '../results/types.js';
import { parseUffdUnitTests, type UnitSubtest } from './parsers/uffd-unit.js';
import type { GuestCommand, ResumePlan, SuiteContext } from './types.js';

/**
 * What faultline knows about uffd-unit-tests beyond its output: the ids of its subtests,
 * the ones a run plans (from the test table of the tree's own source, in the selftest
 * manifest), and how to run some of them again (`-f NAME` runs every test whose name
 * contains NAME, on each of its memory types).
 */

const UNIT = 'uffd-unit-tests';

/** uffd-unit-tests' memory types and the backings they belong to. */
export const UNIT_MEMS: Record<string, Backing> = {
  anon: 'anon',
  shmem: 'shmem',
  'shmem-private': 'shmem-private',
  hugetlb: 'hugetlb',
  'hugetlb-private': 'hugetlb-private',
};

/** "hugetlb" selects hugetlb-private too (and "shmem" shmem-private), unless private ones are named alone. */
export function selectsBacking(selected: readonly Backing[], b: Backing): boolean {
  if (selected.includes(b)) return true;
  const family = b.replace(/-private$/, '') as Backing;
  return family !== b && selected.includes(family);
}

export function unitSubtestId(t: Pick<UnitSubtest, 'test' | 'mem'>): string {
  return t.mem !== undefined ? `${UNIT}/${t.test}/${t.mem}` : `${UNIT}/${t.test}`;
}

/** The test name filter a command passes with -f, if any. */
function filterOf(cmd: GuestCommand): string | undefined {
  const i = cmd.args.indexOf('-f');
  return i >= 0 ? cmd.args[i + 1] : undefined;
}

/** The subtest the program was in when it had printed `output`: its last "Testing X on M..." line. */
export function unitRunningSubtest(output: string): string | undefined {
  const last = parseUffdUnitTests(output).subtests.at(-1);
  return last ? unitSubtestId(last) : undefined;
}

/**
 * Every subtest `cmd` plans on the selected backings, in the order the program runs them:
 * its test table filtered as the program filters it (strstr on the name). Undefined when
 * the manifest has no table (a tree faultline could not read it from).
 */
export function plannedUnitSubtests(cmd: GuestCommand, ctx: SuiteContext): ResumePlan['unreached'] | undefined {
  const cases = ctx.programs.find((p) => p.name === UNIT)?.cases;
  if (!cases) return undefined;
  const filter = filterOf(cmd);
  const out: ResumePlan['unreached'] = [];
  for (const c of cases) {
    if (filter !== undefined && !c.test.includes(filter)) continue;
    for (const mem of c.mems) {
      const backing = UNIT_MEMS[mem];
      if (backing === undefined || !selectsBacking(ctx.backings, backing)) continue;
      out.push({ id: unitSubtestId({ test: c.test, mem }), name: c.test, backing });
    }
  }
  return out;
}

/**
 * The planned subtests nobody reported yet, and one `-f TEST` command per test they belong to.
 * uffd-unit-tests runs a test on all its memory types in one go and `-f` matches by substring,
 * so no command may select a test that crashed the kernel (`crashed`): the rest of that test's
 * memory types are given up with the reason, and a test whose filter would also select it too.
 * A test that died without a kernel crash is run again: its reported subtests are kept.
 */
export function resumeUnit(
  cmd: GuestCommand,
  reached: ReadonlySet<string>,
  ctx: SuiteContext,
  crashed: ReadonlySet<string> = new Set(),
): ResumePlan {
  const planned = plannedUnitSubtests(cmd, ctx) ?? [];
  // A crash on a memory type the run does not select (the program runs them all) counts too.
  const crashers = new Set([...crashed].map((id) => id.split('/')[1] ?? '').filter((n) => n !== ''));
  const table = (ctx.programs.find((p) => p.name === UNIT)?.cases ?? []).map((c) => c.test);
  const unreached: ResumePlan['unreached'] = [];
  const tests: string[] = [];
  for (const t of planned) {
    if (reached.has(t.id)) continue;
    const also = table.filter((n) => n.includes(t.name) && crashers.has(n));
    if (crashers.has(t.name)) {
      const ids = [...crashed].filter((id) => id.split('/')[1] === t.name);
      unreached.push({
        ...t,
        reason: `not run: ${ids.join(', ')} crashed the kernel, and ${UNIT} runs ${t.name} on every memory type at once`,
      });
    } else if (also.length > 0) {
      unreached.push({
        ...t,
        reason: `not run: '-f ${t.name}' would also rerun ${also.join(', ')}, which crashed the kernel`,
      });
    } else {
      unreached.push(t);
      if (!tests.includes(t.name)) tests.push(t.name);
    }
  }
  return { unreached, commands: tests.map((test) => ({ ...cmd, args: ['-f', test], label: `${UNIT}.${test}` })) };
}

/** Rerun one subtest: `-f TEST` (the API checks run only without a filter: the command as it was). */
export function isolateUnit(cmd: GuestCommand, id: string): GuestCommand {
  const parts = id.split('/');
  if (parts.length < 3 || parts[1] === undefined) return cmd;
  return { ...cmd, args: ['-f', parts[1]], label: `${UNIT}.${parts[1]}` };
}
