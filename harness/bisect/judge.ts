import type { RunRecord } from '../results/types.js';
import { CommandBuilder, CommandRunner, type CommandArtifact } from '../revision/command.js';
import { RevisionTester } from '../revision/tester.js';
import { ProgramCompileError } from '../revision/types.js';
import { FaultlineError, errorMessage } from '../util/errors.js';
import { isFatalSplat } from '../console/severity.js';
import { evaluateRecord, type Evaluation, type TestSpec } from './spec.js';
import type { RunObservation, StepOutcome, StepTester, TestRequest } from './types.js';

/**
 * Bisect's side of the revision tester (harness/revision/): build the revision, test it, and turn
 * each RunRecord into a pass/fail observation through a judge: the test spec for guest runs
 * (judgeRun), the exit code for --test-cmd (judgeExitCode). A revision that does not compile,
 * a --program that does not compile against it, a kernel that dies at boot and an untestable
 * run are skips; harness trouble is infra (the engine retries it).
 */
export type Judge = (record: RunRecord) => Evaluation | { kind: 'boot-failed'; detail: string };

/**
 * A guest that never came up because the kernel itself died (panic/oops during boot). Judged by
 * the boot never finishing, not by infraError: a run that explains a guest death by its console
 * splat may leave infraError unset.
 */
function bootFailure(record: Pick<RunRecord, 'infraError' | 'guest' | 'splats'>): string | undefined {
  if (record.guest?.bootMs !== undefined) return undefined;
  const crash = record.splats.find(isFatalSplat);
  if (!crash) return undefined;
  return record.infraError !== undefined
    ? `${record.infraError} (${crash.title})`
    : `kernel died during boot: ${crash.title}`;
}

/**
 * One guest run's verdict. A kernel that dies at boot cannot run the test (skip), except for
 * --splat: a matching splat is the answer wherever it happened, boot included.
 */
export function judgeRun(
  spec: TestSpec,
  record: Pick<RunRecord, 'subtests' | 'infraError' | 'guest' | 'splats'>,
): Evaluation | { kind: 'boot-failed'; detail: string } {
  const ev = evaluateRecord(spec, record);
  if (spec.kind === 'splat' && ev.kind === 'fail') return ev;
  const boot = bootFailure(record);
  return boot !== undefined ? { kind: 'boot-failed', detail: boot } : ev;
}

/** git bisect run's convention for a test command: 0 pass, 125 cannot test here, other exits fail. */
function judgeExitCode(record: Pick<RunRecord, 'programs'>): Evaluation {
  const p = record.programs[0];
  const detail = p?.reason ?? '';
  if (p?.exitCode === 125) return { kind: 'untestable', detail: detail || 'test exited 125' };
  return {
    kind: p?.exitCode === 0 ? 'pass' : 'fail',
    detail: `exit ${String(p?.exitCode)}${detail ? `: ${detail}` : ''}`,
  };
}

/** Extra runs a step spends when known issues strike instead of the bisected failure. */
const KNOWN_RERUNS = 2;

export class JudgedTester<A> implements StepTester {
  constructor(
    private readonly revision: RevisionTester<A>,
    private readonly judge: Judge,
  ) {}

  describe(): string {
    return this.revision.describe();
  }

  async test(rev: string, worktree: string, req: TestRequest): Promise<StepOutcome> {
    const t0 = Date.now();
    const failed = (kind: 'infra' | 'program-broken', detail: string): StepOutcome => ({
      kind,
      detail,
      durationMs: Date.now() - t0,
    });
    let build;
    try {
      build = await this.revision.build(rev, worktree);
    } catch (e) {
      if (e instanceof FaultlineError) return failed('infra', `build: ${e.message}`);
      throw e;
    }
    if (!build.ok)
      return { kind: 'build-broken', detail: build.firstError ?? 'build failed', durationMs: Date.now() - t0 };
    const buildMs = Date.now() - t0;
    const runs: RunObservation[] = [];
    let knownHits = 0;
    // One run at a time: a run that cannot answer (infra, boot failure) ends the call.
    for (let i = 0; i < req.runs; i++) {
      let tested;
      try {
        [tested] = await this.revision.test(rev, worktree, build.artifact, { runs: 1, label: req.label });
      } catch (e) {
        if (e instanceof ProgramCompileError) return failed('program-broken', e.message);
        if (e instanceof FaultlineError) return failed('infra', errorMessage(e));
        throw e;
      }
      if (!tested) return failed('infra', 'the revision tester returned no run');
      const ev = this.judge(tested.record);
      if (ev.kind === 'known') {
        // A known issue struck instead of the bisected failure: run again, within a bound.
        if (++knownHits > KNOWN_RERUNS)
          return {
            kind: 'untestable',
            detail: `${knownHits} runs hit a known issue, not the bisected failure (last: ${ev.detail})`,
            durationMs: Date.now() - t0,
          };
        i--;
        continue;
      }
      if (ev.kind !== 'pass' && ev.kind !== 'fail')
        return { kind: ev.kind, detail: ev.detail, durationMs: Date.now() - t0 };
      runs.push({
        result: ev.kind,
        durationMs: tested.record.durationMs,
        detail: ev.detail,
        ...(tested.dir !== undefined ? { runDir: tested.dir } : {}),
        ...(ev.value !== undefined ? { value: ev.value } : {}),
        ...(ev.unit !== undefined ? { unit: ev.unit } : {}),
      });
    }
    return { kind: 'runs', runs, buildMs, cacheHit: build.cacheHit };
  }
}

/** `--build-cmd/--test-cmd`: host commands, each revision built once into its own dir under outRoot. */
export function commandStepTester(o: { build?: readonly string[]; test: readonly string[]; outRoot: string }): {
  tester: JudgedTester<CommandArtifact>;
  builder: CommandBuilder;
} {
  const builder = new CommandBuilder({ ...(o.build ? { cmd: o.build } : {}), outRoot: o.outRoot });
  const runner = new CommandRunner({ test: o.test, program: 'test-cmd' });
  return { tester: new JudgedTester(new RevisionTester(builder, runner), judgeExitCode), builder };
}
