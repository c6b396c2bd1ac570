import type { SubtestResult } from '../results/types.js';

/**
 * Upstream subtests seen to fail now and then on this host's TCG guests, through no fault of
 * faultline's or of the kernel under test, each with what its failed attempt dies of (the
 * err() text of tools/testing/selftests/mm/uffd-common.c): uffd-unit-tests maps its shmem
 * areas at fixed addresses with a plain mmap hint and dies when the kernel places one elsewhere;
 * its events test dies when a UFFDIO_COPY finds its page gone (-ENOENT). faultline reruns such a
 * subtest on its own and reports `flaky` when the rerun passes: an upstream flake must not fail
 * an e2e test, and nothing else may pass as one.
 */
const UPSTREAM_FLAKES: ReadonlyMap<string, RegExp> = new Map([
  ['uffd-unit-tests/register-ioctls/shmem', /ERROR: mmap of memfd failed at 0x[0-9a-f]+ /],
  ['uffd-unit-tests/events/anon', /ERROR: UFFDIO_COPY error: -2 /],
]);

/**
 * Undefined when the subtest passed, or is a known upstream flake reported `flaky` as such:
 * attempts that died of that flake's error, then a pass. Otherwise what it came out as.
 */
export function notPassed(s: SubtestResult | undefined): string | undefined {
  if (s === undefined) return 'not reported';
  if (s.status === 'pass') return undefined;
  const flake = UPSTREAM_FLAKES.get(s.id);
  const attempts = s.attempts ?? [];
  const died = attempts.slice(0, -1);
  if (
    s.status === 'flaky' &&
    flake !== undefined &&
    attempts.at(-1)?.status === 'pass' &&
    died.length > 0 &&
    died.every((a) => a.status === 'error' && flake.test(a.reason ?? ''))
  )
    return undefined;
  const tried = attempts.map((a) => `${a.status}${a.reason ? ` ${a.reason}` : ''}`).join('; ');
  return `${s.status}${s.reason ? `: ${s.reason}` : ''}${tried ? ` (attempts: ${tried})` : ''}`;
}
