/** ccache's part in a kernel build: its counters before and after, and what the build did to them. */
import { run } from '../util/proc.js';

/** What a build did to ccache. */
export interface CcacheStats {
  dir: string;
  hits: number;
  misses: number;
  /** Raw counters that changed during this build. */
  delta: Record<string, number>;
}

/** ccache's counters in `dir`, by name. */
export async function ccacheStats(dir: string, env: Record<string, string>): Promise<Record<string, number>> {
  const r = await run('ccache', ['--print-stats'], {
    timeoutMs: 60_000,
    env: { ...env, CCACHE_DIR: dir },
    allowFailure: true,
  });
  const out: Record<string, number> = {};
  for (const l of r.stdout.split('\n')) {
    const m = /^(\w+)\t(\d+)$/.exec(l);
    if (m && m[1] !== undefined) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** What one build did to the cache: the counters that changed, hits and misses. */
export function statsDelta(dir: string, before: Record<string, number>, after: Record<string, number>): CcacheStats {
  const delta: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    if (
      k.endsWith('_timestamp') ||
      k === 'stats_updated_timestamp' ||
      k === 'cache_size_kibibyte' ||
      k === 'files_in_cache'
    )
      continue;
    const d = v - (before[k] ?? 0);
    if (d !== 0) delta[k] = d;
  }
  const hits = (delta['direct_cache_hit'] ?? 0) + (delta['preprocessed_cache_hit'] ?? 0);
  const misses = delta['cache_miss'] ?? 0;
  return { dir, hits, misses, delta };
}
