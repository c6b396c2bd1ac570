/**
 * Parser for the monolithic tools/testing/selftests/vm/userfaultfd.c (before 6.4, built
 * as uffd-stress). In every mode it runs the stress bounces and then its own unit checks,
 * each printed as a line (stdout line-buffered on the harness's pty; err() writes to stderr):
 *
 *   nr_pages: N, nr_pages_per_cpu: M
 *   bounces: B, mode: rnd racing read, userfaults: X missing (a+b+\b) Y wp (c+d+\b)
 *   testing uffd-wp with pagemap (pgsize=4096): done            (anon only, when WP works)
 *   testing UFFDIO_ZEROPAGE: done.
 *   testing signal delivery: done.
 *   testing events (fork, remap, remove): userfaults: N missing (N+\b) ...
 *   testing minor faults: userfaults: N minor (N+\b)             (shared shmem/hugetlb)
 *   testing collapse of uffd memory into PMD-mapped THPs: done.  (":collapse" mod)
 *
 * Failure paths: err() prints "ERROR: <msg> (errno=E, line=L)" and exit(1) (errexit(4)
 * when userfaultfd is unavailable: a skip); a check that returns non-zero stops the
 * `||` chain and main() returns 1 with no message. So a check passed iff it reported its
 * outcome and the program went on to the next check or exited 0; the check the program
 * was in when it died is charged with it, and the checks it never reached are not reported.
 */

import { killedBy, type ProgramOutput } from '../types.js';

export type LegacyOutcome = 'pass' | 'fail' | 'skip' | 'error';

export interface LegacyCheck {
  /** Stable name: 'stress', 'zeropage', 'signal', 'events', 'minor', 'minor-collapse', 'pagemap-wp-4k', ... */
  check: string;
  /** The words the program printed after "testing " (absent for the stress bounces). */
  label?: string;
  outcome: LegacyOutcome;
  reason?: string;
}

/** How the program ended: its output aside, what the transport captured. */
export type LegacyExit = Omit<ProgramOutput, 'output'>;

interface Section {
  check: string;
  label?: string;
  body: string;
}

const KSFT_SKIP = 4;
const CHECK_START = /^testing ([^:\n]+):/gm;
const ERROR_LINE = /ERROR: [^\n]*/;
const NAMED: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^UFFDIO_ZEROPAGE$/, () => 'zeropage'],
  [/^signal delivery$/, () => 'signal'],
  [/^events \(fork, remap, remove\)$/, () => 'events'],
  [/^minor faults$/, () => 'minor'],
  [/^collapse of uffd memory into PMD-mapped THPs$/, () => 'minor-collapse'],
  [/^uffd-wp with pagemap \(pgsize=(\d+)\)$/, (m) => `pagemap-wp-${sizeName(Number(m[1]))}`],
];

function sizeName(bytes: number): string {
  return bytes % 1048576 === 0 ? `${bytes / 1048576}m` : bytes % 1024 === 0 ? `${bytes / 1024}k` : String(bytes);
}

/** The id-safe name of a check from what the program printed (unknown checks of other trees keep their words). */
export function checkName(label: string): string {
  for (const [re, name] of NAMED) {
    const m = re.exec(label.trim());
    if (m) return name(m);
  }
  return (
    label
      .trim()
      .replace(/[^A-Za-z0-9_.=-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'check'
  );
}

/** CRs gone, and uffd_stats_report's "+\b" (backspace over the last '+') applied. */
function cleanLegacyOutput(text: string): string {
  /* eslint-disable no-control-regex -- the backspaces are what this removes */
  return text
    .replace(/\r/g, '')
    .replace(/[^\n]\x08/g, '')
    .replace(/\x08/g, '');
  /* eslint-enable no-control-regex */
}

/** The stress section (everything before the first "testing" line) and one section per check. */
function sections(text: string): Section[] {
  const starts = [...text.matchAll(CHECK_START)];
  const out: Section[] = [{ check: 'stress', body: text.slice(0, starts[0]?.index ?? text.length) }];
  starts.forEach((m, i) => {
    const label = (m[1] ?? '').trim();
    out.push({ check: checkName(label), label, body: text.slice(m.index ?? 0, starts[i + 1]?.index ?? text.length) });
  });
  return out;
}

/** The check the program was in at the end of `output` (a prefix of its output). */
export function legacyRunningCheck(output: string): string {
  return sections(cleanLegacyOutput(output)).at(-1)?.check ?? 'stress';
}

/** Bounces that printed their userfaults report, of those that started. */
function bounces(body: string): { started: number; reported: number } {
  const lines = [...body.matchAll(/^bounces: \d+, mode:[^\n]*$/gm)].map((m) => m[0]);
  return { started: lines.length, reported: lines.filter((l) => /userfaults: /.test(l)).length };
}

/** Whether a section printed its own outcome (done / its fault counts / every bounce). */
function reported(s: Section, expectedBounces: number | undefined): boolean {
  if (s.check !== 'stress') return /:\s*(?:done\b|userfaults: )|\bdone\.?\s*$/m.test(s.body);
  const b = bounces(s.body);
  return (
    b.reported > 0 && b.reported === b.started && (expectedBounces === undefined || b.reported === expectedBounces)
  );
}

function lastLine(body: string): string {
  return body.trim().split('\n').at(-1)?.trim() ?? '';
}

/** Outcome of the section the program ended in: its exit status decides. */
function finalOutcome(
  s: Section,
  exit: LegacyExit,
  expectedBounces: number | undefined,
): Omit<LegacyCheck, 'check' | 'label'> {
  const where = s.check === 'stress' ? 'the stress bounces' : `the ${s.check} check`;
  const errLine = ERROR_LINE.exec(s.body)?.[0]?.trim();
  const done = reported(s, expectedBounces);
  if (exit.timedOut)
    return { outcome: 'error', reason: `timed out after ${Math.round(exit.durationMs / 1000)} s during ${where}` };
  if (exit.exitCode === null)
    return { outcome: 'error', reason: `${killedBy(exit)} during ${where}${errLine ? ` (${errLine})` : ''}` };
  if (errLine)
    return exit.exitCode === KSFT_SKIP ? { outcome: 'skip', reason: errLine } : { outcome: 'fail', reason: errLine };
  if (exit.exitCode === KSFT_SKIP)
    return { outcome: 'skip', reason: /^skip: [^\n]*/m.exec(s.body)?.[0] ?? `exit 4 (KSFT_SKIP) during ${where}` };
  if (exit.exitCode === 0) {
    if (done) return { outcome: 'pass' };
    const b = bounces(s.body);
    const what =
      s.check === 'stress' ? `${b.reported} of ${expectedBounces ?? '?'} bounces reported` : 'no outcome printed';
    return { outcome: 'error', reason: `exited 0 in ${where} with ${what}` };
  }
  const last = lastLine(s.body);
  if (exit.exitCode === 1) {
    return {
      outcome: 'fail',
      reason: done
        ? `exit 1 after the check's report "${last}": the check returned failure (its fault counts are not what it expects)`
        : `exit 1 during ${where} with no ERROR line${last ? ` (last line: "${last}")` : ''}`,
    };
  }
  return { outcome: 'error', reason: `exit ${exit.exitCode} during ${where}${last ? ` (last line: "${last}")` : ''}` };
}

/**
 * Every check the program started, with its outcome. `expectedBounces` (the command's
 * third argument) makes a stress phase that reported fewer bounces incomplete.
 */
export function parseLegacyUffd(text: string, exit: LegacyExit, expectedBounces?: number): LegacyCheck[] {
  const secs = sections(cleanLegacyOutput(text));
  return secs.map((s, i) => {
    const head = { check: s.check, ...(s.label !== undefined ? { label: s.label } : {}) };
    if (i === secs.length - 1) return { ...head, ...finalOutcome(s, exit, expectedBounces) };
    // The program went on to another check, so this one returned success; an ERROR from
    // a child (whose exit the parent reports) still marks it.
    const errLine = ERROR_LINE.exec(s.body)?.[0]?.trim();
    if (errLine) return { ...head, outcome: 'fail', reason: errLine };
    if (!reported(s, expectedBounces))
      return { ...head, outcome: 'error', reason: `went on to the next check without reporting ${s.check}` };
    return { ...head, outcome: 'pass' };
  });
}
