import type { Backing, Status, SubtestResult } from '../results/types.js';
import { failureReason, parseKtap } from './parsers/ktap.js';
import { ktapNames } from './parsers/ktap-names.js';
import { parseUffdUnitTests } from './parsers/uffd-unit.js';
import {
  killedBy,
  type GuestCommand,
  type ParsedProgram,
  type ProgramOutput,
  type Suite,
  type SuiteContext,
} from './types.js';
import { isolateUnit, resumeUnit, selectsBacking, UNIT_MEMS, unitRunningSubtest, unitSubtestId } from './uffd-unit.js';
import {
  legacyStressPlan,
  legacyStressRunning,
  parseLegacyStress,
  stressWord,
  unsupportedStress,
  usesLegacyStress,
} from './uffd-legacy.js';

/**
 * The kernel's own userfaultfd selftests (tools/testing/selftests/mm):
 * uffd-unit-tests (every memory type it knows), uffd-stress per backing, pagemap_ioctl.
 */

const KSFT_SKIP = 4;
/**
 * Quick subset (CI, bisect steps): each runs on every memory type in seconds under
 * TCG. The minor/move/events/sigbus tests take 30-60 s each there: full runs only.
 */
export const QUICK_UNIT_FILTERS = ['register-ioctls', 'zeropage', 'wp-unpopulated'];

export { selectsBacking };

function stressBackings(ctx: SuiteContext): Backing[] {
  const all: Backing[] = ['anon', 'shmem', 'shmem-private', 'hugetlb', 'hugetlb-private'];
  return all.filter((b) => selectsBacking(ctx.backings, b));
}

/** uffd-stress sizes that fit the guest: hugetlb needs MiB >= 2 x nCPUs and twice that in free hugepages. */
export function stressArgs(b: Backing, ctx: SuiteContext): string[] {
  const bounces = ctx.quick ? 4 : 16;
  // The tree's program's own word (manifest); one it lacks is passed as is and reported as a skip.
  const word = stressWord(b, ctx) ?? b;
  if (b.startsWith('hugetlb')) {
    // Two 2 MiB pages per CPU: the test splits the area between CPUs.
    return [word, String(4 * ctx.smp), String(bounces)];
  }
  return [word, String(ctx.quick ? 16 : Math.min(64, Math.floor(ctx.memMiB / 16))), String(bounces)];
}

function plan(ctx: SuiteContext): GuestCommand[] {
  const cmds: GuestCommand[] = [];
  const filters = ctx.filter ? [ctx.filter] : ctx.quick ? QUICK_UNIT_FILTERS : [undefined];
  for (const f of filters) {
    cmds.push({
      program: 'uffd-unit-tests',
      args: f ? ['-f', f] : [],
      timeoutSec: ctx.quick ? 300 : 1200,
      label: f ? `uffd-unit-tests.${f}` : 'uffd-unit-tests',
    });
  }
  if (!ctx.filter) {
    if (usesLegacyStress(ctx)) cmds.push(...legacyStressPlan(stressBackings(ctx), ctx, (b) => stressArgs(b, ctx)));
    else {
      for (const b of stressBackings(ctx)) {
        cmds.push({
          program: 'uffd-stress',
          args: stressArgs(b, ctx),
          backing: b,
          timeoutSec: 600,
          label: `uffd-stress.${b}`,
        });
      }
    }
    cmds.push({ program: 'pagemap_ioctl', args: [], timeoutSec: 600, label: 'pagemap_ioctl' });
  }
  return cmds;
}

function programFailure(out: ProgramOutput, what: string): { status: Status; reason: string } | undefined {
  if (out.timedOut)
    return { status: 'error', reason: `${what} timed out after ${Math.round(out.durationMs / 1000)} s` };
  if (out.exitCode === null) return { status: 'error', reason: `${what} was ${killedBy(out)}` };
  return undefined;
}

function parseUnit(cmd: GuestCommand, out: ProgramOutput, ctx: SuiteContext): ParsedProgram {
  const p = parseUffdUnitTests(out.output);
  const subtests: SubtestResult[] = [];
  for (const t of p.subtests) {
    const backing = t.mem !== undefined ? UNIT_MEMS[t.mem] : undefined;
    const status: Status = t.outcome === 'crash' ? 'error' : t.outcome;
    // The binary runs every memory type: a memory not asked for is left out, unless it failed
    // there. That failure is the program's, so it is named (and a known issue can explain it)
    // instead of failing the run with no failed subtest to show.
    if (backing && !selectsBacking(ctx.backings, backing) && (status === 'pass' || status === 'skip')) continue;
    subtests.push({
      id: unitSubtestId(t),
      suite: 'uffd',
      program: 'uffd-unit-tests',
      name: t.test,
      ...(backing ? { backing } : {}),
      status,
      ...(t.reason !== undefined ? { reason: t.outcome === 'crash' ? `crashed: ${t.reason}` : t.reason } : {}),
    });
  }
  const broken = programFailure(out, 'uffd-unit-tests');
  if (broken) return { ...broken, subtests };
  if (p.allSkipped && out.exitCode === KSFT_SKIP) return { status: 'skip', reason: p.allSkipped, subtests };
  if (!p.summary) {
    return {
      status: 'error',
      reason: `uffd-unit-tests died without its summary line (exit ${String(out.exitCode)}): a hard error, not a pass`,
      subtests,
    };
  }
  if (p.summary.fail > 0 || out.exitCode !== 0) {
    const consistent = p.summary.fail > 0 === (out.exitCode === 1);
    return {
      status: 'fail',
      reason: consistent
        ? `${p.summary.fail} subtest(s) failed`
        : `exit ${String(out.exitCode)} with summary fail=${p.summary.fail}`,
      subtests,
    };
  }
  if (p.subtests.length !== p.summary.total) {
    return {
      status: 'error',
      reason: `summary says total=${p.summary.total} but ${p.subtests.length} subtests were printed (${cmd.label})`,
      subtests,
    };
  }
  return { status: 'pass', subtests };
}

function parseStress(cmd: GuestCommand, out: ProgramOutput): ParsedProgram {
  const backing = cmd.backing;
  const base = { suite: 'uffd', program: 'uffd-stress', name: 'stress', ...(backing ? { backing } : {}) };
  const id = `uffd-stress/stress/${backing ?? 'all'}`;
  const broken = programFailure(out, 'uffd-stress');
  const lastErr = /^ERROR: .*$/m.exec(out.output.replace(/\r/g, ''))?.[0];
  let status: Status;
  let reason: string | undefined;
  if (broken) ({ status, reason } = broken);
  else if (out.exitCode === 0) status = 'pass';
  else if (out.exitCode === KSFT_SKIP) {
    status = 'skip';
    reason = lastErr ?? /skip[^\n]*/i.exec(out.output)?.[0] ?? 'uffd-stress skipped (exit 4)';
  } else {
    status = 'fail';
    reason = lastErr ?? `uffd-stress exited ${String(out.exitCode)}`;
  }
  const sub: SubtestResult = { id, ...base, status, ...(reason ? { reason } : {}), durationMs: out.durationMs };
  return { status, ...(reason ? { reason } : {}), subtests: [sub] };
}

/** Subtest ids must be unique within a run; pagemap_ioctl repeats some names, so number the repeats. */
function uniqueIds(subtests: SubtestResult[]): SubtestResult[] {
  const seen = new Map<string, number>();
  return subtests.map((t) => {
    const n = (seen.get(t.id) ?? 0) + 1;
    seen.set(t.id, n);
    return n === 1 ? t : { ...t, id: `${t.id} #${n}` };
  });
}

function parsePagemap(_cmd: GuestCommand, out: ProgramOutput): ParsedProgram {
  const k = parseKtap(out.output.replace(/\r/g, ''));
  // Named without the numbers transact_test measures, unnamed (skipped) ones by their number.
  const names = ktapNames(k.tests, 'pagemap_ioctl');
  const subtests: SubtestResult[] = uniqueIds(
    k.tests.map((t, i) => {
      const status: Status = t.directive === 'SKIP' ? 'skip' : t.ok ? 'pass' : 'fail';
      const reason = status === 'fail' ? failureReason(t) : t.reason;
      const { name, title, metrics } = names[i] ?? { name: t.name, metrics: [] };
      return {
        id: `pagemap_ioctl/${name}`,
        suite: 'uffd',
        program: 'pagemap_ioctl',
        name,
        ...(title ? { title } : {}),
        status,
        ...(reason ? { reason } : {}),
        ...(metrics.length ? { metrics } : {}),
      };
    }),
  );
  const broken = programFailure(out, 'pagemap_ioctl');
  if (broken) return { ...broken, subtests };
  if (k.bailOut !== undefined) return { status: 'error', reason: `bail out: ${k.bailOut}`, subtests };
  // Without PAGEMAP_SCAN/WP_ASYNC pagemap_ioctl "passes" having run nothing: that is a skip.
  if (subtests.length === 0) {
    const why =
      k.trailingDiagnostics.find((d) => /not supported|skip/i.test(d)) ??
      'ran zero tests (kernel lacks PAGEMAP_SCAN / UFFD_FEATURE_WP_ASYNC)';
    return { status: out.exitCode === 0 || out.exitCode === KSFT_SKIP ? 'skip' : 'error', reason: why, subtests };
  }
  if (k.plan !== undefined && k.plan !== subtests.length) {
    return { status: 'error', reason: `planned ${k.plan} tests but ${subtests.length} reported (crashed?)`, subtests };
  }
  if (subtests.some((t) => t.status === 'fail') || out.exitCode !== 0) {
    return { status: 'fail', reason: `exit ${String(out.exitCode)}`, subtests };
  }
  return { status: 'pass', subtests };
}

export const uffdSuite: Suite = {
  name: 'uffd',
  description: 'kernel selftests: uffd-unit-tests (all memory types), uffd-stress per backing, pagemap_ioctl',
  programs: ['uffd-unit-tests', 'uffd-stress', 'pagemap_ioctl'],
  plan,
  runningSubtest(cmd, output, ctx) {
    if (cmd.program === 'uffd-stress' && usesLegacyStress(ctx)) return legacyStressRunning(cmd, output);
    return cmd.program === 'uffd-unit-tests' ? unitRunningSubtest(output) : undefined;
  },
  resume(cmd, reached, ctx, crashed) {
    return cmd.program === 'uffd-unit-tests' ? resumeUnit(cmd, reached, ctx, crashed) : { unreached: [], commands: [] };
  },
  isolate(cmd, id) {
    return cmd.program === 'uffd-unit-tests' ? isolateUnit(cmd, id) : cmd;
  },
  parse(cmd, out, ctx) {
    switch (cmd.program) {
      case 'uffd-unit-tests':
        return parseUnit(cmd, out, ctx);
      case 'uffd-stress':
        return (
          unsupportedStress(cmd, out, ctx) ??
          (usesLegacyStress(ctx) ? parseLegacyStress(cmd, out) : parseStress(cmd, out))
        );
      default:
        return parsePagemap(cmd, out);
    }
  },
};
