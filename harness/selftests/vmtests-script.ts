/**
 * Reads the tested tree's tools/testing/selftests/mm/run_vmtests.sh (vm/ before 6.3) for
 * the programs it runs and how: each `run_test` line gives a category (from 6.4 on, its
 * CATEGORY="..." prefix), the argv, and whether it only runs with -d (destructive) or
 * only with -a (the gup_test matrix, left out as run_vmtests.sh leaves it out by default).
 */

export interface VmtestsInvocation {
  /** The script's category word; undefined in scripts older than the categories (6.1). */
  category?: string;
  /** The command after run_test, quotes removed, variables left as written ("$half_ufd_size_MB"). */
  argv: string[];
  /** Inside `if $RUN_DESTRUCTIVE`: run_vmtests.sh runs it only with -d. */
  destructive: boolean;
  /** 1-based line in run_vmtests.sh, for messages. */
  line: number;
}

const RUN_TEST = /^\s*(?:CATEGORY="([\w-]+)"\s+)?run_test\s+(.+?)\s*$/;

/** Split a shell word list the way run_vmtests.sh's lines need: spaces, "..." and '...' quotes. */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (ch === '#' && !inWord) {
      break;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** Lines inside `fn() { ... }` bodies: the gup matrix function runs only with -a. */
function functionBodies(lines: string[]): Set<number> {
  const inside = new Set<number>();
  let open = false;
  lines.forEach((l, i) => {
    if (/^\w+\(\)\s*\{/.test(l)) open = true;
    else if (open && /^\}/.test(l)) open = false;
    else if (open) inside.add(i);
  });
  return inside;
}

/**
 * The `if` blocks a line sits in, by their condition: `$RUN_DESTRUCTIVE` and `$RUN_ALL`
 * (its then-branch only: the else-branch is what runs by default).
 */
function conditionsAt(lines: string[]): { destructive: Set<number>; runAllOnly: Set<number> } {
  const stack: { cond: string; inElse: boolean }[] = [];
  const destructive = new Set<number>();
  const runAllOnly = new Set<number>();
  lines.forEach((raw, i) => {
    const l = raw.trim();
    if (/^if\s/.test(l)) stack.push({ cond: l, inElse: false });
    else if (/^fi\b/.test(l)) stack.pop();
    else if (/^else\b/.test(l) && stack.length) stack[stack.length - 1]!.inElse = true;
    for (const f of stack) {
      if (f.cond.includes('$RUN_DESTRUCTIVE') && !f.inElse) destructive.add(i);
      if (f.cond.includes('$RUN_ALL') && !f.inElse) runAllOnly.add(i);
    }
  });
  return { destructive, runAllOnly };
}

/** Every run_test invocation run_vmtests.sh makes without -a, in script order. */
export function parseVmtestsScript(text: string): VmtestsInvocation[] {
  const lines = text.split('\n');
  const skip = functionBodies(lines);
  const { destructive, runAllOnly } = conditionsAt(lines);
  const out: VmtestsInvocation[] = [];
  lines.forEach((l, i) => {
    if (skip.has(i) || runAllOnly.has(i) || /^\s*#/.test(l)) return;
    const m = RUN_TEST.exec(l);
    if (!m) return;
    const argv = shellWords(m[2]!);
    if (argv.length === 0) return;
    out.push({ ...(m[1] ? { category: m[1] } : {}), argv, destructive: destructive.has(i), line: i + 1 });
  });
  if (out.length === 0) throw new Error('no run_test lines found');
  return out;
}

/**
 * The hugetlbfs mount run_vmtests.sh makes for its programs, relative to its directory
 * (6.1: `mnt=./huge` and `mount -t hugetlbfs none "$mnt"`; hugepage-mmap opens
 * huge/hugepagefile there), or undefined when it makes none (6.4 and later).
 */
export function hugetlbfsMountOf(text: string): string | undefined {
  const dir = /^mnt=(\S+)\s*$/m.exec(text)?.[1];
  return dir && /^\s*mount -t hugetlbfs \S+ "?\$mnt"?/m.test(text) ? dir : undefined;
}
