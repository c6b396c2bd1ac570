/**
 * The bisect engine talks to the world through one interface, StepTester: build a revision in
 * a worktree and run the test on it `runs` times, as pass/fail observations or a reason to skip.
 * Production wires it to the revision tester (harness/revision/) through judge.ts.
 */

/** One run of the test on a built revision. */
export interface RunObservation {
  result: (typeof RUN_RESULTS)[number];
  /** The metric value for metric specs (ns for time metrics). */
  value?: number;
  unit?: string;
  durationMs: number;
  detail?: string;
  /** Where this run's own results live (RunRecord dir), when there is one. */
  runDir?: string;
}

export type StepOutcome =
  /** The revision does not compile: skipped, never good or bad. */
  | { kind: 'build-broken'; detail: string; durationMs: number }
  /** The kernel did not come up: skipped. */
  | { kind: 'boot-failed'; detail: string; durationMs: number }
  /** Harness/host trouble: retried, then skipped. */
  | { kind: 'infra'; detail: string; durationMs: number }
  /** The test does not exist or is skipped at this revision: skipped. */
  | { kind: 'untestable'; detail: string; durationMs: number }
  /** The user's --program does not compile against this revision's headers: skipped (not a kernel build break). */
  | { kind: 'program-broken'; detail: string; durationMs: number }
  | { kind: 'runs'; runs: RunObservation[]; buildMs?: number; cacheHit?: boolean };

export interface TestRequest {
  /** How many runs the engine wants from this call (adaptive mode asks one at a time). */
  runs: number;
  /** Step label for logs, e.g. "good endpoint", "step 3". */
  label: string;
}

export interface StepTester {
  test(rev: string, worktree: string, req: TestRequest): Promise<StepOutcome>;
  /** One line for the report, e.g. "kernel build + uffd-unit-tests:minor/hugetlb". */
  describe(): string;
}

export const STEP_ROLES = [
  'good-endpoint',
  'bad-endpoint',
  'bisect',
  'verify-parent',
  'verify-culprit',
  'verify-revert',
] as const;
export type StepRole = (typeof STEP_ROLES)[number];
export const STEP_VERDICTS = ['good', 'bad', 'skip'] as const;
export type StepVerdict = (typeof STEP_VERDICTS)[number];
export const RUN_RESULTS = ['pass', 'fail'] as const;
export const POLICY_MODES = ['fixed', 'adaptive'] as const;
export const BISECT_OUTCOMES = ['found', 'ambiguous', 'refused'] as const;

export interface StepRecord {
  role: StepRole;
  rev: string;
  subject: string;
  verdict: StepVerdict;
  /** Why a step was skipped (build broken, boot failed, ...), or the run tally. */
  reason: string;
  /** Probability that the verdict is right given its runs (see policy.ts); 0 for skips. */
  confidence: number;
  runs: RunObservation[];
  /** Tester calls that ended in infra errors before the verdict. */
  infraErrors: string[];
  durationMs: number;
  buildMs?: number;
  cacheHit?: boolean;
  startedAt: string;
  /** The verdict was handed to git bisect (false until `git bisect good/bad/skip` returned). */
  marked: boolean;
}

export interface CommitSummary {
  hash: string;
  subject: string;
  authorName: string;
  authorEmail: string;
  authorDate: string;
}

export interface RunPolicy {
  /** 'fixed': exactly `runs` runs per step. 'adaptive': one at a time until decided, at most `runs`. */
  mode: (typeof POLICY_MODES)[number];
  runs: number;
  /** A step is bad when at least this many runs fail (K). */
  failThreshold: number;
  /** Runs for each endpoint and for each culprit verification revision. */
  endpointRuns: number;
  /** Adaptive mode: wanted probability that a bad revision is not called good. */
  targetConfidence: number;
  /** Tester calls retried after an infra error before the step is skipped. */
  infraRetries: number;
}

/** A command line as typed: relative paths in argv are relative to cwd. */
export interface BisectCommand {
  cwd: string;
  /** Starts with the program name, e.g. ["faultline", "bisect", "--kernel-src", ...]. */
  argv: string[];
}

export interface BisectRecord {
  schema: 'faultline.bisect/1';
  repo: string;
  goodRef: string;
  badRef: string;
  good: string;
  bad: string;
  spec: string;
  tester: string;
  policy: RunPolicy;
  /** The faultline command line that started the bisect (rerun it to reproduce); absent in older records. */
  command?: BisectCommand;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  outcome: (typeof BISECT_OUTCOMES)[number];
  /** One line: why the bisect refused to start (endpoints), when it did. */
  refusal?: string;
  culprit?: CommitSummary & { confidence: number };
  /** When only skipped commits remain: the first bad commit is one of these. */
  candidates?: CommitSummary[];
  verification?: {
    parent: string;
    parentVerdict: StepVerdict;
    culpritVerdict: StepVerdict;
    revert?: { verdict: StepVerdict | 'conflict'; commit?: string; reason?: string };
    verified: boolean;
  };
  /** Failure rates estimated from every run (Jeffreys-smoothed), used for confidences. */
  rates: { goodFailRate: number; badFailRate: number };
  /** Pass threshold used by adaptive mode (passes needed to call a step good). */
  passThreshold: number;
  steps: StepRecord[];
  bisectLog: string;
  stats: {
    /** Distinct revisions built and tested (endpoints + bisect steps + revert). */
    revisionsTested: number;
    bisectSteps: number;
    skips: number;
    endpointChecks: number;
    runs: number;
    /** Candidate commits in good..bad when the bisect started. */
    rangeSize: number;
  };
}
