/**
 * Compiler diagnostics as a reviewer reads them: paths from the tree root and ASCII quotes.
 * Kernel builds print paths relative to the O= dir (../mm/x.c when the build dir sits inside
 * the tree, as in faultline's own trees) or absolute (/path/to/tree/mm/x.c).
 */

/** Paths in a build log: absolute under the tree, ./x, or ../x from an O= build dir. */
export function normalisePath(p: string, treeRoot?: string): string {
  let f = p.trim();
  if (treeRoot && f.startsWith(treeRoot.endsWith('/') ? treeRoot : `${treeRoot}/`))
    f = f.slice(treeRoot.length).replace(/^\/+/, '');
  while (f.startsWith('./') || f.startsWith('../')) f = f.replace(/^\.\.?\//, '');
  return f;
}

/** gcc quotes with U+2018/2019 outside the C locale; make messages locale independent. */
export function asciiQuotes(line: string): string {
  return line.replace(/[\u2018\u2019]/g, "'");
}

/** One "path:line:col: error: ..." line with its path normalised (other lines: quotes only). */
export function tidyDiagnosticLine(line: string, treeRoot?: string): string {
  const l = asciiQuotes(line).trim();
  const m = /^([^\s:]+)(:\d+.*)$/.exec(l);
  return m?.[1] && m[2] ? `${normalisePath(m[1], treeRoot)}${m[2]}` : l;
}
