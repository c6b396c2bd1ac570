/** junit.xml of a patch series (`faultline series` writes it beside results.json). */
import { escapeMarkup } from '../util/markup.js';
import { metricLine } from '../series/report.js';
import type { SeriesRecord } from '../series/types.js';

/**
 * junit.xml of a patch series: per patch its apply, build and new-warnings testcases, then the
 * tip's comparison with the base (new failures, fixed, appeared and flaky tests, new splats,
 * metrics). The same Surefire conventions as the run files: a time on every testcase, a type on
 * every failure.
 */
export function seriesJunit(r: SeriesRecord): string {
  const cases: string[] = [];
  let failures = 0;
  let skipped = 0;
  const tc = (classname: string, name: string, failure?: { type: string; message: string }, skip?: string): void => {
    const head = `    <testcase classname="${escapeMarkup(classname)}" name="${escapeMarkup(name)}" time="0.000"`;
    if (failure !== undefined) {
      failures++;
      cases.push(
        `${head}><failure message="${escapeMarkup(failure.message)}" type="${escapeMarkup(failure.type)}"/></testcase>`,
      );
    } else if (skip !== undefined) {
      skipped++;
      cases.push(`${head}><skipped message="${escapeMarkup(skip)}"/></testcase>`);
    } else cases.push(`${head}/>`);
  };
  for (const p of r.patches) {
    const cls = `series.patch${String(p.index).padStart(2, '0')}`;
    const of = `${p.index}/${p.total}`;
    tc(
      cls,
      `${of} apply: ${p.subject}`,
      p.apply.ok ? undefined : { type: 'apply', message: p.apply.reason ?? 'does not apply' },
    );
    if (!p.apply.ok) continue;
    const broken =
      p.build && !p.build.ok ? { type: 'build', message: p.build.firstError ?? 'build broken' } : undefined;
    tc(cls, `${of} build`, broken, p.build ? undefined : 'not built');
    if (p.build?.ok) {
      const added = p.build.newWarnings.map((w) => w.text).join('\n');
      tc(cls, `${of} warnings`, added ? { type: 'warning', message: added } : undefined);
    }
  }
  const c = r.comparison;
  if (c) {
    const failing = new Map(c.regressions.map((x) => [x.id, x]));
    const ids = new Set([
      ...failing.keys(),
      ...c.fixed.map((x) => x.id),
      ...c.appeared.map((x) => x.id),
      ...c.flaky.map((x) => x.id),
    ]);
    for (const id of [...ids].sort()) {
      const f = failing.get(id);
      const message =
        f && `new failure: base ${f.base.join(',')} -> tip ${f.head.join(',')}${f.reason ? `: ${f.reason}` : ''}`;
      tc('series.tip', id, message !== undefined ? { type: 'regression', message } : undefined);
    }
    for (const s of c.newSplats)
      tc('series.tip.kernel', s.signature, { type: s.kind, message: `new splat: ${s.title}` });
    for (const m of c.metrics)
      tc(
        'series.tip.metrics',
        `${m.id} ${m.metric}`,
        m.regression ? { type: 'metric', message: metricLine(m) } : undefined,
      );
  }
  const counts = `tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="faultline-series" ${counts} time="${(r.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="faultline.series" ${counts} timestamp="${escapeMarkup(r.startedAt)}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
