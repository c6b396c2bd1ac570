/**
 * Parser for tests/uffd-contract.
 *
 * KTAP; each subtest is "<test>/<backing>" (e.g. "copy-on-minor/hugetlb",
 * "einval/register-mode-zero/shmem"). Before each result line the program prints
 * one diagnostic per checked call:
 *
 *   # <what>: expected <ERRNO>, saw <ERRNO>     ("0" means success)
 *   # behaviour <text>                          version-dependent behaviour seen
 *
 * A mismatch is "not ok N name # <what>: expected EEXIST, saw EINVAL"; that text
 * becomes the subtest's reason. For passing version-dependent subtests the
 * behaviour text becomes the reason ("behaviour: kernel 6.12 >= 6.4: ...").
 * Metric lines, if any, follow the format documented in ./uffd-lat.ts.
 */
import type { Backing } from '../../results/types.js';
import type { ParsedProgram, ProgramOutput } from '../types.js';
import { parseKtap } from './ktap.js';
import { parseDiagnostics, parseMetricKtap } from './uffd-lat.js';

export function parseUffdContract(
  out: ProgramOutput,
  opts: { suite: string; backing?: Backing; program?: string },
): ParsedProgram {
  const parsed = parseMetricKtap(out, { ...opts, program: opts.program ?? 'uffd-contract' });
  const k = parseKtap(out.output);
  parsed.subtests.forEach((s, i) => {
    const t = k.tests[i];
    if (!t || s.status !== 'pass' || s.reason) return;
    const b = parseDiagnostics(t.diagnostics).behaviour;
    if (b) s.reason = `behaviour: ${b}`;
  });
  return parsed;
}
