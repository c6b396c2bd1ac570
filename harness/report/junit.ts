/**
 * junit.xml for a whole nightly (the per-run writer in results/writers.ts covers one run):
 * one <testsuite> per job, so CI dashboards show kernel / config / guest RAM / backing / rep.
 */
import type { RunRecord } from '../results/types.js';
import { junitTestcase, xmlEscape } from '../results/writers.js';
import type { NightlyRecord } from '../nightly/record.js';

export interface JunitRun {
  /** Suite name shown by dashboards (the nightly job id). */
  name: string;
  /** Dotted prefix for testcase classnames. */
  classPrefix: string;
  record: RunRecord;
}

export function toMultiRunJunit(runs: readonly JunitRun[], name = 'faultline'): string {
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  let time = 0;
  const suites: string[] = [];
  for (const { name: suiteName, classPrefix, record: r } of runs) {
    const cases = r.subtests.map((t) => junitTestcase(t, classPrefix));
    for (const sp of r.splats) {
      cases.push(
        `    <testcase classname="${xmlEscape(`${classPrefix}.kernel`)}" name="${xmlEscape(`kernel/${sp.kind}${sp.test ? ` during ${sp.test}` : ''}`)}"><failure message="${xmlEscape(sp.title)}">${xmlEscape(sp.excerpt)}</failure></testcase>`,
      );
    }
    if (r.infraError !== undefined)
      cases.push(
        `    <testcase classname="${xmlEscape(`${classPrefix}.faultline`)}" name="infrastructure"><error message="${xmlEscape(r.infraError.split('\n')[0] ?? '')}">${xmlEscape(r.infraError)}</error></testcase>`,
      );
    const f = r.summary.fail + r.splats.length;
    const e = r.summary.error + (r.infraError !== undefined ? 1 : 0);
    const n = cases.length;
    tests += n;
    failures += f;
    errors += e;
    skipped += r.summary.skip;
    time += r.durationMs / 1000;
    suites.push(
      `  <testsuite name="${xmlEscape(suiteName)}" tests="${n}" failures="${f}" errors="${e}" skipped="${r.summary.skip}" time="${(r.durationMs / 1000).toFixed(3)}" timestamp="${xmlEscape(r.startedAt)}" hostname="${xmlEscape(r.guest.uname ?? r.kernel.release ?? 'guest')}">`,
      ...cases,
      '  </testsuite>',
    );
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xmlEscape(name)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}

export function toNightlyJunit(
  record: NightlyRecord,
  runs: readonly { job: { id: string; kernel: string; config: string; guestRam: string }; record: RunRecord }[],
): string {
  return toMultiRunJunit(
    runs.map((r) => ({
      name: r.job.id,
      classPrefix: [r.job.kernel, r.job.config, `ram-${r.job.guestRam}`].map((p) => p.replace(/\./g, '_')).join('.'),
      record: r.record,
    })),
    `faultline ${record.nightlyId}`,
  );
}
