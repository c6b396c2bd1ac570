/**
 * Parser for tools/testing/selftests/mm/uffd-unit-tests output (not KTAP):
 *
 *   Testing UFFDIO_API (with syscall)... done      (API checks: no memory type)
 *   Testing <test> on <mem>... done
 *   Testing <test> on <mem>... skipped [reason: <why>]
 *   Testing <test> on <mem>... failed [reason: <why>]
 *   Userfaults unit tests: pass=P, skip=S, fail=F (total=T)
 *
 * A test may print other lines between "Testing ... " and its outcome (child
 * processes, err() messages). err() exits the whole program with no summary line:
 * that is a crash of the running subtest, never a pass.
 */

export type UnitOutcome = 'pass' | 'skip' | 'fail' | 'crash';

export interface UnitSubtest {
  test: string;
  /** Memory type; absent for the UFFDIO_API checks, which run on none. */
  mem?: string;
  outcome: UnitOutcome;
  reason?: string;
}

export interface UnitSummary {
  pass: number;
  skip: number;
  fail: number;
  total: number;
}

export interface UnitParse {
  subtests: UnitSubtest[];
  summary?: UnitSummary;
  /** "Userfaultfd not supported or unprivileged, skip all tests". */
  allSkipped?: string;
}

const START = /Testing ([^\n]+?)\.\.\. /g;
const ON_MEM = /^(\S+) on (\S+)$/;
const SUMMARY = /Userfaults unit tests: pass=(\d+), skip=(\d+), fail=(\d+) \(total=(\d+)\)/;
const NOT_SUPPORTED = /Userfaultfd not supported or unprivileged, skip all tests/;

function outcomeOf(body: string): { outcome: UnitOutcome; reason?: string } {
  // The outcome is the first of these after the "Testing ..." prefix.
  const m =
    /(?:^|\n|\s)(done)\s*(?:\n|$)|skipped \[reason: ([\s\S]*?)\]\s*(?:\n|$)|failed \[reason: ([\s\S]*?)\]\s*(?:\n|$)/.exec(
      body,
    );
  if (!m) {
    const errLine = /^ERROR: .*$/m.exec(body)?.[0] ?? /\S.*$/m.exec(body)?.[0];
    return errLine
      ? { outcome: 'crash', reason: errLine.trim() }
      : { outcome: 'crash', reason: 'no outcome printed (program died)' };
  }
  if (m[1]) return { outcome: 'pass' };
  if (m[2] !== undefined) return { outcome: 'skip', reason: m[2].trim() };
  return { outcome: 'fail', reason: (m[3] ?? '').trim() };
}

export function parseUffdUnitTests(text: string): UnitParse {
  const clean = text.replace(/\r/g, '');
  const result: UnitParse = { subtests: [] };
  if (NOT_SUPPORTED.test(clean)) result.allSkipped = 'userfaultfd not supported or unprivileged';
  const starts: { test: string; mem?: string; bodyStart: number; index: number }[] = [];
  for (const m of clean.matchAll(START)) {
    const label = m[1] ?? '';
    const on = ON_MEM.exec(label);
    // "UFFDIO_API (with /dev/userfaultfd)" -> "UFFDIO_API-with-_dev_userfaultfd": one path segment.
    const test = on ? (on[1] ?? '') : label.replace(/[()]/g, '').trim().replace(/\//g, '_').replace(/\s+/g, '-');
    starts.push({
      test,
      ...(on ? { mem: on[2] ?? '' } : {}),
      bodyStart: (m.index ?? 0) + m[0].length,
      index: m.index ?? 0,
    });
  }
  const sm = SUMMARY.exec(clean);
  for (let i = 0; i < starts.length; i++) {
    const s = starts[i];
    if (!s) continue;
    const end = starts[i + 1]?.index ?? (sm ? sm.index : clean.length);
    const body = clean.slice(s.bodyStart, end);
    result.subtests.push({ test: s.test, ...(s.mem !== undefined ? { mem: s.mem } : {}), ...outcomeOf(body) });
  }
  if (sm) result.summary = { pass: Number(sm[1]), skip: Number(sm[2]), fail: Number(sm[3]), total: Number(sm[4]) };
  return result;
}
