/**
 * Suite 'uffd-contract': documented userfaultfd errno contracts on shmem, hugetlb
 * and anon (tests/uffd-contract). One invocation per selected backing; the
 * program is fast, quick mode changes nothing.
 */
import type { Backing } from '../results/types.js';
import { parseUffdContract } from './parsers/uffd-contract.js';
import type { GuestCommand, Suite, SuiteContext } from './types.js';

const UFFD_CONTRACT_BACKINGS: readonly Backing[] = ['anon', 'shmem', 'hugetlb'];

export const uffdContractSuite: Suite = {
  name: 'uffd-contract',
  description: 'userfaultfd API contract: expected errno of COPY/ZEROPAGE/CONTINUE/MOVE/WP in each situation',
  programs: ['uffd-contract'],
  plan(ctx: SuiteContext): GuestCommand[] {
    return ctx.backings
      .filter((b) => UFFD_CONTRACT_BACKINGS.includes(b))
      .map((backing) => {
        const args = ['-b', backing];
        if (ctx.filter) args.push('-t', ctx.filter);
        return { program: 'uffd-contract', args, backing, timeoutSec: 120, label: `uffd-contract-${backing}` };
      });
  },
  parse(cmd, out, ctx) {
    void ctx;
    return parseUffdContract(out, { suite: 'uffd-contract', ...(cmd.backing ? { backing: cmd.backing } : {}) });
  },
};
