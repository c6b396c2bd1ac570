import type { Splat } from '../results/types.js';

/**
 * A splat's identity across runs and kernels: its kind and title with addresses, offsets, pids,
 * CPU numbers and timestamps stripped. compare, nightly and the culprit loop match splats by it.
 */
export function splatSignature(s: Pick<Splat, 'kind' | 'title'>): string {
  return `${s.kind}:${splatTitleKey(s.title)}`;
}

/**
 * A splat title as the same report on another boot prints it: what splatSignature keys on, for
 * callers that have the title only (the culprit loop's splat signals).
 */
export function splatTitleKey(title: string): string {
  return title
    .replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/gi, '')
    .replace(/0x[0-9a-f]+/gi, 'ADDR')
    .replace(/\b[0-9a-f]{8,16}\b/gi, 'ADDR')
    .replace(/\b(pid|cpu|CPU|PID)[: ]\s*\d+/g, '$1 N')
    .replace(/\[\s*\d+\.\d+\]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}
