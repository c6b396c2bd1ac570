/**
 * JUnit XML views: junit.xml of one run, and of a whole nightly with one <testsuite> per job, so
 * CI dashboards show kernel / config / guest RAM / backing / rep.
 */
import type { RunRecord, SubtestResult } from '../results/types.js';
import { escapeMarkup } from '../util/markup.js';
import type { NightlyRecord } from '../results/nightly.js';

/**
 * One JUnit <testcase> (per-run and nightly junit.xml alike). A flaky subtest passes with
 * one <flakyFailure>/<flakyError> per failed attempt: Maven Surefire's rerun convention,
 * which Jenkins, GitLab and the JUnit dashboards read. Surefire's format wants a time on
 * every testcase and a type on every failure and error (junit.test.ts checks the documents).
 */
function junitTestcase(t: SubtestResult, classPrefix?: string): string {
  const classname = escapeMarkup(
    `${classPrefix ? `${classPrefix}.` : ''}${t.program}${t.backing ? `.${t.backing}` : ''}`,
  );
  const head = `    <testcase classname="${classname}" name="${escapeMarkup(t.id)}" time="${((t.durationMs ?? 0) / 1000).toFixed(3)}"`;
  const reason = escapeMarkup(t.reason ?? '');
  const metrics = t.metrics?.length
    ? `<system-out>${escapeMarkup(t.metrics.map((m) => `${m.name}=${m.value} ${m.unit}`).join('\n'))}</system-out>`
    : '';
  // A failure a known issue explains is skipped, naming the issue (the status stays in results.json).
  if (t.known !== undefined && t.status !== 'pass')
    return `${head}><skipped message="${escapeMarkup(`known issue ${t.known}: ${t.status}${t.reason ? `: ${t.reason}` : ''}`)}"/>${metrics}</testcase>`;
  switch (t.status) {
    case 'pass':
      return metrics ? `${head}>${metrics}</testcase>` : `${head}/>`;
    case 'skip':
      return `${head}><skipped message="${reason}"/></testcase>`;
    case 'fail':
      return `${head}><failure message="${reason}" type="fail"/>${metrics}</testcase>`;
    case 'error':
      return `${head}><error message="${reason}" type="error"/>${metrics}</testcase>`;
    case 'flaky': {
      const failed = (t.attempts ?? []).filter((a) => a.status === 'fail' || a.status === 'error');
      // Surefire's flaky elements hold a stackTrace first: the attempt's reason is what we have.
      const flaky = failed.map((a) => {
        const tag = a.status === 'fail' ? 'flakyFailure' : 'flakyError';
        const reason = escapeMarkup(a.reason ?? '');
        return `<${tag} message="${reason}" type="${a.status}"><stackTrace>${reason}</stackTrace><system-out>${escapeMarkup(a.outputFile)}</system-out></${tag}>`;
      });
      return `${head}>${flaky.join('')}${metrics}</testcase>`;
    }
  }
}

/**
 * The testcases a run adds beyond its subtests, and the failures and errors it counts with them:
 * a failed `kernel/<kind>` testcase per kernel splat, an errored `infrastructure` testcase for an
 * infrastructure error. With a classPrefix (a multi-run file: nightly, export) a splat's name
 * says during which test it came and an infrastructure error's first line is the message, the
 * whole error the body; without (a run's own junit.xml) the whole error is the message.
 */
function runLevelTestcases(
  r: RunRecord,
  classPrefix?: string,
): { cases: string[]; failures: number; errors: number; skipped: number } {
  const multi = classPrefix !== undefined;
  const cases = r.splats.map((sp) => {
    const head = `    <testcase classname="${escapeMarkup(multi ? `${classPrefix}.kernel` : 'kernel')}" name="${escapeMarkup(`kernel/${sp.kind}${multi && sp.test ? ` during ${sp.test}` : ''}`)}" time="0.000">`;
    return sp.known !== undefined
      ? `${head}<skipped message="${escapeMarkup(`known issue ${sp.known}: ${sp.title}`)}"/></testcase>`
      : `${head}<failure message="${escapeMarkup(sp.title)}" type="${escapeMarkup(sp.kind)}">${escapeMarkup(sp.excerpt)}</failure></testcase>`;
  });
  // A run's own file has always left an empty infrastructure error out; the multi-run files keep it.
  const infra = multi ? r.infraError !== undefined : Boolean(r.infraError);
  if (infra && r.infraError !== undefined) {
    const error = multi
      ? `<error message="${escapeMarkup(r.infraError.split('\n')[0] ?? '')}" type="infrastructure">${escapeMarkup(r.infraError)}</error>`
      : `<error message="${escapeMarkup(r.infraError)}" type="infrastructure"/>`;
    cases.push(
      `    <testcase classname="${escapeMarkup(multi ? `${classPrefix}.faultline` : 'faultline')}" name="infrastructure" time="0.000">${error}</testcase>`,
    );
  }
  const known = r.subtests.filter((t) => t.known !== undefined && t.status !== 'pass');
  const knownSplats = r.splats.filter((sp) => sp.known !== undefined).length;
  return {
    cases,
    failures: r.summary.fail - known.filter((t) => t.status === 'fail').length + r.splats.length - knownSplats,
    errors: r.summary.error - known.filter((t) => t.status === 'error').length + (infra ? 1 : 0),
    skipped: r.summary.skip - known.filter((t) => t.status === 'skip').length + known.length + knownSplats,
  };
}

export function toJunit(r: RunRecord): string {
  const s = r.summary;
  const { cases: extra, failures, errors, skipped } = runLevelTestcases(r);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="faultline" tests="${s.total + extra.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="${escapeMarkup(`faultline.${r.suites.join('+')}`)}" tests="${s.total + extra.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" timestamp="${r.startedAt}" hostname="${escapeMarkup(r.guest?.uname ?? 'guest')}">`,
    ...r.subtests.map((t) => junitTestcase(t)),
    ...extra,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

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
    const extra = runLevelTestcases(r, classPrefix);
    const cases = [...r.subtests.map((t) => junitTestcase(t, classPrefix)), ...extra.cases];
    const f = extra.failures;
    const e = extra.errors;
    const n = cases.length;
    tests += n;
    failures += f;
    errors += e;
    skipped += extra.skipped;
    time += r.durationMs / 1000;
    suites.push(
      `  <testsuite name="${escapeMarkup(suiteName)}" tests="${n}" failures="${f}" errors="${e}" skipped="${extra.skipped}" time="${(r.durationMs / 1000).toFixed(3)}" timestamp="${escapeMarkup(r.startedAt)}" hostname="${escapeMarkup(r.guest?.uname ?? r.kernel.release ?? 'guest')}">`,
      ...cases,
      '  </testsuite>',
    );
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${escapeMarkup(name)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}">`,
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
