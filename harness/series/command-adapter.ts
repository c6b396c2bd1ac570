import { parseKtap } from '../suites/parsers/ktap.js';
import { summarize, verdictOf } from '../results/record.js';
import type { Metric, ProgramRun, RunRecord, Status, SubtestResult } from '../results/types.js';
import { detectSplats } from '../vm/splats.js';
import { run } from '../util/proc.js';
import { firstErrorLine } from '../bisect/command-tester.js';
import type { BuildResult, ResultSettings, SeriesBuilder, SeriesTester } from './types.js';
import { firstCompilerError } from './warnings.js';

/**
 * Series builder/tester made of host commands (any make-based project; the tests' toy C tree).
 * The build runs in the worktree, so make's own incremental rebuild is what makes patch builds
 * incremental. The test command prints KTAP; "# metric NAME VALUE UNIT" lines before a result
 * attach a metric to it; kernel-style splat lines ("WARNING: ...", "BUG: ...") are detected.
 */

/** Source files a build log shows being compiled (kbuild "  CC  mm/x.o" or a cc command line). */
export function compiledFiles(log: string): string[] {
  const out = new Set<string>();
  for (const line of log.split('\n')) {
    const kb = /^\s+CC(?: \[M\])?\s+(\S+)\.o\s*$/.exec(line);
    if (kb?.[1]) out.add(`${kb[1]}.c`);
    const cc = /^(?:\S*\/)?(?:gcc|cc|clang)(?:-\d+)?\s.*?\s-c\b.*?(\S+\.c)\b/.exec(line);
    if (cc?.[1]) out.add(cc[1].replace(/^\.\//, ''));
  }
  return [...out];
}

export class CommandBuilder implements SeriesBuilder<string> {
  private builtOnce = new Set<string>();
  constructor(
    private readonly cmd: readonly string[],
    private readonly timeoutMs = 3600_000,
  ) {}

  describe(): string {
    return this.cmd.join(' ');
  }

  settings(): ResultSettings {
    return { build: this.cmd };
  }

  async build(rev: string, worktree: string): Promise<BuildResult<string>> {
    const [c, ...args] = this.cmd;
    if (!c) throw new Error('empty build command');
    // The first build in a worktree is a full build: its warnings are the complete baseline.
    const full = !this.builtOnce.has(worktree);
    this.builtOnce.add(worktree);
    const r = await run(c, args, {
      cwd: worktree,
      timeoutMs: this.timeoutMs,
      allowFailure: true,
      env: { LC_ALL: 'C', FAULTLINE_REV: rev },
    });
    const ok = r.exitCode === 0;
    return {
      ok,
      log: r.all,
      compiled: compiledFiles(r.all),
      full,
      durationMs: r.durationMs,
      cacheHit: false,
      artifact: worktree,
      ...(ok ? {} : { firstError: firstCompilerError(r.all, worktree) ?? firstErrorLine(r.all) }),
    };
  }
}

export interface CommandSeriesTesterOptions {
  test: readonly string[];
  /** Program name used for subtest ids ("<program>/<test>"). */
  program: string;
  suite?: string;
  timeoutMs?: number;
}

const METRIC = /^#\s*metric\s+(\S+)\s+([-+0-9.eE]+)\s*(\S*)\s*$/;

/** One RunRecord from one command's KTAP output. */
function recordFromOutput(o: {
  runId: string;
  rev: string;
  program: string;
  suite: string;
  command: string;
  output: string;
  exitCode: number;
  durationMs: number;
  startedAt: string;
}): RunRecord {
  const k = parseKtap(o.output);
  const subtests: SubtestResult[] = k.tests.map((t) => {
    const status: Status =
      t.directive === 'SKIP'
        ? 'skip'
        : t.directive === 'ERROR' || t.directive === 'TIMEOUT'
          ? 'error'
          : t.ok
            ? 'pass'
            : 'fail';
    const metrics: Metric[] = [];
    for (const d of t.diagnostics) {
      const m = METRIC.exec(d.startsWith('#') ? d : `# ${d}`);
      if (m?.[1] && m[2]) metrics.push({ name: m[1], value: Number(m[2]), unit: m[3] ?? '' });
    }
    return {
      id: `${o.program}/${t.name}`,
      suite: o.suite,
      program: o.program,
      name: t.name,
      status,
      ...(t.reason ? { reason: t.reason } : {}),
      ...(metrics.length ? { metrics } : {}),
    };
  });
  const programs: ProgramRun[] = [
    {
      program: o.program,
      command: o.command,
      exitCode: o.exitCode,
      timedOut: false,
      durationMs: o.durationMs,
      status: subtests.length === 0 && o.exitCode !== 0 ? 'error' : 'pass',
      outputFile: '',
    },
  ];
  const splats = detectSplats(o.output);
  const rec: RunRecord = {
    schema: 'faultline.run/1',
    runId: o.runId,
    startedAt: o.startedAt,
    finishedAt: new Date().toISOString(),
    durationMs: o.durationMs,
    kernel: { source: 'build', path: o.rev },
    selftests: { source: 'command' },
    qemu: { command: [], accel: 'tcg', accelNote: 'host command, no guest', memMiB: 0, smp: 1, guestRam: 'anon' },
    guest: {},
    suites: [o.suite],
    backings: [],
    programs,
    subtests,
    splats,
    summary: summarize(subtests),
    verdict: 'pass',
    timing: { totalMs: o.durationMs, testsMs: o.durationMs, bootMs: 0, pushMs: 0, prepareMs: 0 },
  };
  rec.verdict = verdictOf(rec);
  return rec;
}

export class CommandSeriesTester implements SeriesTester<string> {
  constructor(private readonly opts: CommandSeriesTesterOptions) {}

  describe(): string {
    return this.opts.test.join(' ');
  }

  settings(): ResultSettings {
    return {
      test: this.opts.test,
      program: this.opts.program,
      suite: this.opts.suite ?? this.opts.program,
      timeoutMs: this.opts.timeoutMs ?? null,
    };
  }

  async test(
    rev: string,
    worktree: string,
    _artifact: string | undefined,
    o: { repeat: number; label: string },
  ): Promise<RunRecord[]> {
    const [c, ...args] = this.opts.test;
    if (!c) throw new Error('empty test command');
    const out: RunRecord[] = [];
    for (let i = 0; i < o.repeat; i++) {
      const startedAt = new Date().toISOString();
      const r = await run(c, args, {
        cwd: worktree,
        timeoutMs: this.opts.timeoutMs ?? 600_000,
        allowFailure: true,
        env: { FAULTLINE_REV: rev, FAULTLINE_RUN: String(i), FAULTLINE_WORKTREE: worktree },
      });
      out.push(
        recordFromOutput({
          runId: `${o.label.replace(/[^\w.-]+/g, '-')}-${rev.slice(0, 12)}-${i}`,
          rev,
          program: this.opts.program,
          suite: this.opts.suite ?? this.opts.program,
          command: r.command,
          output: r.all,
          exitCode: r.exitCode,
          durationMs: r.durationMs,
          startedAt,
        }),
      );
    }
    return out;
  }
}
