import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, writeFileAtomic } from '../util/fsutil.js';
import { run } from '../util/proc.js';
import type { RevisionTester, RunObservation, StepOutcome, TestRequest } from './types.js';

/**
 * A RevisionTester made of two host commands, like `git bisect run` but with faultline's
 * skip/flaky handling: `--build-cmd` and `--test-cmd` for any project, and the tests' toy C repo.
 *
 * Both run in the worktree with FAULTLINE_REV, FAULTLINE_OUT (a per-revision output dir: a build
 * that succeeded or broke there is not repeated), FAULTLINE_WORKTREE and, for the test,
 * FAULTLINE_RUN (0-based run number at this revision).
 * Build: exit 0 built, anything else is "build broken" (first line with "error" reported).
 * Test (git bisect run's convention): 0 pass, 125 cannot test here (skip), other exits fail;
 * a test that hits its timeout is an infra error (retried, then skipped).
 */
export interface CommandTesterOptions {
  build?: readonly string[];
  test: readonly string[];
  /** Parent of the per-revision output dirs. */
  outRoot: string;
  buildTimeoutMs?: number;
  testTimeoutMs?: number;
  env?: Record<string, string>;
}

const OK = '.faultline-built';
const BROKEN = '.faultline-broken';

export function firstErrorLine(output: string): string {
  const lines = output.split('\n');
  const hit =
    lines.find((l) => /\berror\b/i.test(l) && !/^make(\[\d+\])?: \*\*\*/.test(l)) ??
    lines.find((l) => /\berror\b/i.test(l));
  return (hit ?? lines.filter((l) => l.trim()).pop() ?? '').trim();
}

export class CommandTester implements RevisionTester {
  /** Revisions actually built (not served from the per-revision output dir), in order. */
  readonly builds: string[] = [];
  private readonly runCounts = new Map<string, number>();

  constructor(private readonly opts: CommandTesterOptions) {}

  describe(): string {
    return `${this.opts.build ? `build: ${this.opts.build.join(' ')}; ` : ''}test: ${this.opts.test.join(' ')}`;
  }

  private env(rev: string, worktree: string, out: string): Record<string, string> {
    return { ...this.opts.env, FAULTLINE_REV: rev, FAULTLINE_OUT: out, FAULTLINE_WORKTREE: worktree };
  }

  /** Build once per revision; returns undefined when built, or the broken outcome. */
  async build(rev: string, worktree: string): Promise<{ broken?: string; buildMs: number; cacheHit: boolean }> {
    const out = join(this.opts.outRoot, rev);
    if (await exists(join(out, OK))) return { buildMs: 0, cacheHit: true };
    if (await exists(join(out, BROKEN)))
      return { broken: (await readFile(join(out, BROKEN), 'utf8')).trim(), buildMs: 0, cacheHit: true };
    if (!this.opts.build) {
      await mkdir(out, { recursive: true });
      return { buildMs: 0, cacheHit: false };
    }
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    const [cmd, ...args] = this.opts.build;
    if (!cmd) throw new Error('empty build command');
    this.builds.push(rev);
    const r = await run(cmd, args, {
      cwd: worktree,
      timeoutMs: this.opts.buildTimeoutMs ?? 3600_000,
      env: this.env(rev, worktree, out),
      allowFailure: true,
      logFile: join(out, 'build.log'),
    });
    if (r.exitCode !== 0 || r.timedOut) {
      const first = r.timedOut ? 'build timed out' : firstErrorLine(r.all) || `exit ${r.exitCode}`;
      await writeFileAtomic(join(out, BROKEN), first + '\n');
      return { broken: first, buildMs: r.durationMs, cacheHit: false };
    }
    await writeFileAtomic(join(out, OK), '');
    return { buildMs: r.durationMs, cacheHit: false };
  }

  async test(rev: string, worktree: string, req: TestRequest): Promise<StepOutcome> {
    const t0 = Date.now();
    const b = await this.build(rev, worktree);
    if (b.broken !== undefined) return { kind: 'build-broken', detail: b.broken, durationMs: Date.now() - t0 };
    const out = join(this.opts.outRoot, rev);
    const [cmd, ...args] = this.opts.test;
    if (!cmd) throw new Error('empty test command');
    const runs: RunObservation[] = [];
    for (let i = 0; i < req.runs; i++) {
      const n = this.runCounts.get(rev) ?? 0;
      this.runCounts.set(rev, n + 1);
      const r = await run(cmd, args, {
        cwd: worktree,
        timeoutMs: this.opts.testTimeoutMs ?? 600_000,
        env: { ...this.env(rev, worktree, out), FAULTLINE_RUN: String(n) },
        allowFailure: true,
        logFile: join(out, 'test.log'),
      }).catch((e: unknown) => e as Error);
      if (r instanceof Error) return { kind: 'infra', detail: r.message, durationMs: Date.now() - t0 };
      const detail = r.all.trim().split('\n').pop()?.slice(0, 200) ?? '';
      if (r.exitCode === 125)
        return { kind: 'untestable', detail: detail || 'test exited 125', durationMs: Date.now() - t0 };
      runs.push({
        result: r.exitCode === 0 ? 'pass' : 'fail',
        durationMs: r.durationMs,
        detail: `exit ${r.exitCode}${detail ? `: ${detail}` : ''}`,
      });
    }
    return { kind: 'runs', runs, buildMs: b.buildMs, cacheHit: b.cacheHit };
  }
}
