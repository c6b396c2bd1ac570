import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { firstErrorLine } from '../toolchain/diagnostics.js';
import { newRunRecord } from '../results/record.js';
import type { Metric, ProgramRun, RunRecord, Status, SubtestResult } from '../results/types.js';
import { failureReason, parseKtap } from '../suites/parsers/ktap.js';
import { exists, writeFileAtomic } from '../util/fsutil.js';
import { run } from '../util/proc.js';
import { detectSplats } from '../console/splats.js';
import type {
  BuildRequest,
  ResultSettings,
  RevisionBuild,
  RevisionBuilder,
  RevisionRunner,
  RunContext,
  TestedRun,
} from './types.js';

/**
 * Revisions built and tested by host commands, like `git bisect run` but with faultline's skip,
 * flaky and comparison handling: `--build-cmd` / `--test-cmd` for any project, and the tests'
 * toy C repositories. Both run in the worktree with FAULTLINE_REV and FAULTLINE_WORKTREE, plus
 * FAULTLINE_OUT (a per-revision output dir, when the builder keeps one: a build that succeeded
 * or broke there is not repeated) and, for the test, FAULTLINE_RUN (0-based run number at this
 * revision). Build: exit 0 built, anything else does not build (first error line reported).
 * Test: KTAP on stdout is parsed into subtests ("# metric NAME VALUE UNIT" lines attach metrics,
 * kernel-style "WARNING:"/"BUG:" lines are splats); its exit code is kept for git bisect run's
 * convention (bisect/judge.ts: 0 pass, 125 cannot test here, anything else fails).
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

export interface CommandBuilderOptions {
  /** The build command; absent: nothing to build (the test runs on the checkout). */
  cmd?: readonly string[];
  /** Parent of per-revision output dirs: each revision is built once (bisect revisits revisions). */
  outRoot?: string;
  timeoutMs?: number;
}

const OK = '.faultline-built';
const BROKEN = '.faultline-broken';

/** The artifact of a command build: where FAULTLINE_OUT pointed, if anywhere. */
export interface CommandArtifact {
  out?: string;
}

export class CommandBuilder implements RevisionBuilder<CommandArtifact> {
  /** Revisions actually built (not served from their output dir), in order. */
  readonly builds: string[] = [];
  private readonly builtOnce = new Set<string>();

  constructor(private readonly o: CommandBuilderOptions) {}

  describe(): string {
    return this.o.cmd ? this.o.cmd.join(' ') : 'no build';
  }

  settings(): ResultSettings {
    return { build: this.o.cmd ?? null };
  }

  /** A revision built or found broken before, from its output dir. */
  private async memo(out: string | undefined): Promise<RevisionBuild<CommandArtifact> | undefined> {
    if (out === undefined) return undefined;
    const art = { artifact: { out }, full: false, durationMs: 0, cacheHit: true };
    if (await exists(join(out, OK))) return { ok: true, ...art };
    if (await exists(join(out, BROKEN)))
      return { ok: false, firstError: (await readFile(join(out, BROKEN), 'utf8')).trim(), ...art };
    return undefined;
  }

  async build(rev: string, worktree: string, request: BuildRequest = {}): Promise<RevisionBuild<CommandArtifact>> {
    const out = this.o.outRoot !== undefined ? join(this.o.outRoot, rev) : undefined;
    const memo = request.compile ? undefined : await this.memo(out);
    if (memo) return memo;
    const artifact = out !== undefined ? { out } : {};
    if (out !== undefined) {
      await rm(out, { recursive: true, force: true });
      await mkdir(out, { recursive: true });
    }
    // The first build in a worktree is a full build: its warnings are the complete baseline.
    const full = !this.builtOnce.has(worktree);
    this.builtOnce.add(worktree);
    const [c, ...args] = this.o.cmd ?? [];
    if (!c) return { ok: true, full, durationMs: 0, cacheHit: false, artifact };
    this.builds.push(rev);
    const r = await run(c, args, {
      cwd: worktree,
      timeoutMs: this.o.timeoutMs ?? 3600_000,
      allowFailure: true,
      env: { LC_ALL: 'C', ...commandEnv(rev, worktree, out) },
      ...(out !== undefined ? { logFile: join(out, 'build.log') } : {}),
    });
    const ok = r.exitCode === 0;
    const firstError = ok ? undefined : firstErrorLine(r.all, worktree) || `exit ${r.exitCode}`;
    if (out !== undefined) await writeFileAtomic(join(out, ok ? OK : BROKEN), ok ? '' : `${firstError ?? ''}\n`);
    return {
      ok,
      log: r.all,
      compiled: compiledFiles(r.all),
      full,
      durationMs: r.durationMs,
      cacheHit: false,
      artifact,
      ...(firstError !== undefined ? { firstError } : {}),
    };
  }
}

function commandEnv(rev: string, worktree: string, out: string | undefined): Record<string, string> {
  return { FAULTLINE_REV: rev, FAULTLINE_WORKTREE: worktree, ...(out !== undefined ? { FAULTLINE_OUT: out } : {}) };
}

export interface CommandRunnerOptions {
  test: readonly string[];
  /** Program name used for subtest ids ("<program>/<test>"). */
  program: string;
  suite?: string;
  timeoutMs?: number;
}

const METRIC = /^#\s*metric\s+(\S+)\s+([-+0-9.eE]+)\s*(\S*)\s*$/;

function statusOf(t: ReturnType<typeof parseKtap>['tests'][number]): Status {
  if (t.directive === 'SKIP') return 'skip';
  if (t.directive === 'ERROR' || t.directive === 'TIMEOUT') return 'error';
  return t.ok ? 'pass' : 'fail';
}

/** The KTAP subtests of a command's output, with their "# metric" lines. */
function subtestsOf(output: string, program: string, suite: string): SubtestResult[] {
  return parseKtap(output).tests.map((t) => {
    const metricOf = (d: string) => METRIC.exec(d.startsWith('#') ? d : `# ${d}`);
    const metrics: Metric[] = [];
    for (const d of t.diagnostics) {
      const m = metricOf(d);
      if (m?.[1] && m[2]) metrics.push({ name: m[1], value: Number(m[2]), unit: m[3] ?? '' });
    }
    const status = statusOf(t);
    // A failure's "# " lines say why, the metric lines excepted.
    const failed = status === 'fail' || status === 'error';
    const reason = failed ? failureReason(t, (d) => !metricOf(d)) : t.reason;
    return {
      id: `${program}/${t.name}`,
      suite,
      program,
      name: t.name,
      status,
      ...(reason ? { reason } : {}),
      ...(metrics.length ? { metrics } : {}),
    };
  });
}

/** One RunRecord from one command's output. */
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
  const subtests = subtestsOf(o.output, o.program, o.suite);
  const lastLine = o.output.trim().split('\n').pop()?.slice(0, 200) ?? '';
  const programs: ProgramRun[] = [
    {
      program: o.program,
      command: o.command,
      exitCode: o.exitCode,
      timedOut: false,
      durationMs: o.durationMs,
      status: subtests.length === 0 && o.exitCode !== 0 ? 'error' : 'pass',
      ...(lastLine ? { reason: lastLine } : {}),
      outputFile: '',
    },
  ];
  // A host command boots no guest: the record has no qemu or guest to invent.
  return newRunRecord({
    runId: o.runId,
    startedAt: o.startedAt,
    finishedAt: new Date().toISOString(),
    durationMs: o.durationMs,
    kernel: { source: 'build', path: o.rev },
    selftests: { source: 'command' },
    suites: [o.suite],
    backings: [],
    programs,
    subtests,
    splats: detectSplats(o.output),
    timing: { testsMs: o.durationMs },
  });
}

export class CommandRunner implements RevisionRunner<CommandArtifact> {
  constructor(private readonly o: CommandRunnerOptions) {}

  describe(): string {
    return this.o.test.join(' ');
  }

  settings(): ResultSettings {
    return {
      test: this.o.test,
      program: this.o.program,
      suite: this.o.suite ?? this.o.program,
      timeoutMs: this.o.timeoutMs ?? null,
    };
  }

  async run(ctx: RunContext<CommandArtifact>): Promise<TestedRun> {
    const [c, ...args] = this.o.test;
    if (!c) throw new Error('empty test command');
    const startedAt = new Date().toISOString();
    const out = ctx.artifact?.out;
    const r = await run(c, args, {
      cwd: ctx.worktree,
      timeoutMs: this.o.timeoutMs ?? 600_000,
      allowFailure: true,
      env: { ...commandEnv(ctx.rev, ctx.worktree, out), FAULTLINE_RUN: String(ctx.index) },
      ...(out !== undefined ? { logFile: join(out, 'test.log') } : {}),
    });
    const record = recordFromOutput({
      runId: ctx.runId,
      rev: ctx.rev,
      program: this.o.program,
      suite: this.o.suite ?? this.o.program,
      command: r.command,
      output: r.all,
      exitCode: r.exitCode,
      durationMs: r.durationMs,
      startedAt,
    });
    return { record };
  }
}
