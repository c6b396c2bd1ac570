import { runEntries, type HistoryEntry } from '../history/index.js';

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
