/**
 * Exit codes are part of faultline's contract with CI systems and with bisect:
 *   0  everything ran and passed (skips allowed)
 *   1  a test failed, crashed, or the kernel splatted
 *   2  bad input or an infrastructure error (qemu missing, guest never came up, ...)
 *   3  the kernel revision does not build (bisect treats this as "skip", not as bad)
 *   4  --offline, and the caches lack something only the network has (run once without it)
 */
export const ExitCode = {
  ok: 0,
  testFailure: 1,
  infra: 2,
  buildBroken: 3,
  offlineMissing: 4,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the user can act on: one line saying what is wrong and how to fix it. */
export class FaultlineError extends Error {
  readonly exitCode: ExitCodeValue;
  /** Extra context printed after the one-line message (e.g. console tail). */
  readonly detail?: string;
  constructor(message: string, opts: { exitCode?: ExitCodeValue; detail?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FaultlineError';
    this.exitCode = opts.exitCode ?? ExitCode.infra;
    if (opts.detail !== undefined) this.detail = opts.detail;
  }
}

/** Bad user input (flags, plan files, paths). Always exit 2. */
export class UsageError extends FaultlineError {
  constructor(message: string, detail?: string) {
    super(message, detail === undefined ? { exitCode: ExitCode.infra } : { exitCode: ExitCode.infra, detail });
    this.name = 'UsageError';
  }
}

/** The revision under test does not compile: distinct from infrastructure trouble. */
export class BuildBrokenError extends FaultlineError {
  readonly firstError: string;
  constructor(message: string, firstError: string, logTail: string) {
    super(message, { exitCode: ExitCode.buildBroken, detail: logTail });
    this.name = 'BuildBrokenError';
    this.firstError = firstError;
  }
}

/** --offline, and a cache lacks what only apt and the network can give: distinct from bad input. */
export class OfflineMissingError extends FaultlineError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.offlineMissing });
    this.name = 'OfflineMissingError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
