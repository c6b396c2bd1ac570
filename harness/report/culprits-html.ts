/**
 * The nightly report's culprits section (plan `bisect:`): each regression group the night
 * bisected, with its culprit and mail, why it could not conclude, or since when it is known.
 */
import type { NightlyBisect } from '../results/nightly.js';
import { escapeMarkup } from '../util/markup.js';

function outcomeCell(b: NightlyBisect): string {
  const c = b.culprit;
  const culprit = c
    ? `<code>${escapeMarkup(c.hash.slice(0, 12))}</code> ${escapeMarkup(c.subject)}<br>${escapeMarkup(c.author)}`
    : '';
  if (b.outcome === 'known')
    return `failing since <b>${escapeMarkup(b.since ?? '?')}</b>${culprit ? `, culprit ${culprit}` : `: ${escapeMarkup(b.reason ?? 'not concluded')}`}`;
  if (b.outcome === 'culprit') {
    const mail = b.mail ? ` · <a href="../${escapeMarkup(b.mail)}">culprit.eml</a>` : '';
    return `culprit ${culprit}<br>confidence ${(c?.confidence ?? 0).toFixed(3)}${mail}`;
  }
  return `could not conclude: ${escapeMarkup(b.reason ?? 'no reason recorded')}`;
}

export function renderCulprits(bisects: readonly NightlyBisect[] | undefined): string {
  if (!bisects || bisects.length === 0) return '';
  const rows = bisects.map((b) => {
    const cls = b.outcome === 'inconclusive' ? 'c-flaky' : 'c-fail';
    const signals = b.signals
      .map((s) => {
        const beyond = s.threshold ? ` (${s.threshold.direction} ${s.threshold.value})` : '';
        return `${s.kind}: ${escapeMarkup(`${s.id}${beyond}`)}`;
      })
      .join('<br>');
    const window = `<code>${escapeMarkup(b.good.slice(0, 12))}..${escapeMarkup(b.bad.slice(0, 12))}</code>`;
    return `<tr class="${cls}"><td>${escapeMarkup(`${b.kernel}/${b.config}`)}</td><td>${signals}</td><td>${window}</td><td>${outcomeCell(b)}</td></tr>`;
  });
  return [
    `<section id="culprits"><h2>Culprits (${bisects.length})</h2><p class="muted">Each regression group on a moving tree, bisected between the last good night's commit and tonight's.</p>`,
    '<table id="culprits-table"><thead><tr><th>kernel</th><th>regressions</th><th>window</th><th>outcome</th></tr></thead><tbody>',
    ...rows,
    '</tbody></table></section>',
  ].join('');
}
