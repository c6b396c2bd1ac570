/**
 * Parser for tests/postcopy.
 *
 * KTAP; subtests "<mode>/<backing>" with mode minor (fill through the alias +
 * UFFDIO_CONTINUE) or copy (UFFDIO_COPY), e.g. "minor/hugetlb", "copy/anon".
 * Metric lines use the format documented in ./uffd-lat.ts:
 *   # metric <name>=<number> <unit>
 *   # hist fault_ns <k>:<count> ...
 * Metrics: pages, page_size (bytes), workers, accesses, demand_accesses (accesses
 * that found the page not yet placed), faults (uffd messages), requests,
 * urgent_pages, wall / workers_wall (ms; wall is also durationMs), pages_per_s,
 * mib_per_s, blocktime_sum (ns, summed over workers), blocktime_all (ns, all
 * workers blocked at once), stale_reads, bad_pages, fault_{min,mean,p50,p90,p99,p99_9,max} (ns).
 * A subtest passes only with stale_reads = bad_pages = 0 (the program enforces it).
 */
import type { Backing } from '../../results/types.js';
import type { ParsedProgram, ProgramOutput } from '../types.js';
import { parseMetricKtap } from './uffd-lat.js';

export function parsePostcopy(
  out: ProgramOutput,
  opts: { suite: string; backing?: Backing; program?: string },
): ParsedProgram {
  const parsed = parseMetricKtap(out, { ...opts, program: opts.program ?? 'postcopy' });
  // Defence in depth: a pass that reports integrity errors is a failure.
  for (const s of parsed.subtests) {
    if (s.status !== 'pass') continue;
    const bad = (s.metrics ?? []).filter((m) => (m.name === 'stale_reads' || m.name === 'bad_pages') && m.value > 0);
    if (bad.length > 0) {
      s.status = 'fail';
      s.reason = bad.map((m) => `${m.name}=${m.value}`).join(', ');
      if (parsed.status === 'pass') {
        parsed.status = 'fail';
        parsed.reason = 'integrity errors reported by a passing subtest';
      }
    }
  }
  return parsed;
}
