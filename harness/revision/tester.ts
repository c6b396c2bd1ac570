import type {
  BuildRequest,
  RevisionBuild,
  RevisionBuilder,
  RevisionRunner,
  ResultSettings,
  TestedRun,
} from './types.js';

/**
 * The revision tester: builds a revision checked out in a worktree and tests it N times, one
 * RunRecord per run. `faultline bisect` judges the records through its spec (bisect/judge.ts),
 * `faultline series` compares them (series/series.ts). What a build and a run are is up to the
 * builder and runner: a kernel build + guest runs (kernel.ts) or host commands (command.ts).
 */
export class RevisionTester<A> {
  private readonly runCounts = new Map<string, number>();

  constructor(
    readonly builder: RevisionBuilder<A>,
    readonly runner: RevisionRunner<A>,
  ) {}

  /** Build the revision checked out in `worktree` (cached by the builder: a revisit is a cache hit). */
  build(rev: string, worktree: string, request: BuildRequest = {}): Promise<RevisionBuild<A>> {
    return this.builder.build(rev, worktree, request);
  }

  /**
   * Run the test `runs` times on a built revision. Run numbers continue across calls at the same
   * revision (adaptive bisect asks for one run at a time), so every run has its own id.
   */
  async test(
    rev: string,
    worktree: string,
    artifact: A | undefined,
    o: { runs: number; label: string },
  ): Promise<TestedRun[]> {
    await this.runner.prepare?.(rev, worktree, artifact);
    const out: TestedRun[] = [];
    for (let i = 0; i < o.runs; i++) {
      const index = this.runCounts.get(rev) ?? 0;
      this.runCounts.set(rev, index + 1);
      const runId = `${o.label.replace(/[^\w.-]+/g, '-')}-${rev.slice(0, 12)}-run${index}`;
      out.push(await this.runner.run({ rev, worktree, artifact, index, runId }));
    }
    return out;
  }

  /** One line for reports: "<build> + <test>". */
  describe(): string {
    return `${this.builder.describe()} + ${this.runner.describe()}`;
  }

  /** Everything that changes the results of a revision's runs (keys cached results). */
  settings(artifact: A | undefined): { build: ResultSettings; test: ResultSettings } {
    return { build: this.builder.settings(), test: this.runner.settings(artifact) };
  }
}
