/**
 * Nightly plan files (YAML or JSON; JSON is YAML). Parsed with the yaml package's Document +
 * LineCounter so every complaint names the line and column it is about, and all complaints
 * are reported at once (a CI author fixes the plan in one go, not one error per run).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import {
  LineCounter,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  type Node as YamlNode,
  type Pair,
  type Scalar,
} from 'yaml';
import type { Plan, PlanConfig, PlanKernel } from '../results/nightly.js';
import { BACKINGS, GUEST_RAMS, type Backing, type GuestRam } from '../results/types.js';
import { UsageError } from '../util/errors.js';
import { sha256 } from '../util/fsutil.js';
import { stableStringify } from '../util/stable-json.js';
import { minMemFor1gPages } from '../vm/qemu-args.js';
import { readKnownIssues } from '../results/known-issues.js';

/** Same defaults as `faultline run`. */
const DEFAULT_TIMEOUT_SEC = 1200;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const SERIES_RE = /^\d+\.\d+$/;

const TOP_KEYS = [
  'name',
  'kernels',
  'configs',
  'backings',
  'guest_ram',
  'suites',
  'repeat',
  'quick',
  'timeouts',
  'boot_timeout',
  'mem',
  'smp',
  'hugepages',
  'hugepages_1g',
  'filter',
  'cmdline',
  'retries',
  'numa',
  'programs',
  'known_issues',
  'bisect',
] as const;
const KERNEL_KEYS = ['name', 'debian', 'tree', 'ref', 'kconfig', 'config_base'] as const;
const BISECT_KEYS = ['max_minutes', 'runs'] as const;
const CONFIG_BASES = ['defconfig', 'tinyconfig', 'allnoconfig'] as const;
const CONFIG_KEYS = ['name', 'fragments'] as const;

interface PlanIssue {
  line: number;
  col: number;
  path: string;
  message: string;
}

/** Edit distance, for "did you mean" on misspelt keys. */
function distance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0] ?? 0;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j] ?? 0;
      d[j] = Math.min((d[j] ?? 0) + 1, (d[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length] ?? 0;
}

function suggest(word: string, options: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const dd = distance(word, o);
    if (dd < bestD) {
      bestD = dd;
      best = o;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean '${best}'?)` : '';
}

class PlanReader {
  readonly issues: PlanIssue[] = [];
  constructor(
    private readonly text: string,
    private readonly lines: LineCounter,
  ) {}

  at(node: YamlNode | Pair | null | undefined, fallback?: YamlNode | null): { line: number; col: number } {
    const n = (node && 'range' in node ? node : undefined) ?? fallback ?? undefined;
    const offset = n && 'range' in n && n.range ? n.range[0] : 0;
    const p = this.lines.linePos(offset);
    return { line: p.line, col: p.col };
  }

  err(node: YamlNode | null | undefined, path: string, message: string, fallback?: YamlNode | null): void {
    this.issues.push({ ...this.at(node, fallback), path, message });
  }

  /** The scalar's text as written: keeps "6.10" from becoming the number 6.1. */
  sourceText(node: Scalar): string {
    if (typeof node.value === 'string') return node.value;
    if (node.range)
      return this.text
        .slice(node.range[0], node.range[1])
        .trim()
        .replace(/^["']|["']$/g, '');
    return String(node.value);
  }

  string(
    node: YamlNode | null | undefined,
    path: string,
    parent: YamlNode | null,
    opts: { re?: RegExp; what?: string } = {},
  ): string | undefined {
    if (!isScalar(node) || node.value === null || typeof node.value === 'object') {
      this.err(node, path, `expected ${opts.what ?? 'a string'}`, parent);
      return undefined;
    }
    const s = this.sourceText(node);
    if (opts.re && !opts.re.test(s)) {
      this.err(node, path, `'${s}' is not ${opts.what ?? `matching ${String(opts.re)}`}`, parent);
      return undefined;
    }
    return s;
  }

  integer(
    node: YamlNode | null | undefined,
    path: string,
    parent: YamlNode | null,
    min: number,
    max: number,
  ): number | undefined {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) {
      this.err(node, path, `expected an integer between ${min} and ${max}`, parent);
      return undefined;
    }
    if (node.value < min || node.value > max) {
      this.err(node, path, `${node.value} is out of range: expected ${min}..${max}`, parent);
      return undefined;
    }
    return node.value;
  }

  boolean(node: YamlNode | null | undefined, path: string, parent: YamlNode | null): boolean | undefined {
    if (!isScalar(node) || typeof node.value !== 'boolean') {
      this.err(node, path, 'expected true or false', parent);
      return undefined;
    }
    return node.value;
  }

  /** A list of strings; a lone string is accepted as a one-element list. */
  stringList(
    node: YamlNode | null | undefined,
    path: string,
    parent: YamlNode | null,
    opts: { allowed?: readonly string[]; re?: RegExp; what?: string; nonEmpty?: boolean } = {},
  ): string[] {
    const items: (YamlNode | null)[] = isSeq(node) ? (node.items as (YamlNode | null)[]) : isScalar(node) ? [node] : [];
    if (!isSeq(node) && !isScalar(node)) {
      this.err(node, path, `expected a list of ${opts.what ?? 'strings'}`, parent);
      return [];
    }
    const out: string[] = [];
    items.forEach((item, i) => {
      const p = isSeq(node) ? `${path}[${i}]` : path;
      const s = this.string(item, p, node ?? parent, opts.re ? { re: opts.re, what: opts.what ?? 'valid' } : {});
      if (s === undefined) return;
      if (opts.allowed && !opts.allowed.includes(s)) {
        this.err(item, p, `'${s}' is not one of ${opts.allowed.join(', ')}${suggest(s, opts.allowed)}`, node);
        return;
      }
      if (out.includes(s)) {
        this.err(item, p, `'${s}' is listed twice`, node);
        return;
      }
      out.push(s);
    });
    if (opts.nonEmpty && out.length === 0 && this.issues.every((e) => !e.path.startsWith(path))) {
      this.err(node, path, `must list at least one ${opts.what ?? 'entry'}`, parent);
    }
    return out;
  }

  /** Map entries keyed by scalar strings; unknown keys are errors (typos must not be silently ignored). */
  entries(
    node: YamlNode | null | undefined,
    path: string,
    parent: YamlNode | null,
    known: readonly string[] | null,
  ): Map<string, { key: YamlNode; value: YamlNode | null }> {
    const out = new Map<string, { key: YamlNode; value: YamlNode | null }>();
    if (!isMap(node)) {
      this.err(node, path || '/', 'expected a mapping (key: value)', parent);
      return out;
    }
    for (const pair of node.items) {
      const key = pair.key as YamlNode | null;
      if (!isScalar(key) || typeof key.value !== 'string') {
        this.err(key, path || '/', 'keys must be plain strings', node);
        continue;
      }
      const k = key.value;
      const where = path ? `${path}.${k}` : k;
      if (known && !known.includes(k)) {
        this.err(key, where, `unknown key '${k}'${suggest(k, known)}; known keys: ${known.join(', ')}`, node);
        continue;
      }
      if (out.has(k)) {
        this.err(key, where, `duplicate key '${k}'`, node);
        continue;
      }
      out.set(k, { key, value: pair.value as YamlNode | null });
    }
    return out;
  }
}

function readKernel(
  r: PlanReader,
  node: YamlNode | null,
  path: string,
  parent: YamlNode | null,
): PlanKernel | undefined {
  const e = r.entries(node, path, parent, KERNEL_KEYS);
  if (!isMap(node)) return undefined;
  const name = e.has('name')
    ? r.string(e.get('name')?.value, `${path}.name`, node, { re: NAME_RE, what: 'a name of letters, digits, _ . -' })
    : undefined;
  if (!e.has('name')) r.err(node, `${path}.name`, 'a kernel needs a name');
  const deb = e.get('debian');
  const tree = e.get('tree');
  if (deb && tree) {
    r.err(tree.key, path, "a kernel is either 'debian: SERIES' or 'tree: PATH', not both");
    return undefined;
  }
  if (deb) {
    for (const k of ['ref', 'kconfig', 'config_base'])
      if (e.has(k))
        r.err(
          e.get(k)?.key,
          `${path}.${k}`,
          `'${k}' applies to source-built kernels ('tree:'), not to a Debian package`,
        );
    const series = r.string(deb.value, `${path}.debian`, node, {
      re: SERIES_RE,
      what: 'a Debian kernel series like "6.12"',
    });
    return name !== undefined && series !== undefined ? { kind: 'debian', name, series } : undefined;
  }
  if (tree) {
    let t = r.string(tree.value, `${path}.tree`, node, { what: 'a path to a local kernel checkout' });
    if (t !== undefined && /^[a-z]+:\/\//.test(t)) {
      r.err(
        tree.value,
        `${path}.tree`,
        `'${t}' is a URL: give the path of a local clone (ref: picks the revision)`,
        node,
      );
      t = undefined;
    }
    const ref = e.has('ref') ? r.string(e.get('ref')?.value, `${path}.ref`, node, { what: 'a git ref' }) : undefined;
    const kconfig = e.has('kconfig')
      ? r.stringList(e.get('kconfig')?.value, `${path}.kconfig`, node, { what: 'config fragment paths' })
      : [];
    const configBase = e.has('config_base') ? readConfigBase(r, e.get('config_base')?.value, path, node) : undefined;
    if (name === undefined || t === undefined) return undefined;
    return {
      kind: 'tree',
      name,
      tree: t,
      ...(ref !== undefined ? { ref } : {}),
      kconfig,
      ...(configBase !== undefined ? { configBase } : {}),
    };
  }
  r.err(node, path, "a kernel needs 'debian: SERIES' (packaged) or 'tree: PATH' (built from source)");
  return undefined;
}

/** `config_base:`: defconfig, tinyconfig, allnoconfig (as `faultline build --base`) or a config file's path. */
function readConfigBase(
  r: PlanReader,
  node: YamlNode | null | undefined,
  path: string,
  parent: YamlNode | null,
): string | undefined {
  return r.string(node, `${path}.config_base`, parent, {
    re: /^(?:defconfig|tinyconfig|allnoconfig|.*[/.].*)$/,
    what: `one of ${CONFIG_BASES.join(', ')} or a config file's path`,
  });
}

/** `bisect:` (the culprit loop): `max_minutes:` per bisect and `runs:` of the test per step. */
function readBisect(r: PlanReader, node: YamlNode | null | undefined, root: YamlNode | null): Plan['bisect'] {
  const e = r.entries(node, 'bisect', root, BISECT_KEYS);
  if (!isMap(node)) return undefined;
  const v = (k: string): YamlNode | null | undefined => e.get(k)?.value;
  const maxMinutes = e.has('max_minutes') ? r.integer(v('max_minutes'), 'bisect.max_minutes', node, 1, 24 * 60) : 60;
  const runs = e.has('runs') ? r.integer(v('runs'), 'bisect.runs', node, 1, 100) : 1;
  return maxMinutes !== undefined && runs !== undefined ? { maxMinutes, runs } : undefined;
}

/** `programs:`: C files, resolved against the plan's directory, that exist. */
function readPrograms(r: PlanReader, node: YamlNode | null | undefined, root: YamlNode | null, file: string): string[] {
  const programs = r
    .stringList(node, 'programs', root, { re: /^[^\0]+\.c$/, what: 'C source file (NAME.c)', nonEmpty: true })
    .map((p) => resolve(dirname(file), p));
  for (const [i, p] of programs.entries()) if (!existsSync(p)) r.err(node, `programs[${i}]`, `no such file ${p}`, root);
  return programs;
}

/** `known_issues:`: known-issues YAML files, resolved against the plan's directory, that exist. */
function readKnownIssueFiles(
  r: PlanReader,
  node: YamlNode | null | undefined,
  root: YamlNode | null,
  file: string,
): string[] {
  const files = r
    .stringList(node, 'known_issues', root, { what: 'known-issues YAML file', nonEmpty: true })
    .map((p) => resolve(dirname(file), p));
  for (const [i, p] of files.entries())
    if (!existsSync(p)) r.err(node, `known_issues[${i}]`, `no such file ${p}`, root);
  return files;
}

type Entries = ReadonlyMap<string, { key: YamlNode; value: YamlNode | null }>;

/** `kernels:`: a non-empty list, names unique. */
function readKernels(r: PlanReader, e: Entries, root: YamlNode | null): PlanKernel[] {
  const kernelsNode = e.get('kernels')?.value;
  const kernels: PlanKernel[] = [];
  if (!e.has('kernels')) r.err(root, 'kernels', 'the plan needs a kernels: list');
  else if (!isSeq(kernelsNode) || kernelsNode.items.length === 0)
    r.err(kernelsNode, 'kernels', 'expected a non-empty list of kernels', root);
  else {
    kernelsNode.items.forEach((k, i) => {
      const kk = readKernel(r, k as YamlNode | null, `kernels[${i}]`, kernelsNode);
      if (!kk) return;
      if (kernels.some((o) => o.name === kk.name))
        r.err(k as YamlNode, `kernels[${i}].name`, `kernel name '${kk.name}' is used twice`, kernelsNode);
      else kernels.push(kk);
    });
  }
  return kernels;
}

/** `configs:` (source-built kernels only), or the one `default` set. */
function readConfigs(r: PlanReader, e: Entries, root: YamlNode | null, kernels: readonly PlanKernel[]): PlanConfig[] {
  const configs: PlanConfig[] = [];
  if (e.has('configs')) {
    const cn = e.get('configs')?.value;
    if (!isSeq(cn)) r.err(cn, 'configs', 'expected a list of {name, fragments}', root);
    else
      cn.items.forEach((c, i) => {
        const path = `configs[${i}]`;
        const ce = r.entries(c as YamlNode, path, cn, CONFIG_KEYS);
        if (!isMap(c)) return;
        const name = ce.has('name')
          ? r.string(ce.get('name')?.value, `${path}.name`, c, {
              re: NAME_RE,
              what: 'a name of letters, digits, _ . -',
            })
          : undefined;
        if (!ce.has('name')) r.err(c, `${path}.name`, 'a config set needs a name');
        const fragments = ce.has('fragments')
          ? r.stringList(ce.get('fragments')?.value, `${path}.fragments`, c, { what: 'config fragment paths' })
          : [];
        if (name === undefined) return;
        if (configs.some((o) => o.name === name)) r.err(c, `${path}.name`, `config name '${name}' is used twice`, cn);
        else configs.push({ name, fragments });
      });
    if (configs.length > 0 && kernels.length > 0 && kernels.every((k) => k.kind === 'debian')) {
      r.err(
        e.get('configs')?.key,
        'configs',
        "config sets apply to source-built kernels ('tree:') only, and this plan has none",
      );
    }
  }
  return configs.length > 0 ? configs : [{ name: 'default', fragments: [] }];
}

/** Parse and validate a plan; throws UsageError listing every problem as FILE:LINE:COL. */
export function parsePlan(text: string, file: string): Plan {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const r = new PlanReader(text, lines);
  for (const e of doc.errors) {
    const p = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    r.issues.push({ line: p.line, col: p.col, path: '', message: e.message.split('\n')[0] ?? e.code });
  }
  if (doc.errors.length === 0) {
    const root = doc.contents as YamlNode | null;
    const plan = planFields(r, r.entries(root, '', null, TOP_KEYS), root, file);
    if (r.issues.length === 0) return plan;
  }
  throw invalidPlan(file, r.issues);
}

/** Where the plan's guests are sized: checked together before they are defaulted (checkGuestMemory). */
function guestSizes(r: PlanReader, e: Entries, root: YamlNode | null) {
  const int = (key: string, min: number, max: number): number | undefined => {
    const node = e.get(key);
    return node ? r.integer(node.value, key, root, min, max) : undefined;
  };
  return {
    memMiB: e.has('mem') ? int('mem', 256, 1024 * 1024) : 1024,
    smp: e.has('smp') ? int('smp', 1, 256) : 2,
    hugepages2m: e.has('hugepages') ? int('hugepages', 0, 1 << 20) : 64,
    hugepages1g: e.has('hugepages_1g') ? int('hugepages_1g', 0, 1024) : 0,
  };
}

/**
 * Every field of the plan with its default. Problems go to r.issues, and a field that has one
 * gets its default here: parsePlan returns a plan only when there are none.
 */
function planFields(r: PlanReader, e: Entries, root: YamlNode | null, file: string): Plan {
  const v = (k: string): YamlNode | null | undefined => e.get(k)?.value;
  const int = (key: string, min: number, max: number, dflt: number): number =>
    (e.has(key) ? r.integer(v(key), key, root, min, max) : dflt) ?? dflt;
  const name = e.has('name')
    ? r.string(v('name'), 'name', root, { re: NAME_RE, what: 'a name of letters, digits, _ . -' })
    : basenameOf(file);
  const kernels = readKernels(r, e, root);
  const configs = readConfigs(r, e, root, kernels);
  if (!e.has('backings')) r.err(root, 'backings', `the plan needs backings: (some of ${BACKINGS.join(', ')})`);
  const backings = e.has('backings')
    ? r.stringList(v('backings'), 'backings', root, { allowed: BACKINGS, what: 'backing', nonEmpty: true })
    : [];
  const guestRam = e.has('guest_ram')
    ? r.stringList(v('guest_ram'), 'guest_ram', root, {
        allowed: GUEST_RAMS,
        what: 'guest RAM backend',
        nonEmpty: true,
      })
    : ['anon'];
  const programs = e.has('programs') ? readPrograms(r, v('programs'), root, file) : undefined;
  const knownIssues = e.has('known_issues') ? readKnownIssueFiles(r, v('known_issues'), root, file) : undefined;
  if (!e.has('suites') && !e.has('programs'))
    r.err(root, 'suites', 'the plan needs suites: (e.g. [uffd]) or programs: (your own C files)');
  const suites = e.has('suites')
    ? r.stringList(v('suites'), 'suites', root, { re: /^[a-z0-9][a-z0-9_-]*$/, what: 'suite name', nonEmpty: true })
    : [];
  const filter = e.has('filter') ? r.string(v('filter'), 'filter', root) : undefined;
  const cmdline = e.has('cmdline') ? r.string(v('cmdline'), 'cmdline', root) : undefined;
  const bisect = e.has('bisect') ? readBisect(r, v('bisect'), root) : undefined;
  const timeouts = readTimeouts(r, e, root, suites);
  const sizes = guestSizes(r, e, root);
  checkGuestMemory(r, e, root, { ...sizes, backings: backings.filter(isBacking) });
  return {
    name: name ?? '',
    kernels,
    configs,
    backings: backings.filter(isBacking),
    guestRam: guestRam.filter(isGuestRam),
    suites,
    repeat: int('repeat', 1, 100, 1),
    quick: (e.has('quick') ? r.boolean(v('quick'), 'quick', root) : false) ?? false,
    timeouts,
    bootTimeoutSec: int('boot_timeout', 10, 7200, 180),
    memMiB: sizes.memMiB ?? 1024,
    smp: sizes.smp ?? 2,
    hugepages2m: sizes.hugepages2m ?? 64,
    hugepages1g: sizes.hugepages1g ?? 0,
    retries: int('retries', 0, 10, 2),
    numaNodes: int('numa', 1, 8, 1),
    ...(filter !== undefined ? { filter } : {}),
    ...(cmdline !== undefined ? { cmdline } : {}),
    ...(programs !== undefined ? { programs } : {}),
    ...(knownIssues !== undefined ? { knownIssues } : {}),
    ...(bisect !== undefined ? { bisect } : {}),
  };
}

const isBacking = (s: string): s is Backing => (BACKINGS as readonly string[]).includes(s);
const isGuestRam = (s: string): s is GuestRam => (GUEST_RAMS as readonly string[]).includes(s);

/** `timeouts:` per suite (or `default`), in seconds; a suite the plan does not run is a mistake. */
function readTimeouts(r: PlanReader, e: Entries, root: YamlNode | null, suites: readonly string[]): Plan['timeouts'] {
  const timeouts: Plan['timeouts'] = {};
  if (!e.has('timeouts')) return timeouts;
  const tn = e.get('timeouts')?.value;
  const te = r.entries(tn, 'timeouts', root, null);
  for (const [suite, { key, value }] of te) {
    if (suite !== 'default' && suites.length > 0 && !suites.includes(suite)) {
      r.err(
        key,
        `timeouts.${suite}`,
        `timeout for suite '${suite}', which the plan does not run${suggest(suite, suites)}`,
      );
      continue;
    }
    const t = r.integer(value, `timeouts.${suite}`, tn ?? root, 1, 86_400);
    if (t !== undefined) timeouts[suite] = t;
  }
  return timeouts;
}

/** The error for a plan with problems: the first in its message, every one as FILE:LINE:COL in its detail. */
function invalidPlan(file: string, issues: readonly PlanIssue[]): UsageError {
  const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
  const detail = sorted.map((i) => `${file}:${i.line}:${i.col}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n');
  const first = sorted[0];
  return new UsageError(
    `${file}: invalid plan (${sorted.length} problem${sorted.length === 1 ? '' : 's'}); first: line ${first?.line ?? 0}: ${first ? (first.path ? `${first.path}: ` : '') + first.message : ''}`,
    detail,
  );
}

/** Cross-field checks of the guest's memory: 2 MiB pages that fit, 1 GiB pages the guest can reserve. */
function checkGuestMemory(r: PlanReader, e: Entries, root: YamlNode | null, plan: Partial<Plan>): void {
  if (plan.memMiB !== undefined && plan.hugepages2m !== undefined && plan.hugepages2m * 2 > plan.memMiB / 2) {
    r.err(
      e.get('hugepages')?.value ?? e.get('mem')?.value,
      'hugepages',
      `${plan.hugepages2m} hugepages (2 MiB) would take more than half of mem ${plan.memMiB} MiB: raise mem or lower hugepages`,
      root,
    );
  }
  const mem1g = minMemFor1gPages(plan.hugepages1g ?? 0, plan.hugepages2m ?? 0);
  if (plan.memMiB !== undefined && plan.memMiB < mem1g) {
    r.err(
      e.get('mem')?.value ?? e.get('hugepages_1g')?.value,
      'mem',
      `hugepages_1g ${plan.hugepages1g ?? 0} needs mem ${mem1g} or more (the guest reserves 1 GiB pages from whole GiBs above 4 GiB)`,
      root,
    );
  }
  if (plan.backings?.includes('hugetlb-1g') && (plan.hugepages1g ?? 0) === 0) {
    r.err(
      e.get('backings')?.key,
      'backings',
      "backing 'hugetlb-1g' needs 'hugepages_1g: N' (N >= 1) so the guest reserves 1 GiB pages",
    );
  }
}

function basenameOf(file: string): string {
  const b = file.split('/').pop() ?? 'plan';
  const n = b.replace(/\.(ya?ml|json)$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_');
  return n && NAME_RE.test(n) ? n : 'plan';
}

export async function readPlan(file: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `cannot read plan ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}: pass an existing YAML/JSON file to --plan`,
    );
  }
  const plan = parsePlan(text, file);
  // Their contents too, before any job runs: a bad one is its own FILE:LINE:COL line.
  await readKnownIssues(plan.knownIssues ?? []);
  return plan;
}

/** Stable identity of a plan: resume and merge refuse to mix different plans. */
export function planHash(plan: Plan): string {
  return sha256(stableStringify(plan)).slice(0, 16);
}

export function timeoutFor(plan: Plan, suite: string): number {
  return plan.timeouts[suite] ?? plan.timeouts['default'] ?? DEFAULT_TIMEOUT_SEC;
}
