/**
 * Compiler diagnostics, the one owner of reading a build's output (pkg/build's job in
 * syzkaller): gcc/clang diagnostics parsed, the first error a user should see, and whether a
 * failed make means "this revision does not build" or an infrastructure problem.
 * Diagnostics read as a reviewer reads them: paths from the tree root and ASCII quotes.
 * Kernel builds print paths relative to the O= dir (../mm/x.c when the build dir sits inside
 * the tree, as in faultline's own trees) or absolute (/path/to/tree/mm/x.c).
 */

import { tail } from '../util/proc.js';

/** A compiler diagnostic's severity. */
export const SEVERITIES = ['warning', 'error'] as const;

/** Paths in a build log: absolute under the tree, ./x, or ../x from an O= build dir. */
function normalisePath(p: string, treeRoot?: string): string {
  let f = p.trim();
  if (treeRoot && f.startsWith(treeRoot.endsWith('/') ? treeRoot : `${treeRoot}/`))
    f = f.slice(treeRoot.length).replace(/^\/+/, '');
  while (f.startsWith('./') || f.startsWith('../')) f = f.replace(/^\.\.?\//, '');
  return f;
}

/** gcc quotes with U+2018/2019 outside the C locale; make messages locale independent. */
function asciiQuotes(line: string): string {
  return line.replace(/[\u2018\u2019]/g, "'");
}

/** One "path:line:col: error: ..." line with its path normalised (other lines: quotes only). */
function tidyDiagnosticLine(line: string, treeRoot?: string): string {
  const l = asciiQuotes(line).trim();
  const m = /^([^\s:]+)(:\d+.*)$/.exec(l);
  return m?.[1] && m[2] ? `${normalisePath(m[1], treeRoot)}${m[2]}` : l;
}

export interface Diagnostic {
  /** Path relative to the tree root. */
  file: string;
  line: number;
  column?: number;
  severity: (typeof SEVERITIES)[number];
  message: string;
  /** e.g. "-Wunused-variable". */
  flag?: string;
  /** The diagnostic line as the compiler printed it (path normalised). */
  text: string;
}

const DIAG = /^(.+?):(\d+):(?:(\d+):)? (warning|error|fatal error): (.*?)(?: \[(-W[^\]]+|-Werror[^\]]*)\])?\s*$/;

export function parseDiagnostics(log: string, treeRoot?: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const raw of log.split('\n')) {
    const line = asciiQuotes(raw).replace(/\r$/, '');
    const m = DIAG.exec(line);
    if (!m?.[1] || !m[2] || !m[4] || m[5] === undefined) continue;
    if (/^\s|^In file included/.test(m[1])) continue;
    const file = normalisePath(m[1], treeRoot);
    const severity = m[4] === 'warning' ? 'warning' : 'error';
    const d: Diagnostic = {
      file,
      line: Number(m[2]),
      severity,
      message: m[5],
      text: `${file}:${m[2]}:${m[3] ? `${m[3]}:` : ''} ${m[4]}: ${m[5]}${m[6] ? ` [${m[6]}]` : ''}`,
      ...(m[3] ? { column: Number(m[3]) } : {}),
      ...(m[6] ? { flag: m[6] } : {}),
    };
    out.push(d);
  }
  return out;
}

/** The first compiler error of a build log (what a reviewer wants to see), else undefined. */
export function firstCompilerError(log: string, treeRoot?: string): string | undefined {
  return parseDiagnostics(log, treeRoot).find((d) => d.severity === 'error')?.text;
}

/** The line a user wants from a failed build: the first compiler error (path from the tree root), else the first "error". */
export function firstErrorLine(output: string, treeRoot?: string): string {
  const lines = output.split('\n');
  const diag = lines.find((l) => /^\S+:\d+:\d+: (fatal )?error: /.test(l.trim()));
  if (diag) return tidyDiagnosticLine(diag, treeRoot);
  const hit =
    lines.find((l) => /\berror\b/i.test(l) && !/^make(\[\d+\])?: \*\*\*/.test(l)) ??
    lines.find((l) => /\berror\b/i.test(l));
  return (hit ?? lines.filter((l) => l.trim()).pop() ?? '').trim();
}

// ---------------------------------------------------------------------------
// Build failures: "this revision does not build" (exit 3) vs infrastructure (exit 2).

const INFRA_PATTERNS: RegExp[] = [
  /No space left on device/,
  /Cannot allocate memory/,
  /Killed signal terminated program/,
  /internal compiler error/,
  /\b(flex|bison|bc|perl|openssl|pahole|gcc|ld|ccache|cpio|gzip|xz|lz4|zstd): (command )?not found/,
  /command not found/,
  /fatal error: (gelf|libelf|openssl\/\w+|zlib|elfutils\/\w+)\.h: No such file or directory/,
  /Read-only file system/,
  /Permission denied/,
];

const BROKEN_PATTERNS: RegExp[] = [
  /^[^\s:]+:\d+(:\d+)?: (fatal )?error: .*/,
  /^[^\s:]+:\d+(:\d+)?: .*error: .*/,
  /undefined reference to .*/,
  /^(ld|[\w.-]*ld): .*(error|undefined|multiple definition).*/,
  /^ERROR: .*/,
  /^[\w/.-]+\.o: error: objtool.*/,
  /^\S*Kconfig:\d+: syntax error/,
];

export interface BuildFailure {
  kind: 'broken' | 'infra';
  firstError: string;
}

/** Classify a failed make from its output: compiler/linker errors mean the revision does not build. */
export function classifyBuildFailure(output: string, tree?: string): BuildFailure {
  const lines = output.split('\n');
  for (const re of INFRA_PATTERNS) {
    const l = lines.find((x) => re.test(x));
    if (l !== undefined) return { kind: 'infra', firstError: l.trim() };
  }
  for (const re of BROKEN_PATTERNS) {
    const l = lines.find((x) => re.test(x));
    if (l !== undefined) return { kind: 'broken', firstError: tidyDiagnosticLine(l, tree) };
  }
  // make stopped on an error of some recipe (a script of this revision): still the revision's fault.
  const makeErr = lines.find((x) => /^make(\[\d+\])?: \*\*\* .*Error \d+/.test(x));
  if (makeErr !== undefined) return { kind: 'broken', firstError: makeErr.trim() };
  return { kind: 'infra', firstError: tail(output, 1).trim() || 'make failed without output' };
}
