/**
 * Debian version ordering (deb-version(7), dpkg's verrevcmp), in process: choosing the newest
 * kernel package took one `dpkg --compare-versions` process per candidate on every run.
 * debian-version.test.ts checks it against dpkg's own verdicts on real version strings.
 */

interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

function parse(v: string): DebianVersion {
  const colon = v.indexOf(':');
  const epoch = colon > 0 ? Number(v.slice(0, colon)) : 0;
  const rest = colon > 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf('-');
  return dash >= 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: '' };
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

/** dpkg's weight of a non-digit character: '~' sorts before the end of the string, letters before the rest. */
function order(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (isAlpha(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

/** dpkg's verrevcmp: alternate non-digit runs (by `order`) and digit runs (by value). */
function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const at = (s: string, k: number): string | undefined => (k < s.length ? s[k] : undefined);
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i] ?? '')) || (j < b.length && !isDigit(b[j] ?? ''))) {
      const diff = order(at(a, i)) - order(at(b, j));
      if (diff !== 0) return diff;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    let firstDiff = 0;
    while (isDigit(at(a, i) ?? '') && isDigit(at(b, j) ?? '')) {
      if (firstDiff === 0) firstDiff = (a.charCodeAt(i) || 0) - (b.charCodeAt(j) || 0);
      i++;
      j++;
    }
    if (isDigit(at(a, i) ?? '')) return 1;
    if (isDigit(at(b, j) ?? '')) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/** Negative, zero or positive as Debian version `a` sorts before, equal to or after `b`. */
export function compareDebianVersions(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision);
}

/** The newest of `versions` in Debian's order, undefined when there are none. */
export function newestDebianVersion(versions: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || compareDebianVersions(v, best) > 0) best = v;
  return best;
}
