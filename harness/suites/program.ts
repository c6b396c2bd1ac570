import type { Status, SubtestResult } from '../results/types.js';
import { failureReason, parseKtap, type KtapResult } from './parsers/ktap.js';
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
 * The suite of the user's own programs (`--program FILE.c`): each runs once per selected
 * backing, with the backing as its argument and in FAULTLINE_BACKING. A program that
 * prints KTAP is parsed into its tests; otherwise its exit code is the verdict with
 * kselftest's meaning (0 pass, 4 skip, anything else a failure).
 */

const KSFT_SKIP = 4;
const PROGRAM_SUITE = 'program';

/** A KTAP program's own status: how it ended, then its plan, then its results and exit code. */
function ktapProgramStatus(
  broken: { status: Status; reason: string } | undefined,
  k: KtapResult,
  subtests: readonly SubtestResult[],
  out: ProgramOutput,
): { status: Status; reason?: string } {
  if (broken) return broken;
  if (k.bailOut !== undefined) return { status: 'error', reason: `bail out: ${k.bailOut}` };
  if (k.plan !== undefined && k.plan !== subtests.length)
    return { status: 'error', reason: `planned ${k.plan} tests but ${subtests.length} reported` };
  const failed = subtests.some((t) => t.status === 'fail') || (out.exitCode !== 0 && out.exitCode !== KSFT_SKIP);
  return failed ? { status: 'fail', reason: `exit ${String(out.exitCode)}` } : { status: 'pass' };
}

function parseProgram(cmd: GuestCommand, out: ProgramOutput): ParsedProgram {
  const backing = cmd.backing;
  const base = { suite: PROGRAM_SUITE, program: cmd.program, ...(backing ? { backing } : {}) };
  const idOf = (name: string): string => `${cmd.program}/${name}${backing ? `/${backing}` : ''}`;
  const text = out.output.replace(/\r/g, '');
  const broken: { status: Status; reason: string } | undefined = out.timedOut
    ? { status: 'error', reason: `${cmd.program} timed out: killed at its ${cmd.timeoutSec} s deadline` }
    : out.exitCode === null
      ? { status: 'error', reason: `${cmd.program} was ${killedBy(out)}` }
      : undefined;
  const k = parseKtap(text);
  if (k.version !== undefined) {
    // A result with no name ("ok 3 # SKIP why") is named by its number (and heading).
    const names = ktapNames(k.tests);
    const subtests: SubtestResult[] = k.tests.map((t, i) => {
      const status: Status = t.directive === 'SKIP' ? 'skip' : t.ok ? 'pass' : 'fail';
      const reason = status === 'fail' ? failureReason(t) : t.reason;
      const name = names[i]?.name ?? t.name;
      return { ...base, id: idOf(name), name, status, ...(reason ? { reason } : {}) };
    });
    const whole = ktapProgramStatus(broken, k, subtests, out);
    // A crash, bail-out, short plan or bad exit code that no failed result explains is a result
    // of its own, or TAP and JUnit would show only the passes of a program that died mid-way.
    const explained = whole.status === 'pass' || (whole.status === 'fail' && subtests.some((t) => t.status === 'fail'));
    if (!explained)
      subtests.push({
        ...base,
        id: idOf(EXIT_STATUS),
        name: EXIT_STATUS,
        status: whole.status,
        ...(whole.reason ? { reason: whole.reason } : {}),
        durationMs: out.durationMs,
      });
    return { ...whole, subtests };
  }
  const lastLine = text.trim().split('\n').at(-1)?.trim();
  const [status, reason]: [Status, string | undefined] = broken
    ? [broken.status, broken.reason]
    : out.exitCode === 0
      ? ['pass', undefined]
      : out.exitCode === KSFT_SKIP
        ? ['skip', lastLine || 'exit 4 (skip)']
        : ['fail', `exit ${String(out.exitCode)}${lastLine ? `: ${lastLine}` : ''}`];
  const sub: SubtestResult = {
    ...base,
    id: `${cmd.program}${backing ? `/${backing}` : ''}`,
    name: cmd.program,
    status,
    ...(reason ? { reason } : {}),
    durationMs: out.durationMs,
  };
  return { status, ...(reason ? { reason } : {}), subtests: [sub] };
}

/** A suite running `names` (the programs' names in the guest, in the order given). */
export function programSuite(names: readonly string[], timeoutSec: number): Suite {
  return {
    name: PROGRAM_SUITE,
    description: 'your own programs (--program FILE.c), once per backing',
    programs: names,
    plan(ctx: SuiteContext): GuestCommand[] {
      return names.flatMap((program) =>
        ctx.backings.map((backing) => ({
          program,
          args: [backing],
          env: { FAULTLINE_BACKING: backing },
          backing,
          timeoutSec,
          label: `${program}.${backing}`,
        })),
      );
    },
    parse: parseProgram,
  };
}
