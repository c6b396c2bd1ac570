// XML 1.0 forbids most control characters even escaped, and HTML renders them as nothing
// useful: they are dropped.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\x00-\x08\x0b\x0c\x0e-\x1f]/g;

/**
 * Text or an attribute value for XML (junit.xml, SVG) or HTML: the one escaper of the
 * reports and views, safe inside single- and double-quoted attributes alike.
 */
export function escapeMarkup(s: string): string {
  return s
    .replace(FORBIDDEN, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
