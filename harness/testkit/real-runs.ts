import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyKnownIssues, type KnownIssue } from '../results/known-issues.js';
import { validateRunRecord } from '../results/record.js';
import type { Backing, RunRecord, SubtestResult } from '../results/types.js';
import { unitTestCases } from '../selftests/source-info.js';
import { uffdSuite } from '../suites/uffd.js';
import { PROJECT_ROOT } from '../util/project.js';

/**
 * Records made from real captures only: outputs a real guest printed and results.json files real
 * runs wrote, each named by its fixture. Tests build on them instead of inventing results.
 */

const HARNESS = join(PROJECT_ROOT, 'harness');

/**
 * uffd-unit-tests' subtests from one of its real outputs (harness/suites/fixtures/uffd/NAME), as
 * suite uffd parses it for a job on `backings`: the test cases are 6.12's own list.
 */
export function unitTestsFrom(
  name: string,
  o: { backings: Backing[]; args?: string[]; exitCode?: number },
): SubtestResult[] {
  const source = readFileSync(join(HARNESS, 'selftests', 'fixtures', 'uffd-unit-tests.6.12.117.c'), 'utf8');
  const output = readFileSync(join(HARNESS, 'suites', 'fixtures', 'uffd', name), 'utf8');
  const args = o.args ?? [];
  return uffdSuite.parse(
    { program: 'uffd-unit-tests', args, timeoutSec: 1200, label: ['uffd-unit-tests', ...args.slice(1)].join('.') },
    { output, exitCode: o.exitCode ?? 1, timedOut: false, durationMs: 1 },
    {
      backings: o.backings,
      smp: 2,
      memMiB: 1024,
      hugepages2m: 64,
      quick: false,
      programs: [{ name: 'uffd-unit-tests', status: 'built', path: '/x', cases: unitTestCases(source) }],
    },
  ).subtests;
}

/** The real results.json of `faultline run --suite mm --backing hugetlb,shmem` on Debian's 6.12.118 (TCG). */
const MM_RUN_6_12 = join(HARNESS, 'results', 'fixtures', 'known-issues', 'mm-hugetlb-shmem.6.12.118-tcg.json');

/**
 * That run as one night of a plan: the subtests in `passing` made to pass (the one edit), started
 * at `startedAt`, with `issues` applied as nightly applies them.
 */
export function mmRunAsNight(o: { passing: string[]; startedAt: string; issues: readonly KnownIssue[] }): RunRecord {
  const r = validateRunRecord(JSON.parse(readFileSync(MM_RUN_6_12, 'utf8')), MM_RUN_6_12);
  for (const s of r.subtests)
    if (o.passing.includes(s.id)) {
      s.status = 'pass';
      delete s.reason;
    }
  r.startedAt = o.startedAt;
  applyKnownIssues(r, o.issues);
  return r;
}

/**
 * A real run whose kernel WARNed (fs/userfaultfd.c, on UFFDIO_ZEROPAGE): the culprit check of a
 * real `bisect --splat` (harness/bisect/fixtures/culprit/splat).
 */
export function warningRun(): RunRecord {
  const file = join(HARNESS, 'bisect', 'fixtures', 'culprit', 'splat', 'runs', 'verify-culprit-d003ea0381c2-run1');
  return validateRunRecord(JSON.parse(readFileSync(join(file, 'results.json'), 'utf8')), file);
}
