/** A duration for progress lines and summaries: 12.3s. */
export function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
