import type { SubtestResult } from '../results/types.js';

/**
 * Upstream subtests seen to fail now and then on this host's TCG guests, through no fault of
 * faultline's or of the kernel under test: uffd-unit-tests maps its shmem areas at fixed addresses
 * with a plain mmap hint and dies when the address is taken (any test on shmem can draw it); its events test dies when
 * a UFFDIO_COPY finds its page gone (-ENOENT). They are known issues of the shipped list
 * (known-issues/debian.yaml, which `faultline run` applies by default), whose matches say what
 * each failed attempt dies of: here, their ids. faultline reruns such a subtest on its own and
 * reports `flaky` when the rerun passes: an upstream flake must not fail an e2e test, and nothing
 * else may pass as one.
 */
const UPSTREAM_FLAKES: readonly string[] = [
  'uffd-unit-tests-shmem-memfd-mmap',
  'uffd-unit-tests-events-anon-copy-enoent',
  'uffd-stress-shmem-memfd-mmap',
];

/**
 * Undefined when the subtest passed, or is a known upstream flake reported as such: `flaky`
 * (attempts that died of that flake's error, then a pass), or `fail`/`error` when every attempt
 * died of it (rare, but a flake that strikes on each retry is still the flake, and the run's own
 * verdict already calls it known). Otherwise what it came out as.
 */
export function notPassed(s: SubtestResult | undefined): string | undefined {
  if (s === undefined) return 'not reported';
  if (s.status === 'pass') return undefined;
  const attempts = s.attempts ?? [];
  // The known issue matched only if every failed attempt died of its error.
  if (s.known !== undefined && UPSTREAM_FLAKES.includes(s.known)) return undefined;
  const tried = attempts.map((a) => `${a.status}${a.reason ? ` ${a.reason}` : ''}`).join('; ');
  return `${s.status}${s.reason ? `: ${s.reason}` : ''}${tried ? ` (attempts: ${tried})` : ''}`;
}
