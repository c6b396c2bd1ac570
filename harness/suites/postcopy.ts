/**
 * Suite 'postcopy': a postcopy live-migration workload (tests/postcopy), MINOR +
 * CONTINUE against MISSING + COPY. One invocation per selected backing (shmem,
 * hugetlb: both modes; anon: copy only). Guest memory: 32 MiB (4 KiB pages) or
 * 64 MiB (hugetlb, 32 hugepages); quick mode 4 MiB / 16 MiB.
 */
import type { Backing } from '../results/types.js';
import { parsePostcopy } from './parsers/postcopy.js';
import { SAME_CLOCKSOURCE_CMDLINE, type GuestCommand, type Suite, type SuiteContext } from './types.js';

const POSTCOPY_BACKINGS: readonly Backing[] = ['shmem', 'hugetlb', 'anon'];

export const postcopySuite: Suite = {
  // Fault latency, blocktime and pages/s are read from the guest's clock.
  guestCmdline: SAME_CLOCKSOURCE_CMDLINE,
  name: 'postcopy',
  description: 'postcopy migration workload: demand faults resolved by CONTINUE (minor) or COPY, blocktime and pages/s',
  programs: ['postcopy'],
  plan(ctx: SuiteContext): GuestCommand[] {
    let modes: string[] = ['minor', 'copy'];
    if (ctx.filter) modes = modes.filter((m) => m.includes(ctx.filter ?? ''));
    if (modes.length === 0) return [];
    return ctx.backings
      .filter((b) => POSTCOPY_BACKINGS.includes(b))
      .map((backing) => {
        const args = ['-b', backing, '-m', modes.length === 2 ? 'both' : (modes[0] ?? 'both')];
        if (ctx.quick) args.push('-s', backing === 'hugetlb' ? '16' : '4');
        return {
          program: 'postcopy',
          args,
          backing,
          timeoutSec: ctx.quick ? 300 : 900,
          label: `postcopy-${backing}`,
        };
      });
  },
  parse(cmd, out, ctx) {
    void ctx;
    return parsePostcopy(out, { suite: 'postcopy', ...(cmd.backing ? { backing: cmd.backing } : {}) });
  },
};
