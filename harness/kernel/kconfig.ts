import { readFile, readdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { FaultlineError, UsageError, ExitCode } from '../util/errors.js';
import { run } from '../util/proc.js';

/**
 * Kconfig fragments as a checked contract: parse them strictly (file:line on
 * every error), resolve `--kconfig base,uffd` names to kconfigs/NAME.config,
 * and after olddefconfig compare every requested option with the final .config,
 * explaining a dropped option from the tree's own Kconfig files.
 */

/** One `CONFIG_X=v` or `# CONFIG_X is not set` line of a fragment. */
export interface FragmentEntry {
  symbol: string;
  /** 'y' | 'm' | 'n' (not set) | an int/hex/string value exactly as written (strings keep quotes). */
  value: string;
  line: number;
}

export interface Fragment {
  /** Absolute path. */
  path: string;
  /** File name, for messages (uffd.config). */
  name: string;
  entries: FragmentEntry[];
  /** sha256 of the content: part of the build cache's input key. */
  text: string;
}

const SYMBOL_RE = /^[A-Za-z0-9_]+$/;
const SET_RE = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/;
const UNSET_RE = /^# CONFIG_([A-Za-z0-9_]+) is not set$/;
const VALUE_RE = /^(y|m|n|-?\d+|0x[0-9a-fA-F]+|"(?:[^"\\]|\\.)*")$/;

/** Parse fragment text; throws UsageError naming file:line for any line kconfig would not take as meant. */
export function parseFragmentText(text: string, path: string): Fragment {
  const entries: FragmentEntry[] = [];
  const seen = new Map<string, FragmentEntry>();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '') return;
    let symbol: string | undefined;
    let value: string | undefined;
    const unset = UNSET_RE.exec(line.trimEnd());
    if (unset) {
      symbol = unset[1];
      value = 'n';
    } else if (trimmed.startsWith('#')) {
      // A near-miss of "# CONFIG_X is not set" is silently ignored by kconfig: refuse it instead.
      if (
        /^#\s*CONFIG_\w+\s+is\s+not\s+set/.test(trimmed) ||
        (line.startsWith(' ') && /^#\s*CONFIG_\w+ is not set/.test(trimmed))
      ) {
        throw new UsageError(
          `${path}:${lineNo}: malformed 'is not set' line: '${trimmed}' (write exactly '# CONFIG_NAME is not set')`,
        );
      }
      return;
    } else {
      const m = SET_RE.exec(trimmed);
      if (!m || line !== line.trimStart()) {
        throw new UsageError(
          `${path}:${lineNo}: not a kconfig line: '${trimmed}' (expected CONFIG_NAME=y|m|n|NUMBER|"STRING", '# CONFIG_NAME is not set', or a # comment)`,
        );
      }
      symbol = m[1];
      value = (m[2] ?? '').trimEnd();
      if (!VALUE_RE.test(value)) {
        throw new UsageError(
          `${path}:${lineNo}: bad value for CONFIG_${symbol}: '${value}' (expected y, m, n, a number, 0xHEX or a "quoted string")`,
        );
      }
    }
    if (symbol === undefined || value === undefined || !SYMBOL_RE.test(symbol)) {
      throw new UsageError(`${path}:${lineNo}: bad symbol name in '${trimmed}'`);
    }
    const prev = seen.get(symbol);
    if (prev) {
      if (prev.value !== value) {
        throw new UsageError(
          `${path}:${lineNo}: CONFIG_${symbol}=${value} contradicts line ${prev.line} (CONFIG_${symbol}=${prev.value}) in the same fragment`,
        );
      }
      return;
    }
    const entry = { symbol, value, line: lineNo };
    seen.set(symbol, entry);
    entries.push(entry);
  });
  return { path, name: basename(path), entries, text };
}

export async function parseFragment(path: string): Promise<Fragment> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read kconfig fragment ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseFragmentText(text, path);
}

/** The repository's kconfigs/ directory, whether running from source (harness/) or compiled (dist/harness/). */
export function kconfigsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const d = resolve(here, up, 'kconfigs');
    if (existsSync(join(d, 'base.config'))) return d;
  }
  return resolve(here, '../..', 'kconfigs');
}

/** Names shipped in kconfigs/ (without .config). */
export async function shippedFragments(dir = kconfigsDir()): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((f) => f.endsWith('.config'))
      .map((f) => f.slice(0, -'.config'.length))
      .sort();
  } catch {
    return [];
  }
}

/**
 * `--kconfig base,uffd --kconfig ./my.config` -> absolute paths, in order. A bare
 * name is kconfigs/NAME.config; anything with a slash or a .config suffix is a path.
 */
export async function resolveFragments(
  specs: readonly string[],
  opts: { cwd?: string; dir?: string } = {},
): Promise<string[]> {
  const dir = opts.dir ?? kconfigsDir();
  const cwd = opts.cwd ?? process.cwd();
  const out: string[] = [];
  for (const spec of specs
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const looksLikePath = spec.includes('/') || spec.endsWith('.config');
    const candidates = looksLikePath ? [isAbsolute(spec) ? spec : resolve(cwd, spec)] : [join(dir, `${spec}.config`)];
    // "uffd.config" with no slash: try the cwd first, then kconfigs/.
    if (looksLikePath && !spec.includes('/')) candidates.push(join(dir, spec));
    const found = candidates.find((c) => existsSync(c));
    if (!found) {
      const known = await shippedFragments(dir);
      throw new UsageError(
        `unknown kconfig fragment '${spec}': use one of ${known.join(', ') || '(none found)'} (from ${dir}) or a path to a .config fragment`,
      );
    }
    out.push(found);
  }
  return out;
}

/** A final .config as symbol -> value ('n' for "is not set"; absent symbols are not in the map). */
export function parseDotConfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = SET_RE.exec(line);
    if (set && set[1] !== undefined) {
      m.set(set[1], set[2] ?? '');
      continue;
    }
    const unset = UNSET_RE.exec(line);
    if (unset && unset[1] !== undefined) m.set(unset[1], 'n');
  }
  return m;
}

/** What a requested option ended up as. */
export interface ConfigMismatch {
  symbol: string;
  requested: string;
  /** 'n' when not set or absent from .config. */
  actual: string;
  /** Fragment file and line that asked for it (the last one, as merge_config.sh lets the last win). */
  from: string;
  /** Human explanation from Kconfig: unmet depends on, missing prompt, selectors... */
  why: string[];
}

function normalize(v: string | undefined): string {
  return v === undefined ? 'n' : v;
}

/**
 * The options the fragments ask for, later fragments overriding earlier ones
 * (merge_config.sh semantics). `overrides` lists the conflicts so they can be reported.
 */
export function effectiveRequests(fragments: readonly Fragment[]): {
  requests: Map<string, { value: string; from: string }>;
  overrides: string[];
} {
  const requests = new Map<string, { value: string; from: string }>();
  const overrides: string[] = [];
  for (const f of fragments) {
    for (const e of f.entries) {
      const prev = requests.get(e.symbol);
      const from = `${f.name}:${e.line}`;
      if (prev && prev.value !== e.value)
        overrides.push(`CONFIG_${e.symbol}=${e.value} (${from}) overrides ${prev.value} (${prev.from})`);
      requests.set(e.symbol, { value: e.value, from });
    }
  }
  return { requests, overrides };
}

/** Compare every requested option with the final .config and explain each mismatch from the tree's Kconfig. */
export async function checkFragments(
  fragments: readonly Fragment[],
  finalConfigText: string,
  tree: string,
  arch = 'x86',
): Promise<ConfigMismatch[]> {
  const final = parseDotConfig(finalConfigText);
  const { requests } = effectiveRequests(fragments);
  const mismatches: ConfigMismatch[] = [];
  for (const [symbol, req] of requests) {
    const actual = normalize(final.get(symbol));
    if (actual === req.value) continue;
    mismatches.push({ symbol, requested: req.value, actual, from: req.from, why: [] });
  }
  if (mismatches.length > 0) {
    const kc = await KconfigIndex.load(
      tree,
      mismatches.map((m) => m.symbol),
      arch,
    );
    for (const m of mismatches) m.why = kc.explain(m.symbol, m.requested, final);
  }
  return mismatches;
}

/** The fragment contract was not met: exit 2 (bad input for this tree), with each option and its reason. */
export class KconfigCheckError extends FaultlineError {
  readonly mismatches: ConfigMismatch[];
  constructor(mismatches: ConfigMismatch[], configPath: string) {
    const first = mismatches[0];
    const head = first
      ? `CONFIG_${first.symbol} (${first.from}) asked for ${shown(first.requested)} but the final .config has ${shown(first.actual)}: ${first.why[0] ?? 'unknown reason'}`
      : 'kconfig check failed';
    const more =
      mismatches.length > 1 ? ` (and ${mismatches.length - 1} more option${mismatches.length > 2 ? 's' : ''})` : '';
    super(`kconfig fragment not satisfied: ${head}${more}`, {
      exitCode: ExitCode.infra,
      detail: formatMismatches(mismatches) + `\nfinal config: ${configPath}`,
    });
    this.name = 'KconfigCheckError';
    this.mismatches = mismatches;
  }
}

function shown(v: string): string {
  return v === 'n' ? 'it not set' : `=${v}`;
}

function formatMismatches(ms: readonly ConfigMismatch[]): string {
  return ms
    .map((m) =>
      [
        `CONFIG_${m.symbol}: ${m.from} asks for ${m.requested === 'n' ? 'not set' : m.requested}, final .config has ${m.actual === 'n' ? 'not set' : m.actual}`,
        ...m.why.map((w) => `    ${w}`),
      ].join('\n'),
    )
    .join('\n');
}

// ---------------------------------------------------------------------------
// Reading Kconfig: where a symbol is defined, what it depends on, who selects it.

interface Definition {
  file: string; // relative to the tree
  line: number;
  type: string | undefined;
  hasPrompt: boolean;
  promptIf: string[];
  dependsOn: string[];
  /** Conditions of the enclosing if/menu/choice blocks in the defining file. */
  enclosing: { kind: string; cond: string; line: number }[];
}

interface Selector {
  file: string;
  line: number;
  by: string;
  cond: string | undefined;
  kind: 'select' | 'imply';
}

/** Only arch/<arch>/ Kconfig files (and none of the other arches, nor UML) are part of an x86 build. */
function inArch(rel: string, arch: string): boolean {
  if (!rel.startsWith('arch/')) return true;
  return rel.startsWith(`arch/${arch}/`) && !rel.startsWith(`arch/${arch}/um/`);
}

/** Join backslash-continued lines; keep the first line number. */
function logicalLines(text: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  const raw = text.split('\n');
  for (let i = 0; i < raw.length; i++) {
    const start = i;
    let t = raw[i] ?? '';
    while (t.endsWith('\\') && i + 1 < raw.length) {
      t = t.slice(0, -1) + ' ' + (raw[++i] ?? '').trim();
    }
    out.push({ text: t, line: start + 1 });
  }
  return out;
}

function stripComment(s: string): string {
  // Kconfig comments start with # outside of quotes.
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') q = !q;
    else if (c === '#' && !q) return s.slice(0, i);
  }
  return s;
}

const ENTRY_RE =
  /^\s*(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|comment|source|rsource|osource|orsource|mainmenu)\b/;

class KconfigIndex {
  private constructor(
    private readonly tree: string,
    private readonly defs: Map<string, Definition[]>,
    private readonly selectors: Map<string, Selector[]>,
  ) {}

  /** Find the definitions and the selectors of `symbols` (and of the symbols their dependencies name, one level). */
  static async load(tree: string, symbols: readonly string[], arch: string): Promise<KconfigIndex> {
    const defs = new Map<string, Definition[]>();
    const selectors = new Map<string, Selector[]>();
    const idx = new KconfigIndex(tree, defs, selectors);
    await idx.add(symbols, arch);
    // Explanations name the dependencies' own state; look those up too, so a
    // prompt-less dependency can be traced to what selects it.
    const deps = new Set<string>();
    for (const s of symbols)
      for (const d of defs.get(s) ?? [])
        for (const e of [...d.dependsOn, ...d.enclosing.map((x) => x.cond)])
          for (const id of identifiers(e)) deps.add(id);
    const more = [...deps].filter((d) => !defs.has(d));
    if (more.length > 0) await idx.add(more, arch);
    return idx;
  }

  private async add(symbols: readonly string[], arch: string): Promise<void> {
    if (symbols.length === 0) return;
    const alt = symbols.join('|');
    // One grep over all Kconfig files: definitions and select/imply lines.
    const r = await run(
      'grep',
      [
        '-rnE',
        '--include=Kconfig*',
        '--exclude-dir=.git',
        `^[[:space:]]*((menu)?config[[:space:]]+(${alt})[[:space:]]*$|(select|imply)[[:space:]]+(${alt})([[:space:]]|$))`,
        '.',
      ],
      { cwd: this.tree, timeoutMs: 60_000, allowFailure: true },
    );
    const files = new Map<string, { line: number; text: string }[]>();
    for (const l of r.stdout.split('\n')) {
      const m = /^\.\/([^:]+):(\d+):(.*)$/.exec(l);
      if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) continue;
      if (!inArch(m[1], arch)) continue;
      const list = files.get(m[1]) ?? [];
      list.push({ line: Number(m[2]), text: m[3] });
      files.set(m[1], list);
    }
    for (const [file, hits] of files) {
      const text = await readFile(join(this.tree, file), 'utf8');
      const parsed = parseKconfigFile(text);
      for (const h of hits) {
        const def = /^\s*(?:menu)?config\s+(\w+)\s*$/.exec(h.text);
        if (def && def[1] !== undefined && symbols.includes(def[1])) {
          const d = parsed.defs.get(h.line);
          if (d) push(this.defs, def[1], { ...d, file });
          continue;
        }
        const sel = /^\s*(select|imply)\s+(\w+)(?:\s+if\s+(.*))?$/.exec(stripComment(h.text).trimEnd());
        if (sel && sel[2] !== undefined && symbols.includes(sel[2])) {
          push(this.selectors, sel[2], {
            file,
            line: h.line,
            kind: sel[1] === 'imply' ? 'imply' : 'select',
            by: parsed.ownerOf(h.line) ?? '?',
            cond: sel[3]?.trim(),
          });
        }
      }
    }
  }

  /** Why `symbol` did not end up as `requested`, in a few lines. */
  explain(symbol: string, requested: string, cfg: Map<string, string>): string[] {
    const defs = this.defs.get(symbol) ?? [];
    if (defs.length === 0) {
      return [
        `CONFIG_${symbol} is not defined in any Kconfig file of this tree (misspelt, renamed, removed, or not for this architecture)`,
      ];
    }
    const why = defs.flatMap((d) => whyNot(symbol, requested, d, cfg));
    why.push(...this.selections(symbol, requested, defs, cfg, why.length));
    why.push(...this.promptlessDependencies(defs, cfg));
    if (why.length === 0) {
      const where = defs.map((d) => `${d.file}:${d.line}`).join(', ');
      why.push(
        `no unmet dependency found in ${where}; kconfig's default or a select decided it: look it up in 'make menuconfig' (/${symbol})`,
      );
    }
    return [...new Set(why)];
  }

  /** Selects forcing a symbol on that should be off (or m), or who selects a symbol nothing else explains. */
  private selections(
    symbol: string,
    requested: string,
    defs: readonly Definition[],
    cfg: Map<string, string>,
    explained: number,
  ): string[] {
    const sels = this.selectors.get(symbol) ?? [];
    if (requested === 'n' || requested === 'm') {
      return sels
        .filter(
          (s) =>
            s.kind === 'select' &&
            (cfg.get(s.by) ?? 'n') !== 'n' &&
            (s.cond === undefined || evalExpr(s.cond, cfg) > 0),
        )
        .map(
          (s) =>
            `forced on: selected by CONFIG_${s.by}=${cfg.get(s.by) ?? '?'}${s.cond ? ` if ${s.cond}` : ''} (${s.file}:${s.line})`,
        );
    }
    if (!defs.every((d) => !d.hasPrompt) && explained > 0) return [];
    const list = sels.slice(0, 6).map((s) => `${s.by}${s.cond ? ` if ${s.cond}` : ''} (${s.file}:${s.line})`);
    if (list.length === 0) return [];
    return [
      `CONFIG_${symbol} is ${sels.some((s) => s.kind === 'select') ? 'selected' : 'implied'} by: ${list.join(', ')}${sels.length > 6 ? ', ...' : ''}`,
    ];
  }

  /** Dependencies that are themselves off and prompt-less: say who would turn them on. */
  private promptlessDependencies(defs: readonly Definition[], cfg: Map<string, string>): string[] {
    const why: string[] = [];
    for (const d of defs) {
      for (const dep of [...d.enclosing.map((e) => e.cond), ...d.dependsOn]) {
        if (evalExpr(dep, cfg) > 0) continue;
        for (const id of identifiers(dep)) {
          if ((cfg.get(id) ?? 'n') !== 'n') continue;
          const idDefs = this.defs.get(id) ?? [];
          if (idDefs.length > 0 && idDefs.every((x) => !x.hasPrompt)) {
            const s = (this.selectors.get(id) ?? [])
              .slice(0, 4)
              .map((x) => `${x.by}${x.cond ? ` if ${x.cond}` : ''} (${x.file}:${x.line})`);
            why.push(
              `CONFIG_${id} has no prompt; it is ${s.length ? `selected by ${s.join(', ')}` : 'never selected for this architecture'}`,
            );
          }
        }
      }
    }
    return why;
  }
}

/** What one definition of `symbol` says about why it is not `requested`: unmet dependencies, type, prompt. */
function whyNot(symbol: string, requested: string, d: Definition, cfg: Map<string, string>): string[] {
  const why: string[] = [];
  const where = `${d.file}:${d.line}`;
  if (requested !== 'n') {
    const unmet: { text: string; cond: string }[] = [];
    for (const e of d.enclosing)
      if (evalExpr(e.cond, cfg) === 0)
        unmet.push({
          text: `inside '${e.kind === 'if' ? 'if' : `${e.kind} ... depends on`} ${e.cond}' (${d.file}:${e.line})`,
          cond: e.cond,
        });
    for (const dep of d.dependsOn) if (evalExpr(dep, cfg) === 0) unmet.push({ text: `depends on ${dep}`, cond: dep });
    for (const u of unmet) why.push(`unmet: ${u.text} [${describeSymbols(u.cond, cfg)}] (${where})`);
    if (requested === 'y' && d.type === 'tristate' && unmet.length === 0) {
      const capped = [...d.enclosing.map((e) => e.cond), ...d.dependsOn].filter((e) => evalExpr(e, cfg) === 1);
      for (const c of capped)
        why.push(`depends on ${c} which is only =m, so it can be m at most [${describeSymbols(c, cfg)}] (${where})`);
    }
    if (unmet.length === 0) {
      if (!d.hasPrompt) {
        why.push(
          `CONFIG_${symbol} has no prompt: a fragment cannot set it, only 'select' or its default can (${where})`,
        );
      } else {
        for (const c of d.promptIf.filter((x) => evalExpr(x, cfg) === 0))
          why.push(`its prompt is only visible if ${c} [${describeSymbols(c, cfg)}] (${where})`);
      }
    }
  }
  if (d.type !== undefined && !['bool', 'tristate'].includes(d.type) && (requested === 'y' || requested === 'm'))
    why.push(`CONFIG_${symbol} is a ${d.type}, not a bool/tristate (${where})`);
  if (d.type === 'bool' && requested === 'm')
    why.push(`CONFIG_${symbol} is a bool: it can be y or n, never m (${where})`);
  return why;
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  const l = m.get(k) ?? [];
  l.push(v);
  m.set(k, l);
}

/** "A && !B" -> "A=y, B=n" from the final .config (n for unset/absent). */
function describeSymbols(expr: string, cfg: Map<string, string>): string {
  return identifiers(expr)
    .map((id) => `${id}=${cfg.get(id) ?? 'n'}`)
    .join(', ');
}

function identifiers(expr: string): string[] {
  const ids =
    expr
      .replace(/"[^"]*"/g, ' ')
      .replace(/\$\([^)]*\)/g, ' ')
      .match(/\b[A-Za-z0-9_]+\b/g) ?? [];
  return [
    ...new Set(ids.filter((i) => !['y', 'm', 'n', 'if', 'on'].includes(i) && !/^\d+$/.test(i) && !/^0x/i.test(i))),
  ];
}

interface ParsedFile {
  defs: Map<number, Omit<Definition, 'file'>>;
  ownerOf(line: number): string | undefined;
}

/** Where a Kconfig reader stands in a file: the open blocks and the entry being read. */
interface ReaderState {
  defs: Map<number, Omit<Definition, 'file'>>;
  owners: { line: number; symbol: string | undefined }[];
  stack: { kind: string; cond: string; line: number }[];
  current: Omit<Definition, 'file'> | undefined;
  /** A menu/choice whose `depends on` lines are still being read. */
  pendingBlock: { kind: string; line: number; conds: string[] } | undefined;
}

/** A new entry (config, if, menu, choice, end*, ...): opens or closes blocks, starts a definition. */
function readEntry(st: ReaderState, kw: string | undefined, l: string, line: number): void {
  if (st.pendingBlock) {
    const b = st.pendingBlock;
    st.stack.push({ kind: b.kind, cond: b.conds.join(' && ') || 'y', line: b.line });
    st.pendingBlock = undefined;
  }
  st.current = undefined;
  let symbol: string | undefined;
  if (kw === 'config' || kw === 'menuconfig') {
    symbol = /^(?:menu)?config\s+(\w+)/.exec(l)?.[1];
    st.current = {
      line,
      type: undefined,
      hasPrompt: false,
      promptIf: [],
      dependsOn: [],
      enclosing: st.stack.filter((x) => x.cond !== 'y').map((x) => ({ ...x })),
    };
    st.defs.set(line, st.current);
  } else if (kw === 'if') {
    st.stack.push({ kind: 'if', cond: l.slice(2).trim(), line });
  } else if (kw === 'menu' || kw === 'choice') {
    st.pendingBlock = { kind: kw, line, conds: [] };
  } else if (kw === 'endif' || kw === 'endmenu' || kw === 'endchoice') {
    const want = kw === 'endif' ? 'if' : kw === 'endmenu' ? 'menu' : 'choice';
    for (let i = st.stack.length - 1; i >= 0; i--) {
      if (st.stack[i]?.kind === want) {
        st.stack.splice(i, 1);
        break;
      }
    }
  }
  st.owners.push({ line, symbol });
}

/** A type, def_ or prompt line of the definition being read. */
function readAttribute(current: Omit<Definition, 'file'>, l: string): void {
  const typed = /^(bool|tristate|string|int|hex)\b\s*(.*)$/.exec(l);
  const defTyped = /^def_(bool|tristate)\b/.exec(l);
  const prompt = /^prompt\s+"/.exec(l);
  if (typed) {
    current.type = typed[1];
    const rest = typed[2] ?? '';
    if (rest.startsWith('"')) {
      current.hasPrompt = true;
      const cond = /"\s+if\s+(.*)$/.exec(rest)?.[1];
      if (cond) current.promptIf.push(cond.trim());
    }
  } else if (defTyped) {
    current.type = defTyped[1];
  } else if (prompt) {
    current.hasPrompt = true;
    const cond = /"\s+if\s+(.*)$/.exec(l)?.[1];
    if (cond) current.promptIf.push(cond.trim());
  }
}

/** A small line-based Kconfig reader: enough for depends on / prompts / if-menu-choice nesting in one file. */
function parseKconfigFile(text: string): ParsedFile {
  const st: ReaderState = { defs: new Map(), owners: [], stack: [], current: undefined, pendingBlock: undefined };
  let inHelp = false;
  let helpIndent = -1;
  for (const { text: rawLine, line } of logicalLines(text)) {
    const indent = (/^[ \t]*/.exec(rawLine)?.[0] ?? '').replace(/\t/g, '        ').length;
    const l = stripComment(rawLine).trim();
    if (inHelp) {
      if (rawLine.trim() === '') continue;
      if (helpIndent < 0) helpIndent = indent;
      if (indent >= helpIndent && indent > 0) continue;
      inHelp = false;
      helpIndent = -1;
    }
    if (l === '') continue;
    const entry = ENTRY_RE.exec(l);
    if (entry) {
      readEntry(st, entry[1], l, line);
      continue;
    }
    if (/^(help|---help---)$/.test(l)) {
      inHelp = true;
      helpIndent = -1;
      continue;
    }
    const dep = /^depends\s+on\s+(.*)$/.exec(l);
    if (dep && dep[1] !== undefined) {
      if (st.current) st.current.dependsOn.push(dep[1].trim());
      else if (st.pendingBlock) st.pendingBlock.conds.push(dep[1].trim());
      continue;
    }
    if (st.pendingBlock && /^visible\s+if\s+/.test(l)) continue;
    if (st.current) readAttribute(st.current, l);
  }
  const { owners } = st;
  return {
    defs: st.defs,
    ownerOf(line: number): string | undefined {
      let owner: string | undefined;
      for (const o of owners) {
        if (o.line > line) break;
        owner = o.symbol;
      }
      return owner;
    },
  };
}

// ---------------------------------------------------------------------------
// Kconfig expressions, evaluated in tristate logic against the final .config.

type Tok = { t: 'id' | 'str' | 'op' | 'lp' | 'rp'; v: string };

function tokenize(expr: string): Tok[] | undefined {
  const toks: Tok[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i] ?? '';
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = expr.slice(i, i + 2);
    if (['&&', '||', '!=', '<=', '>='].includes(two)) {
      toks.push({ t: 'op', v: two });
      i += 2;
      continue;
    }
    if (['!', '=', '<', '>'].includes(c)) {
      toks.push({ t: 'op', v: c });
      i++;
      continue;
    }
    if (c === '(') {
      toks.push({ t: 'lp', v: c });
      i++;
      continue;
    }
    if (c === ')') {
      toks.push({ t: 'rp', v: c });
      i++;
      continue;
    }
    if (c === '"') {
      const end = expr.indexOf('"', i + 1);
      if (end < 0) return undefined;
      toks.push({ t: 'str', v: expr.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    if (c === '$') return undefined; // $(macro): cannot evaluate here
    const m = /^[A-Za-z0-9_.-]+/.exec(expr.slice(i));
    if (!m) return undefined;
    toks.push({ t: 'id', v: m[0] });
    i += m[0].length;
  }
  return toks;
}

function tri(v: string): number {
  return v === 'y' ? 2 : v === 'm' ? 1 : 0;
}

/** A Kconfig comparison (=, !=, <, >, <=, >=): numerically when both sides are numbers, else as strings. */
function compareSymbols(op: string, a: string, b: string): boolean {
  const na = Number(a),
    nb = Number(b);
  const numeric = a !== '' && b !== '' && !Number.isNaN(na) && !Number.isNaN(nb);
  const cmp = numeric ? na - nb : a === b ? 0 : a < b ? -1 : 1;
  return op === '='
    ? cmp === 0
    : op === '!='
      ? cmp !== 0
      : op === '<'
        ? cmp < 0
        : op === '>'
          ? cmp > 0
          : op === '<='
            ? cmp <= 0
            : cmp >= 0;
}

/** Evaluate a Kconfig dependency expression: 0 (n), 1 (m), 2 (y); -1 when it cannot be evaluated. */
export function evalExpr(expr: string, cfg: Map<string, string>): number {
  const toks = tokenize(expr);
  if (!toks) return -1;
  let p = 0;
  const value = (t: Tok): string =>
    t.t === 'str'
      ? t.v
      : ['y', 'm', 'n'].includes(t.v)
        ? t.v
        : /^-?\d+$|^0x/i.test(t.v)
          ? t.v
          : (cfg.get(t.v) ?? 'n').replace(/^"|"$/g, '');
  function primary(): number {
    const t = toks![p];
    if (!t) throw new Error('eof');
    if (t.t === 'op' && t.v === '!') {
      p++;
      return 2 - primary();
    }
    if (t.t === 'lp') {
      p++;
      const v = or();
      if (toks![p]?.t !== 'rp') throw new Error(')');
      p++;
      return v;
    }
    if (t.t === 'id' || t.t === 'str') {
      p++;
      const next = toks![p];
      if (next && next.t === 'op' && ['=', '!=', '<', '>', '<=', '>='].includes(next.v)) {
        p++;
        const rhs = toks![p++];
        if (!rhs || (rhs.t !== 'id' && rhs.t !== 'str')) throw new Error('rhs');
        return compareSymbols(next.v, value(t), value(rhs)) ? 2 : 0;
      }
      return t.t === 'str' ? 0 : tri(value(t));
    }
    throw new Error('token');
  }
  function and(): number {
    let v = primary();
    while (toks![p]?.v === '&&') {
      p++;
      v = Math.min(v, primary());
    }
    return v;
  }
  function or(): number {
    let v = and();
    while (toks![p]?.v === '||') {
      p++;
      v = Math.max(v, and());
    }
    return v;
  }
  try {
    const v = or();
    return p === toks.length ? v : -1;
  } catch {
    return -1;
  }
}
