/**
 * Compiler diagnostics (gcc and clang share the format) and the "new warnings in files this patch
 * touched" comparison. Warnings are matched without line numbers (a patch moves lines) as a
 * multiset of (file, flag, message).
 */

import type { Diagnostic } from '../toolchain/diagnostics.js';

const keyOf = (d: Diagnostic): string => `${d.file}\0${d.flag ?? ''}\0${d.message}`;

/** Warnings of `now` not present in `before` (multiset difference, ignoring line numbers). */
export function newWarnings(before: readonly Diagnostic[], now: readonly Diagnostic[]): Diagnostic[] {
  const counts = new Map<string, number>();
  for (const d of before) if (d.severity === 'warning') counts.set(keyOf(d), (counts.get(keyOf(d)) ?? 0) + 1);
  const out: Diagnostic[] = [];
  for (const d of now) {
    if (d.severity !== 'warning') continue;
    const k = keyOf(d);
    const c = counts.get(k) ?? 0;
    if (c > 0) counts.set(k, c - 1);
    else out.push(d);
  }
  return out;
}

/**
 * Warnings per file as of the last build that compiled that file. An incremental build only
 * recompiles what changed, so a file's warnings are updated only when the build compiled it;
 * files a patch touched are always recompiled, so their entry is always current.
 */
export class WarningLedger {
  private readonly byFile = new Map<string, Diagnostic[]>();
  /** False until a full build (or a build whose log is known complete) was recorded. */
  private baselineKnown = false;
  /** Files a build changed without its log saying their warnings (a cache hit's older make). */
  private readonly unknown = new Set<string>();

  /** Record a build: its diagnostics, and the files it certainly compiled (even with no output). */
  record(diags: readonly Diagnostic[], compiled: readonly string[], full: boolean): void {
    if (full) {
      this.byFile.clear();
      this.unknown.clear();
      this.baselineKnown = true;
    }
    const grouped = new Map<string, Diagnostic[]>();
    for (const d of diags) if (d.severity === 'warning') grouped.set(d.file, [...(grouped.get(d.file) ?? []), d]);
    for (const f of compiled) this.byFile.set(f, grouped.get(f) ?? []);
    for (const [f, ds] of grouped) this.byFile.set(f, ds);
    for (const f of [...compiled, ...grouped.keys()]) this.unknown.delete(f);
  }

  /** Files changed by a build whose warnings no log gave: comparisons touching them are unknown. */
  forget(files: readonly string[]): void {
    for (const f of files) this.unknown.add(f);
  }

  /** New warnings in `touched` files of a build compared with the ledger (call before record()). */
  compare(diags: readonly Diagnostic[], touched: readonly string[]): { known: boolean; added: Diagnostic[] } {
    const set = new Set(touched);
    const now = diags.filter((d) => set.has(d.file));
    const before = touched.flatMap((f) => this.byFile.get(f) ?? []);
    const known = this.baselineKnown && touched.every((f) => !this.unknown.has(f));
    return { known, added: known ? newWarnings(before, now) : [] };
  }
}

/**
 * Whether a build's log holds the current warnings of every file a patch touched. A build that ran
 * here from the parent's obj dir recompiled them all. A cache hit's log is of an earlier make that
 * began from some other obj dir state: a touched source file it did not compile, or any touched
 * header (whose warnings come from whichever units included it), leaves the comparison unknown.
 */
export function logCoversTouched(
  build: { cacheHit: boolean; compiled?: readonly string[] },
  touched: readonly string[],
): boolean {
  if (!build.cacheHit) return true;
  const compiled = new Set(build.compiled ?? []);
  return touched.every((f) => (/\.h$/.test(f) ? false : /\.[cS]$/.test(f) ? compiled.has(f) : true));
}
