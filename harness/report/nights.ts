/**
 * Between nights: the neighbours of a night in its plan's history (the report's previous/next
 * links), the list of every night (<results>/nights.html, rewritten with each report) and the
 * newest report, which `faultline serve` shows at `/`.
 */
import { join, relative } from 'node:path';
import { nightlyEntries, type HistoryEntry, type HistoryNightlyEntry } from '../history/index.js';
import { exists, writeFileAtomic } from '../util/fsutil.js';
import type { NightLink } from './html.js';
import { pageHead } from './sections.js';
import { escapeMarkup } from '../util/markup.js';

export const NIGHTS_PAGE = 'nights.html';

/** Complete, unsharded (or merged) nights: the ones with a whole report. */
function reportable(history: readonly HistoryEntry[], planName?: string): HistoryNightlyEntry[] {
  return nightlyEntries(history, planName).filter((n) => n.complete && n.shard === undefined);
}

/** The report page of a night, relative to the results root. */
function reportPathOf(n: Pick<HistoryNightlyEntry, 'dir'>): string {
  return join(n.dir, 'report', 'index.html');
}

/** Previous and next night of the same plan, linked relative to `fromDir` (the report's directory). */
export function neighbours(
  history: readonly HistoryEntry[],
  planName: string,
  nightlyId: string,
  resultsRoot: string,
  fromDir: string,
): { previous?: NightLink; next?: NightLink } {
  const nights = reportable(history, planName);
  const i = nights.findIndex((n) => n.nightlyId === nightlyId);
  if (i < 0) return {};
  const link = (n: HistoryNightlyEntry | undefined): NightLink | undefined =>
    n
      ? { id: n.nightlyId, startedAt: n.startedAt, href: relative(fromDir, join(resultsRoot, reportPathOf(n))) }
      : undefined;
  const previous = link(nights[i - 1]);
  const next = link(nights[i + 1]);
  return { ...(previous ? { previous } : {}), ...(next ? { next } : {}) };
}

/** The newest night (any plan) whose report exists, relative to the results root. */
export async function newestReport(history: readonly HistoryEntry[], resultsRoot: string): Promise<string | undefined> {
  const nights = reportable(history);
  for (let i = nights.length - 1; i >= 0; i--) {
    const n = nights[i];
    if (n && (await exists(join(resultsRoot, reportPathOf(n))))) return reportPathOf(n);
  }
  return undefined;
}

/** Every night, newest first, with its verdicts and a link to its report. */
function renderNights(history: readonly HistoryEntry[], generatedAt: string): string {
  const nights = reportable(history).reverse();
  const rows = nights.map((n) => {
    const t = n.tests;
    const cls = n.verdicts.fail > 0 ? 'c-fail' : n.verdicts.error > 0 ? 'c-error' : t.flaky > 0 ? 'c-flaky' : 'c-pass';
    return `<tr><td>${escapeMarkup(n.startedAt.slice(0, 16).replace('T', ' '))}</td><td>${escapeMarkup(n.planName)}</td><td><a href="${escapeMarkup(reportPathOf(n))}">${escapeMarkup(n.nightlyId)}</a></td><td class="${cls}">${n.verdicts.pass} pass, ${n.verdicts.fail} fail, ${n.verdicts.error} error</td><td class="num">${t.pass} pass, ${t.fail} fail, ${t.flaky} flaky, ${t.skip} skip</td></tr>`;
  });
  return [
    pageHead('faultline nights'),
    '<h1>faultline nights</h1>',
    nights.length ? '' : '<p class="muted">No complete nightly in the history yet.</p>',
    `<table id="nights"><thead><tr><th>started (UTC)</th><th>plan</th><th>report</th><th>jobs</th><th>test results</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
    `<p class="muted">generated ${escapeMarkup(generatedAt)} by faultline</p></body></html>`,
    '',
  ].join('\n');
}

export async function writeNightsPage(resultsRoot: string, history: readonly HistoryEntry[]): Promise<string> {
  const path = join(resultsRoot, NIGHTS_PAGE);
  await writeFileAtomic(path, renderNights(history, new Date().toISOString()));
  return path;
}
