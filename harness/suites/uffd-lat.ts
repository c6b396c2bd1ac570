/**
 * Suite 'uffd-lat': per-fault userfaultfd round-trip latency (tests/uffd-lat).
 * One invocation per selected backing: ./uffd-lat -b <backing> [-n 50 -w 5].
 * Default counts (500/20 for 4 KiB, 100/5 for 2 MiB pages) are sized for a TCG
 * guest; quick mode uses 50 measured + 5 warm-up iterations per case.
 */
import type { Backing } from '../results/types.js';
import { parseUffdLat } from './parsers/uffd-lat.js';
import { SAME_CLOCKSOURCE_CMDLINE, type GuestCommand, type Suite, type SuiteContext } from './types.js';

/** Backings the program understands (-b). */
const UFFD_LAT_BACKINGS: readonly Backing[] = ['anon', 'shmem', 'shmem-thp', 'hugetlb', 'hugetlb-1g'];
/** Case names (-c). */
const UFFD_LAT_CASES = [
  'first-touch',
  'missing-copy',
  'missing-zeropage',
  'minor-continue',
  'move',
  'move-thp',
  'wp',
  'wp-async',
] as const;

/** Cases matching the user's filter (substring); undefined = no filter; [] = nothing matches. */
function matchingCases<T extends string>(cases: readonly T[], filter?: string): T[] | undefined {
  if (!filter) return undefined;
  return cases.filter((c) => c.includes(filter));
}

export const uffdLatSuite: Suite = {
  // An idle vCPU's wake-up goes through the host scheduler under TCG and made the p50 of
  // the same case vary by 50-200% between fresh VMs; with idle=poll it is within 7%.
  guestCmdline: ['idle=poll', ...SAME_CLOCKSOURCE_CMDLINE],
  name: 'uffd-lat',
  description: 'userfaultfd fault round-trip latency: MISSING/MINOR/MOVE/WP resolution, blocking vs busy-poll handler',
  programs: ['uffd-lat'],
  plan(ctx: SuiteContext): GuestCommand[] {
    const cases = matchingCases(UFFD_LAT_CASES, ctx.filter);
    if (cases && cases.length === 0) return [];
    return ctx.backings
      .filter((b) => UFFD_LAT_BACKINGS.includes(b))
      .map((backing) => {
        const args = ['-b', backing];
        if (cases) args.push('-c', cases.join(','));
        if (ctx.quick) args.push('-n', '50', '-w', '5');
        return {
          program: 'uffd-lat',
          args,
          backing,
          // ~12 cases per backing; under TCG the full counts take well under a minute each.
          timeoutSec: ctx.quick ? 300 : 900,
          label: `uffd-lat-${backing}`,
        };
      });
  },
  parse(cmd, out, ctx) {
    void ctx;
    return parseUffdLat(out, { suite: 'uffd-lat', ...(cmd.backing ? { backing: cmd.backing } : {}) });
  },
};
