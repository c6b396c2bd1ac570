import { runEntries, type HistoryEntry } from '../history/index.js';
import type { KnownIssueOutcome } from '../results/known-issues.js';
import type { RunRecord } from '../results/types.js';

/**
 * Known issues over the nights of a plan, from the history index: since when each one occurs
 * (LKFT's boards show it beside the issue), and which ones no night has seen for a while: an
 * issue that matches nothing any more is stale, fixed or moved, and its entry needs a look
 * before it hides a new failure that happens to match it.
 */
export interface KnownIssueTimeline {
  /** The first night it was present, and when that night started. */
  firstNight: string;
  firstAt: string;
  /** The last night it was present. */
  lastNight: string;
  lastAt: string;
  /** Nights of the plan after the last one it was present in (0: present on the newest night). */
  nightsSince: number;
}

/** A night of the plan: its id, when its first run started, the known issues present in it. */
type Night = { id: string; at: string; present: Set<string> };

/** The plan's nights in order, each with the known issues present in any of its runs. */
function nightsOf(entries: readonly HistoryEntry[], planName: string): Night[] {
  const nights = new Map<string, Night>();
  for (const r of runEntries(entries)) {
    if (r.planName !== planName || r.nightlyId === undefined) continue;
    const n = nights.get(r.nightlyId) ?? { id: r.nightlyId, at: r.startedAt, present: new Set<string>() };
    if (r.startedAt < n.at) n.at = r.startedAt;
    for (const [id, state] of r.known ?? []) if (state === 'present') n.present.add(id);
    nights.set(r.nightlyId, n);
  }
  return [...nights.values()].sort((a, b) => a.at.localeCompare(b.at));
}

/** Each known issue `nights` (in order) have seen present, by id. */
function timelineOf(nights: readonly Night[]): Map<string, KnownIssueTimeline> {
  const out = new Map<string, KnownIssueTimeline>();
  nights.forEach((n, i) => {
    for (const id of n.present) {
      const seen = out.get(id);
      out.set(id, {
        firstNight: seen?.firstNight ?? n.id,
        firstAt: seen?.firstAt ?? n.at,
        lastNight: n.id,
        lastAt: n.at,
        nightsSince: nights.length - 1 - i,
      });
    }
  });
  return out;
}

/** Each known issue the plan's nights have seen present, by id. */
export function knownIssueTimeline(
  entries: readonly HistoryEntry[],
  planName: string,
): Map<string, KnownIssueTimeline> {
  return timelineOf(nightsOf(entries, planName));
}

/** A known issue that matched nothing on the last nights; lastNight/lastAt when one ever saw it. */
export interface StaleKnownIssue {
  id: string;
  lastNight?: string;
  lastAt?: string;
  nightsSince: number;
}

/**
 * The issues of `ids` (the lists a night applies, or those its plan ever saw) that matched
 * nothing on the plan's last `nights` nights: never present in them, or present only before.
 * Nothing is stale before the history holds that many nights.
 */
export function staleKnownIssues(
  entries: readonly HistoryEntry[],
  planName: string,
  ids: readonly string[],
  nights: number,
): StaleKnownIssue[] {
  const all = nightsOf(entries, planName);
  if (all.length < nights) return [];
  const timeline = timelineOf(all);
  return ids.flatMap((id): StaleKnownIssue[] => {
    const t = timeline.get(id);
    if (t && t.nightsSince < nights) return [];
    return [
      t
        ? { id, lastNight: t.lastNight, lastAt: t.lastAt, nightsSince: t.nightsSince }
        : { id, nightsSince: all.length },
    ];
  });
}

/** Nights without a match after which a known issue is stale (the report and the summary say so). */
export const STALE_NIGHTS = 14;

/**
 * The night's known issues as its text summary lists them: each one present (with where, and the
 * first night it was seen), each one absent (fixed?), then those stale over STALE_NIGHTS nights.
 * `nights` is the plan's history with tonight's runs in it.
 */
export function formatKnownIssues(
  runs: readonly RunRecord[],
  nights: readonly HistoryEntry[],
  planName: string,
): string[] {
  const present = new Map<string, { o: KnownIssueOutcome; where: Set<string> }>();
  const absent = new Map<string, KnownIssueOutcome>();
  for (const r of runs)
    for (const o of r.knownIssues ?? []) {
      if (o.state === 'absent') {
        absent.set(o.id, o);
        continue;
      }
      const e = present.get(o.id) ?? { o, where: new Set<string>() };
      o.where.forEach((w) => e.where.add(w));
      present.set(o.id, e);
    }
  const timeline = knownIssueTimeline(nights, planName);
  const stale = staleKnownIssues(nights, planName, [...timeline.keys()], STALE_NIGHTS);
  const lines = [
    ...[...present.values()].map(({ o, where }) => {
      const since = timeline.get(o.id)?.firstNight;
      return `  KNOWN ${o.id} (${o.culprit}): ${o.title} <${o.report}>: ${[...where].join(', ')}${since ? `; since ${since}` : ''}`;
    }),
    ...[...absent.values()]
      .filter((o) => !present.has(o.id))
      .map((o) => `  FIXED? ${o.id}: passed: ${o.where.join(', ')}`),
    ...stale.map(
      (s) =>
        `  STALE ${s.id}: matched nothing for ${s.nightsSince} nights${s.lastNight ? ` (last ${s.lastNight})` : ''}: review its entry`,
    ),
  ];
  return lines.length > 0 ? [`known issues (${present.size} present):`, ...lines] : [];
}
