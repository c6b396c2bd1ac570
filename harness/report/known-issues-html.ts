/**
 * The nightly report's known-issues section: each known issue the night's runs recorded, with
 * its report (a link when it is a URL) and culprit, where it occurred tonight, since which night
 * it occurs, and "fixed?" when its tests ran and passed everywhere; then the stale ones: issues
 * earlier nights of the plan saw that matched nothing for STALE_NIGHTS nights.
 */
import { STALE_NIGHTS, type KnownIssueTimeline, type StaleKnownIssue } from '../analysis/known-issue-history.js';
import type { KnownIssueOutcome } from '../results/known-issues.js';
import { escapeMarkup } from '../util/markup.js';

/** One job's record of its known issues. */
interface JobKnownIssues {
  jobId: string;
  knownIssues: readonly KnownIssueOutcome[] | undefined;
}

interface IssueRow {
  issue: KnownIssueOutcome;
  /** "job: subtest" where it matched a failure. */
  present: string[];
  /** "job: subtest" where its tests passed. */
  passed: string[];
}

function reportCell(report: string): string {
  return /^https?:\/\/\S+$/.test(report)
    ? `<a href="${escapeMarkup(report)}">${escapeMarkup(report)}</a>`
    : escapeMarkup(report);
}

function rowsOf(jobs: readonly JobKnownIssues[]): IssueRow[] {
  const rows = new Map<string, IssueRow>();
  for (const j of jobs)
    for (const k of j.knownIssues ?? []) {
      const row = rows.get(k.id) ?? { issue: k, present: [], passed: [] };
      rows.set(k.id, row);
      (k.state === 'present' ? row.present : row.passed).push(...k.where.map((w) => `${j.jobId}: ${w}`));
    }
  return [...rows.values()];
}

/** Nights without a match after which an issue the plan used to see is stale: two weeks of nightlies. */

/** "since 2026-12-02 (nightly-...; 3 nights)": the night it first occurred. */
function sinceCell(t: KnownIssueTimeline | undefined): string {
  if (!t) return 'tonight';
  return `${escapeMarkup(t.firstAt.slice(0, 10))}<br><span class="muted">${escapeMarkup(t.firstNight)}</span>`;
}

function staleList(stale: readonly StaleKnownIssue[]): string {
  if (stale.length === 0) return '';
  const items = stale.map(
    (t) =>
      `<li><b>${escapeMarkup(t.id)}</b>: last matched ${t.lastAt !== undefined && t.lastNight !== undefined ? `${escapeMarkup(t.lastAt.slice(0, 10))} (${escapeMarkup(t.lastNight)})` : 'never'}, ${t.nightsSince} nights ago</li>`,
  );
  return `<h3>Stale (${stale.length})</h3><p class="muted">Known issues this plan saw that matched nothing for ${STALE_NIGHTS} nights or more: fixed, or moved; review their entries before they hide a new failure.</p><ul id="known-issues-stale">${items.join('')}</ul>`;
}

export function renderKnownIssues(
  jobs: readonly JobKnownIssues[],
  timeline: ReadonlyMap<string, KnownIssueTimeline> = new Map(),
  staleIssues: readonly StaleKnownIssue[] = [],
): string {
  const rows = rowsOf(jobs);
  const stale = staleList(staleIssues);
  if (rows.length === 0 && stale === '') return '';
  const out = [
    `<section id="known-issues"><h2>Known issues (${rows.length})</h2><p class="muted">Expected failures, each with its report: they keep their status but do not fail a job. "fixed?": the issue's tests ran and passed tonight.</p>`,
    '<table id="known-issues-table"><thead><tr><th>issue</th><th>report</th><th>culprit</th><th>state</th><th>where tonight</th><th>since</th></tr></thead><tbody>',
  ];
  for (const { issue, present, passed } of rows) {
    const fixed = present.length === 0;
    out.push(
      `<tr class="${fixed ? 'c-pass' : 'c-flaky'}"><td><b>${escapeMarkup(issue.id)}</b><br>${escapeMarkup(issue.title)}</td><td>${reportCell(issue.report)}</td><td>${escapeMarkup(issue.culprit)}</td><td>${fixed ? 'fixed?' : 'present'}</td><td>${(fixed ? passed : present).map((w) => escapeMarkup(w)).join('<br>')}</td><td>${fixed ? '' : sinceCell(timeline.get(issue.id))}</td></tr>`,
    );
  }
  out.push('</tbody></table>', stale, '</section>');
  return out.join('');
}
