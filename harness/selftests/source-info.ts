/**
 * Facts read from a selftest's own C source, so the harness asks each tree's program
 * only what that program understands (argument words, planned test cases) instead of
 * guessing from a kernel version. Each reader throws an Error naming what it could
 * not find; the build turns that into a warning and leaves the fact out.
 */
import type { UnitTestCase } from '../results/selftests.js';
import type { Backing } from '../results/types.js';

/** Comments out, line continuations joined: the regexes below then see plain code. */
function code(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, '')
    .replace(/\\\n/g, ' ');
}

/** The text between the brace at `open` and its match (exclusive), or undefined when unbalanced. */
function braceBody(text: string, open: number): string | undefined {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  return undefined;
}

/** The top-level `{ ... }` entries of the array initializer `<name>[] = { ... };`. */
function arrayEntries(text: string, name: string): string[] {
  const m = new RegExp(`\\b${name}\\s*\\[\\s*\\]\\s*=\\s*\\{`).exec(text);
  if (!m) throw new Error(`no ${name}[] initializer`);
  const body = braceBody(text, m.index + m[0].length - 1);
  if (body === undefined) throw new Error(`unbalanced braces in ${name}[]`);
  const entries: string[] = [];
  for (let i = body.indexOf('{'); i >= 0; i = body.indexOf('{', i)) {
    const entry = braceBody(body, i);
    if (entry === undefined) throw new Error(`unbalanced braces in ${name}[]`);
    entries.push(entry);
    i += entry.length + 2;
  }
  return entries;
}

function field(entry: string, name: string): string | undefined {
  return new RegExp(`\\.${name}\\s*=\\s*([^,]+?)\\s*(?:,|$)`).exec(entry.trim())?.[1];
}

/** `#define NAME value` (continuations already joined). */
function defines(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+([^\n]+)$/gm))
    out.set(m[1] ?? '', (m[2] ?? '').trim());
  return out;
}

/** The memory flags an OR-expression of flag names and #defined unions names, resolved symbolically. */
function resolveFlags(
  expr: string,
  flags: ReadonlySet<string>,
  defs: ReadonlyMap<string, string>,
  depth = 0,
): Set<string> {
  if (depth > 8) throw new Error(`#define cycle resolving '${expr}'`);
  const out = new Set<string>();
  for (const part of expr
    .replace(/[()]/g, ' ')
    .split('|')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (flags.has(part)) out.add(part);
    else if (defs.has(part)) for (const f of resolveFlags(defs.get(part) ?? '', flags, defs, depth + 1)) out.add(f);
    else throw new Error(`cannot resolve memory flag '${part}'`);
  }
  return out;
}

/**
 * Every entry of uffd-unit-tests.c's uffd_tests[] with the memory types it runs on:
 * `.mem_targets` resolved through `#define MEM_*` to mem_types[]' `.mem_flag`, named by
 * their `.name` and listed in mem_types[] order (the order main() runs them in).
 */
export function unitTestCases(source: string): UnitTestCase[] {
  const text = code(source);
  const defs = defines(text);
  const mems: { name: string; flag: string }[] = [];
  for (const e of arrayEntries(text, 'mem_types')) {
    const name = /^"([^"]*)"$/.exec(field(e, 'name') ?? '')?.[1];
    const flag = field(e, 'mem_flag');
    if (name === undefined || flag === undefined) throw new Error('a mem_types[] entry lacks .name or .mem_flag');
    mems.push({ name, flag });
  }
  const flags = new Set(mems.map((m) => m.flag));
  const cases: UnitTestCase[] = [];
  for (const e of arrayEntries(text, 'uffd_tests')) {
    const test = /^"([^"]*)"$/.exec(field(e, 'name') ?? '')?.[1];
    const targets = field(e, 'mem_targets');
    if (test === undefined || targets === undefined)
      throw new Error('a uffd_tests[] entry lacks .name or .mem_targets');
    const on = resolveFlags(targets, flags, defs);
    cases.push({ test, mems: mems.filter((m) => on.has(m.flag)).map((m) => m.name) });
  }
  if (cases.length === 0) throw new Error('uffd_tests[] is empty');
  return cases;
}

/**
 * The stress program's own word for each backing, from its test-type parser: every
 * `if (!strcmp(x, "word")) { ... }` block that assigns `test_type = TEST_*`, shared when
 * the block sets `map_shared = true` (anon has no shared variant). Blocks that set no
 * test type (the ":dev"/":collapse" mods of older userfaultfd.c) are not backings.
 */
export function stressBackingArgs(source: string): Partial<Record<Backing, string>> {
  const text = code(source);
  const out: Partial<Record<Backing, string>> = {};
  for (const m of text.matchAll(/if\s*\(\s*!\s*strcmp\s*\(\s*\w+\s*,\s*"([^"]+)"\s*\)\s*\)\s*\{/g)) {
    const body = braceBody(text, (m.index ?? 0) + m[0].length - 1) ?? '';
    const type = /\btest_type\s*=\s*TEST_(\w+)/.exec(body)?.[1];
    if (type === undefined) continue;
    const shared = /\bmap_shared\s*=\s*true\b/.test(body);
    const backing: Backing | undefined =
      type === 'ANON'
        ? 'anon'
        : type === 'SHMEM'
          ? shared
            ? 'shmem'
            : 'shmem-private'
          : type === 'HUGETLB'
            ? shared
              ? 'hugetlb'
              : 'hugetlb-private'
            : undefined;
    if (backing !== undefined && out[backing] === undefined) out[backing] = m[1] ?? '';
  }
  if (Object.keys(out).length === 0)
    throw new Error('no test type words (if (!strcmp(type, "...")) { test_type = TEST_*; })');
  return out;
}

/** Older userfaultfd.c maps shared hugetlb from a hugetlbfs file named by its 4th argument. */
export function takesHugetlbfsFile(source: string): boolean {
  return /\bopen\s*\(\s*argv\s*\[\s*4\s*\]/.test(code(source));
}
