import { tallyOf } from './policy.js';
import type { BisectRecord, StepRecord } from './types.js';
import { secs } from '../util/format.js';

function stepLine(s: StepRecord, i: number): string {
  const t = tallyOf(s.runs);
  const runs = s.runs.length ? `${t.pass} pass/${t.fail} fail` : 'no runs';
  const values = s.runs.filter((r) => r.value !== undefined).map((r) => `${r.value}${r.unit ?? ''}`);
  const build = s.buildMs !== undefined ? `, build ${s.cacheHit ? 'cached' : secs(s.buildMs)}` : '';
  const conf = s.verdict === 'skip' ? '' : ` conf ${s.confidence.toFixed(3)}`;
  return `  ${String(i + 1).padStart(2)}. ${s.role.padEnd(14)} ${s.rev.slice(0, 12)} ${s.verdict.padEnd(4)}${conf}  ${runs}${values.length ? ` [${values.join(' ')}]` : ''}, ${secs(s.durationMs)}${build}${s.verdict === 'skip' ? `  (${s.reason})` : ''}  ${s.subject}`;
}

/** The steps table: what each revision was, its runs and the verdict's confidence. */
export function formatSteps(r: BisectRecord): string[] {
  return [
    `steps (${r.stats.revisionsTested} revisions tested: ${r.stats.endpointChecks} endpoints + ${r.stats.bisectSteps} bisect steps of which ${r.stats.skips} skipped; ${r.stats.runs} runs; failure rate good ${r.rates.goodFailRate.toFixed(2)} / bad ${r.rates.badFailRate.toFixed(2)}):`,
    ...r.steps.map((s, i) => stepLine(s, i)),
  ];
}

/** The human summary `faultline bisect` prints (results.json has everything). */
export function formatBisectReport(r: BisectRecord): string {
  const out: string[] = [];
  out.push(
    `bisect ${r.good.slice(0, 12)} (good: ${r.goodRef}) .. ${r.bad.slice(0, 12)} (bad: ${r.badRef}), ${r.stats.rangeSize} commits`,
  );
  out.push(`test: ${r.spec}   [${r.tester}]`);
  out.push(
    `policy: ${r.policy.mode === 'fixed' ? `${r.policy.runs} runs per step` : `adaptive, <= ${r.policy.runs} runs per step, good after ${r.passThreshold} pass(es)`}, bad at ${r.policy.failThreshold} failure(s), ${r.policy.endpointRuns} runs per endpoint`,
  );
  out.push('');
  if (r.outcome === 'refused') {
    out.push(`REFUSED: ${r.refusal ?? ''}`);
  } else if (r.outcome === 'found' && r.culprit) {
    const c = r.culprit;
    out.push(`first bad commit: ${c.hash}`);
    out.push(`  subject: ${c.subject}`);
    out.push(`  author:  ${c.authorName} <${c.authorEmail}> (${c.authorDate})`);
    out.push(`  confidence: ${c.confidence.toFixed(3)}`);
    // What made it bad, as the run saw it (for --splat: the matching splat's title).
    const why = r.steps
      .filter((s) => s.rev === c.hash)
      .flatMap((s) => s.runs)
      .find((x) => x.result === 'fail')?.detail;
    if (why) out.push(`  fails:   ${why}`);
    const v = r.verification;
    if (v) {
      const revert = v.revert
        ? `, revert on bad: ${v.revert.verdict}${v.revert.reason ? ` (${v.revert.reason})` : ''}`
        : '';
      out.push(
        `  verification: parent ${v.parent.slice(0, 12)} ${v.parentVerdict}, culprit ${c.hash.slice(0, 12)} ${v.culpritVerdict}${revert} => ${v.verified ? 'VERIFIED' : 'NOT VERIFIED'}`,
      );
    }
  } else if (r.outcome === 'ambiguous') {
    out.push('only skipped commits are left: the first bad commit is one of');
    for (const c of r.candidates ?? []) out.push(`  ${c.hash} ${c.subject} (${c.authorName})`);
  }
  out.push('', ...formatSteps(r), '');
  out.push('git bisect log:');
  out.push(
    ...r.bisectLog
      .trimEnd()
      .split('\n')
      .map((l) => `  ${l}`),
  );
  return out.join('\n') + '\n';
}
