import t from 'tap';
import { STALE_NIGHTS, knownIssueTimeline, staleKnownIssues } from '../analysis/known-issue-history.js';
import { runEntry } from '../history/index.js';
import { SHIPPED_KNOWN_ISSUES, readKnownIssues } from '../results/known-issues.js';
import { mmRunAsNight } from '../testkit/real-runs.js';
import { renderKnownIssues } from './known-issues-html.js';

// The real results.json of suite mm on hugetlb,shmem (Debian 6.12.118, TCG) as the nights of a
// plan: hugetlb-read-hwpoison fails on the first night only, then passes (one edit), for
// STALE_NIGHTS more nights; the shipped known issues applied as nightly applies them.
const issues = await readKnownIssues([SHIPPED_KNOWN_ISSUES]);
const nights = Array.from({ length: STALE_NIGHTS + 1 }, (_, i) => {
  const startedAt = new Date(Date.UTC(2026, 10, 1 + i, 23)).toISOString();
  const r = mmRunAsNight({ passing: i > 0 ? ['hugetlb-read-hwpoison'] : [], startedAt, issues });
  return { r, entry: runEntry(r, `n${i}`, { nightlyId: `nightly-${i}`, planName: 'mm' }) };
});

t.test('an issue the plan stopped seeing for STALE_NIGHTS nights is listed as stale', async (t) => {
  const last = nights.at(-1);
  if (!last) throw new Error('no nights');
  // As generate.ts does: the timeline, and the stale ones among the issues it has seen.
  const render = (entries: ReturnType<typeof runEntry>[]): string => {
    const timeline = knownIssueTimeline(entries, 'mm');
    const stale = staleKnownIssues(entries, 'mm', [...timeline.keys()], STALE_NIGHTS);
    return renderKnownIssues([{ jobId: 'mm', knownIssues: last.r.knownIssues }], timeline, stale);
  };
  const html = render(nights.map((n) => n.entry));
  t.match(
    html,
    /<ul id="known-issues-stale"><li><b>debian-6\.12-hugetlb-read-hwpoison-sigbus<\/b>: last matched 2026-11-01 \(nightly-0\), 14 nights ago<\/li><\/ul>/,
    'the one issue absent for 14 nights, with when it last matched',
  );
  t.match(
    html,
    /<td>present<\/td><td>mm: khugepaged\/mm\.khugepaged<br>mm: khugepaged\/mm\.khugepaged_-s_2<\/td><td>2026-11-01<br>/,
    'since the first night',
  );
  const shorter = render(nights.slice(0, STALE_NIGHTS).map((n) => n.entry));
  t.notMatch(shorter, /known-issues-stale/, '13 nights without it: not stale yet');
});
