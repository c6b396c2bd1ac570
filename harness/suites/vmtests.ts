import type { Status, SubtestResult } from '../results/types.js';
import { buildMmSelftests } from '../selftests/mm-build.js';
import { boundedLines } from './parsers/ktap.js';
import type { GuestCommand, ParsedProgram, ProgramOutput, Suite, SuiteContext } from './types.js';

/**
 * Suite `vmtests`: the tree's own tools/testing/selftests/mm/run_vmtests.sh, run as it
 * ships for the categories suite mm knows (`-t`), as the reference suite mm is checked
 * against: run both in one guest and compare per invocation. One program for all: a
 * crash mid-way loses the rest, which is why suite mm runs each program itself.
 */

const SUITE = 'vmtests';
const SCRIPT = 'run_vmtests.sh';
const TIMEOUT_SEC = 3600;
/** run_vmtests.sh's TAP result lines (its programs' own output is indented behind "# "). */
const RESULT = /^(ok|not ok) (\d+) (.+?)(?: # (SKIP|exit=(-?\d+)))?\s*$/;

/** The categories of run_vmtests.sh that the selected mm programs belong to. */
function categories(ctx: SuiteContext): string[] {
  const cats = new Set<string>();
  for (const p of ctx.programs)
    for (const r of p.mmRuns ?? []) {
      if (p.name === 'memfd_test') continue; // not run_vmtests.sh's
      if (ctx.categories?.length && !ctx.categories.includes(r.category)) continue;
      if (r.backings.some((b) => ctx.backings.includes(b))) cats.add(r.category);
    }
  return [...cats];
}

function plan(ctx: SuiteContext): GuestCommand[] {
  const runner = ctx.programs.find((p) => p.name === SCRIPT);
  const known = runner?.scriptCategories ?? [];
  const cats = categories(ctx).filter((c) => known.length === 0 || known.includes(c));
  if (cats.length === 0) return [];
  const noCategories = runner?.status === 'built' && known.length === 0;
  return [
    {
      ...(noCategories
        ? { skipReason: `this tree's ${SCRIPT} has no categories (-t came in 6.4): it would run everything` }
        : {}),
      program: SCRIPT,
      interpreter: 'bash',
      args: ['-t', cats.join(' ')],
      timeoutSec: TIMEOUT_SEC,
      label: `vmtests.${cats.join('_')}`,
    },
  ];
}

/** run_test's banner around a program's output: "running CMD" between two separator lines, "[FAIL]" after it. */
const BANNER_TITLE = /^# running /;
const VERDICT_LINE = /^# \[(PASS|FAIL|SKIP)\]\s*$/;

/**
 * One subtest per run_test line of run_vmtests.sh, named as it names them ("gup_test -u").
 * A failure's reason is its exit code and the last lines its program printed.
 */
export function parseVmtestsTap(text: string): SubtestResult[] {
  const out: SubtestResult[] = [];
  let printed: string[] = [];
  let separatorNext = false;
  for (const line of text.replace(/\r/g, '').split('\n')) {
    const m = RESULT.exec(line);
    if (!m) {
      if (BANNER_TITLE.test(line)) [printed, separatorNext] = [[], true];
      else if (separatorNext) separatorNext = false;
      else if (line.startsWith('# ') && !VERDICT_LINE.test(line)) printed.push(line.slice(2));
      continue;
    }
    const name = m[3]!;
    const status: Status = m[4] === 'SKIP' ? 'skip' : m[1] === 'ok' ? 'pass' : 'fail';
    const tail = status === 'fail' ? boundedLines(printed) : undefined;
    printed = [];
    out.push({
      suite: SUITE,
      program: SCRIPT,
      id: `${SCRIPT}/${name}`,
      name,
      status,
      ...(m[5] !== undefined ? { reason: `exit ${m[5]}${tail ? `: ${tail}` : ''}` } : {}),
    });
  }
  return out;
}

function parse(cmd: GuestCommand, out: ProgramOutput): ParsedProgram {
  const subtests = parseVmtestsTap(out.output);
  if (out.timedOut) return { status: 'error', reason: `timed out at ${cmd.timeoutSec} s`, subtests };
  if (out.exitCode === null) return { status: 'error', reason: `${SCRIPT} was killed by a signal`, subtests };
  if (subtests.length === 0) return { status: 'error', reason: `${SCRIPT} reported no results`, subtests };
  // run_vmtests.sh exits 4 when anything skipped and 1 when anything failed.
  return subtests.some((t) => t.status === 'fail')
    ? { status: 'fail', reason: `exit ${String(out.exitCode)}`, subtests }
    : { status: 'pass', subtests };
}

export const vmtestsSuite: Suite = {
  name: SUITE,
  description:
    "the tree's run_vmtests.sh as shipped, for suite mm's categories: the reference suite mm is checked against",
  programs: [],
  buildPrograms: async (tree) => (await buildMmSelftests(tree)).programs,
  plan,
  parse,
  // A reference run is not retried: rerunning the whole runner for one program would be
  // neither a retry of that program nor the reference any more.
  isolate: () => undefined,
};
