import { fmtNum, type MetricChange } from '../analysis/compare.js';
import type { PatchRecord, SeriesRecord, TestSummary } from './types.js';
import { secs } from '../util/format.js';

function testsText(t: TestSummary | undefined): string {
  if (!t) return '';
  const c = t.counts;
  const parts = [`${c.pass} pass`];
  if (c.fail) parts.push(`${c.fail} fail`);
  if (c.error) parts.push(`${c.error} error`);
  // Runs here use retries 0, so only records from elsewhere are flaky: failed, then passed on a rerun.
  if (c.flaky) parts.push(`${c.flaky} flaky`);
  if (c.skip) parts.push(`${c.skip} skip`);
  if (t.splats) parts.push(`${t.splats} splat${t.splats > 1 ? 's' : ''}`);
  return `tests ${parts.join(', ')}${t.runs > 1 ? ` over ${t.runs} runs` : ''}`;
}

function patchLine(p: PatchRecord): string {
  const head = `[${p.index}/${p.total}] ${p.subject}:`;
  if (!p.apply.ok)
    return `${head} DOES NOT APPLY${p.apply.reason && p.apply.reason !== 'not reached' ? `: ${p.apply.reason}` : p.apply.reason === 'not reached' ? ' (not reached)' : ''}`;
  const b = p.build;
  if (!b) return `${head} applies, not built`;
  if (!b.ok) return `${head} BUILD BROKEN: ${b.firstError ?? ''}`;
  const parts = [`builds${b.cacheHit ? ' (cached)' : ` (${secs(b.durationMs)})`}`];
  if (b.newWarnings.length) parts.push(`${b.newWarnings.length} new warning${b.newWarnings.length > 1 ? 's' : ''}`);
  else parts.push(b.warningsCompared ? 'no new warnings' : 'warnings not compared (parent build log unavailable)');
  if (p.tests) {
    const c = p.comparison;
    const news =
      c && (c.regressions || c.newSplats || c.metricRegressions)
        ? ` (vs base: ${[c.regressions && `${c.regressions} new failures`, c.newSplats && `${c.newSplats} new splats`, c.metricRegressions && `${c.metricRegressions} metric regressions`].filter(Boolean).join(', ')})`
        : '';
    parts.push(`${testsText(p.tests)}${news}`);
  }
  return `${head} ${parts.join(', ')}`;
}

function pct(x: number): string {
  const p = (x - 1) * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;
}

export function metricLine(m: MetricChange): string {
  if (m.invalidReason !== undefined)
    return `${m.id} ${m.metric}: ${fmtNum(m.medianBase)} -> ${fmtNum(m.medianHead)} ${m.unit} (invalid: ${m.invalidReason})`;
  const flag = m.regression
    ? '  REGRESSION'
    : m.improvement
      ? '  improvement'
      : m.significant
        ? '  (significant, below threshold)'
        : '';
  const ci = Number.isFinite(m.ci.low) ? `, 95% CI ${pct(m.ci.low)}..${pct(m.ci.high)}` : '';
  return `${m.id} ${m.metric}: ${fmtNum(m.medianBase)} -> ${fmtNum(m.medianHead)} ${m.unit} (median ${pct(m.ratio)}${ci}, p=${m.test.p.toPrecision(2)}, n=${m.nBase}/${m.nHead})${flag}`;
}

/** Tip vs base: new failures and passes, splats, tests that came and went, metrics. */
function comparisonLines(r: SeriesRecord, c: NonNullable<SeriesRecord['comparison']>): string[] {
  const out: string[] = [];
  out.push(
    `tip vs base (${r.repeat} run${r.repeat > 1 ? 's' : ''} each${r.baseTests?.cached ? ', base from cache' : ''}):`,
  );
  const list = (title: string, items: string[]): void => {
    if (!items.length) return;
    out.push(`  ${title}:`);
    for (const i of items) out.push(`    ${i}`);
  };
  list(
    'new failures',
    c.regressions.map(
      (x) => `${x.id} (base ${x.base.join(',')} -> tip ${x.head.join(',')})${x.reason ? `: ${x.reason}` : ''}`,
    ),
  );
  list(
    'new passes',
    c.fixed.map((x) => `${x.id} (base ${x.base.join(',')} -> tip ${x.head.join(',')})`),
  );
  list(
    'new kernel splats',
    c.newSplats.map((s) => `${s.title}${s.test ? ` (during ${s.test})` : ''}`),
  );
  list(
    'tests that appeared',
    c.appeared.map((x) => `${x.id}: ${x.head.join(',')}`),
  );
  list(
    'tests that vanished',
    c.vanished.map((x) => `${x.id}: was ${x.base.join(',')}`),
  );
  list(
    'flaky (not counted)',
    c.flaky.map((x) => `${x.id}: ${x.base.join(',')} -> ${x.head.join(',')}`),
  );
  list(
    `metrics (flagged when p<${c.options.alpha} and worse by >${(c.options.threshold * 100).toFixed(0)}%, ${c.options.test})`,
    c.metrics.map(metricLine),
  );
  if (r.repeat < 3 && c.metrics.length)
    out.push(`  note: --repeat ${r.repeat} is too few runs for metric statistics; use --repeat 5`);
  if (
    !c.regressions.length &&
    !c.fixed.length &&
    !c.newSplats.length &&
    !c.appeared.length &&
    !c.vanished.length &&
    !c.metrics.length
  )
    out.push('  no differences');
  out.push('');
  return out;
}

/**
 * What a verdict rests on: the runner (suite, filter, backings) and the runs, or builds alone.
 * "No regressions" after a test of anon alone says nothing about shmem.
 */
export function testedText(r: Pick<SeriesRecord, 'tester' | 'repeat' | 'each' | 'baseTests'>): string {
  if (!r.baseTests) return 'built only: no tests were run (--no-tests)';
  return `${r.tester}, ${r.repeat} run${r.repeat > 1 ? 's' : ''} on base and ${r.each ? 'every patch' : 'tip'}`;
}

/** The plain-text reply a reviewer pastes to the series thread. */
export function formatSeriesReport(r: SeriesRecord): string {
  const out: string[] = [];
  const src =
    r.source.kind === 'mbox'
      ? `${r.source.file}${r.source.cover ? ` ("${r.source.cover.subject}")` : ''}`
      : `range ${r.source.range}`;
  out.push(`faultline series: ${r.patches.length} patch${r.patches.length === 1 ? '' : 'es'} from ${src}`);
  out.push(
    `base: ${r.base.hash.slice(0, 12)} ("${r.base.subject}")${r.tip ? `, tip: ${r.tip.slice(0, 12)}` : ''}, patchset ${r.patchsetHash.slice(0, 16)}`,
  );
  out.push(`build: ${r.builder}`);
  out.push(`tests: ${testedText(r)}`);
  out.push('');
  for (const p of r.patches) {
    out.push(patchLine(p));
    for (const w of p.build?.newWarnings ?? []) out.push(`    ${w.text}`);
  }
  out.push('');
  if (r.comparison) out.push(...comparisonLines(r, r.comparison));
  if (r.problems.length) {
    out.push(`Result: REGRESSED (${r.problems.length} problem${r.problems.length > 1 ? 's' : ''})`);
    for (const p of r.problems) out.push(`  - ${p}`);
  } else {
    out.push(`Result: no regressions found (${testedText(r)})`);
  }
  if (r.messageIds.length) {
    out.push('');
    out.push(`Message-IDs: ${r.messageIds.join(' ')}`);
  }
  return out.join('\n') + '\n';
}
