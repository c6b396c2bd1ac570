/**
 * KTAP / kselftest TAP parser (Documentation/dev-tools/ktap.rst). Handles the
 * kselftest flavour ("TAP version 13", "1..N", "ok N name # SKIP reason",
 * "# Totals: pass:N fail:N ...") and nested KTAP subtests (indented by 2 spaces),
 * which are flattened into dotted paths only at the top level we need.
 */

export type KtapDirective = 'SKIP' | 'TODO' | 'XFAIL' | 'TIMEOUT' | 'ERROR';

export interface KtapTest {
  number: number;
  ok: boolean;
  name: string;
  directive?: KtapDirective;
  reason?: string;
  /** Diagnostic ("# ...") lines printed between the previous result and this one. */
  diagnostics: string[];
}

export interface KtapTotals {
  pass: number;
  fail: number;
  xfail: number;
  xpass: number;
  skip: number;
  error: number;
}

export interface KtapResult {
  /** "TAP version 13" / "KTAP version 1" seen. */
  version?: string;
  plan?: number;
  tests: KtapTest[];
  totals?: KtapTotals;
  bailOut?: string;
  /** Top-level diagnostics after the last result (often the exit summary). */
  trailingDiagnostics: string[];
}

const VERSION = /^(?:KTAP|TAP) version (\d+)\s*$/;
const PLAN = /^1\.\.(\d+)/;
const RESULT = /^(not ok|ok)\s+(\d+)\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$/;
const TOTALS = /^#\s*Totals:\s*pass:(\d+)\s+fail:(\d+)\s+xfail:(\d+)\s+xpass:(\d+)\s+skip:(\d+)\s+error:(\d+)/;

/** The most characters of diagnostics a failure's reason keeps: its last lines, nearest the result. */
export const REASON_MAX_CHARS = 300;
const REASON_SEPARATOR = ' | ';

/**
 * The last of `lines` (trimmed, empty ones dropped) that fit in REASON_MAX_CHARS, on one line
 * and nearest first: a program says why it failed just before its result, and summaries show
 * only a reason's start. " | …" at the end when earlier lines were left out; a lone longer
 * line is cut to fit.
 */
export function boundedLines(lines: readonly string[]): string | undefined {
  const all = lines.map((l) => l.trim()).filter((l) => l.length > 0);
  const kept: string[] = [];
  let length = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    const line = all[i] ?? '';
    const grown = length + (kept.length ? REASON_SEPARATOR.length : 0) + line.length;
    if (kept.length && grown > REASON_MAX_CHARS - REASON_SEPARATOR.length - 1) break;
    kept.push(line);
    length = grown;
  }
  if (kept.length === 0) return undefined;
  const text = kept.join(REASON_SEPARATOR);
  if (text.length > REASON_MAX_CHARS) return `${text.slice(0, REASON_MAX_CHARS - 1)}…`;
  return kept.length < all.length ? `${text}${REASON_SEPARATOR}…` : text;
}

/**
 * Why a result failed: the text after its "#" when it has one, else the diagnostic lines
 * printed before it (kselftest prints its explanation before "not ok", and the kernel's
 * kunit_parser keeps those lines as the test's log). `explains` drops lines that are not
 * explanations (metrics, a heading the name already carries).
 */
export function failureReason(t: KtapTest, explains: (line: string) => boolean = () => true): string | undefined {
  if (t.reason) return t.reason;
  return boundedLines(t.diagnostics.filter(explains));
}

export function parseKtap(text: string): KtapResult {
  const result: KtapResult = { tests: [], trailingDiagnostics: [] };
  let pending: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    // Only top-level lines: nested subtests are indented.
    if (/^\s/.test(line)) continue;
    let m: RegExpExecArray | null;
    if ((m = VERSION.exec(line))) {
      result.version ??= m[1];
      continue;
    }
    if (result.plan === undefined && (m = PLAN.exec(line))) {
      result.plan = Number(m[1]);
      continue;
    }
    if ((m = TOTALS.exec(line))) {
      result.totals = {
        pass: Number(m[1]),
        fail: Number(m[2]),
        xfail: Number(m[3]),
        xpass: Number(m[4]),
        skip: Number(m[5]),
        error: Number(m[6]),
      };
      continue;
    }
    if (line.startsWith('Bail out!')) {
      result.bailOut = line.slice('Bail out!'.length).trim();
      continue;
    }
    if ((m = RESULT.exec(line))) {
      const test: KtapTest = {
        number: Number(m[2]),
        ok: m[1] === 'ok',
        name: (m[3] ?? '').trim(),
        diagnostics: pending,
      };
      pending = [];
      const dir = m[4]?.trim();
      if (dir) {
        const d = /^(SKIP|TODO|XFAIL|TIMEOUT|ERROR)\b\s*(.*)$/i.exec(dir);
        if (d) {
          test.directive = (d[1] ?? '').toUpperCase() as KtapDirective;
          if (d[2]) test.reason = d[2].trim();
        } else {
          test.reason = dir;
        }
      }
      result.tests.push(test);
      continue;
    }
    if (line.startsWith('#')) pending.push(line.replace(/^#\s?/, ''));
  }
  result.trailingDiagnostics = pending;
  return result;
}
