#!/usr/bin/env node
// @ts-check
/**
 * Folder cycles and layer order in harness/: the folders (harness/<folder>/...) form an import
 * graph; no folder may import a folder that imports it back, directly or around a longer loop,
 * and a folder imports only folders below it in the declared order (ORDER below). The code
 * that ships counts (tests, fixtures/ and e2e/ are left out: a test may reach across layers).
 * Every import counts, type-only and dynamic `import()` included.
 *
 * Exit 0 no cycle and the order kept, 1 cycles or arrows up the order, 2 a file could not be read.
 */
import ts from 'typescript';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const harness = join(root, 'harness');
const shipped = (/** @type {string} */ f) =>
  f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.split(sep).includes('fixtures') && !f.startsWith(`e2e${sep}`);

/** @param {string} dir @returns {string[]} paths relative to harness/ */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(join(dir, d.name)) : [relative(harness, join(dir, d.name))],
  );
}

/** folder -> imported folder -> one file that imports it */
/** @type {Map<string, Map<string, string>>} */
const graph = new Map();
for (const file of walk(harness).filter(shipped)) {
  const from = file.split(sep)[0] ?? '';
  const edges = graph.get(from) ?? /** @type {Map<string, string>} */ (new Map());
  graph.set(from, edges);
  let text;
  try {
    text = readFileSync(join(harness, file), 'utf8');
  } catch (e) {
    console.error(`folder-cycles: cannot read harness/${file}: ${String(e)}`);
    process.exit(2);
  }
  for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const target = relative(harness, resolve(harness, dirname(file), fileName));
    const to = target.split(sep)[0] ?? '';
    if (to !== from && !target.startsWith('..') && !edges.has(to)) edges.set(to, file);
  }
}

// Tarjan's strongly connected components: a component of more than one folder is a cycle.
/** @type {Map<string, number>} */ const index = new Map();
/** @type {Map<string, number>} */ const low = new Map();
/** @type {string[]} */ const stack = [];
/** @type {string[][]} */ const components = [];
/** @param {string} v */
function connect(v) {
  index.set(v, index.size);
  low.set(v, index.get(v) ?? 0);
  stack.push(v);
  for (const w of graph.get(v)?.keys() ?? []) {
    if (!index.has(w)) {
      connect(w);
      low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
    } else if (stack.includes(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
  }
  if (low.get(v) !== index.get(v)) return;
  /** @type {string[]} */ const c = [];
  for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) c.push(w);
  if (c.length > 1) components.push(c.sort());
}
for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);

if (components.length > 0) {
  console.error('folder cycles in harness/: each folder below imports another of its group, which imports it back');
  for (const c of components) {
    console.error(`  ${c.join(' <-> ')}`);
    for (const a of c)
      for (const [b, file] of graph.get(a) ?? [])
        if (c.includes(b)) console.error(`    ${a} -> ${b}  (harness/${file})`);
  }
  process.exit(1);
}

/**
 * The declared layer order, lowest first: data flows plan -> kernel -> image -> guest -> run ->
 * results -> report, and a folder imports only folders before it. A new folder must be placed.
 */
const ORDER = [
  'util',
  'stats',
  'toolchain',
  'results',
  'console',
  'vcs',
  'image',
  'ssh',
  'history',
  'analysis',
  'vm',
  'kernel',
  'selftests',
  'suites',
  'run',
  'revision',
  'bisect',
  'series',
  'nightly',
  'report',
  // Only tests and bench/ import the test kit: it may reach anything below it.
  'testkit',
  'cli',
];
/**
 * Arrows that point the wrong way today, each with what removes it. The list may only shrink:
 * an arrow gone from the code must leave the list too, and no other wrong-way arrow is allowed.
 */
/** @type {Map<string, string>} */
const WRONG_WAY = new Map([]);
const rank = new Map(ORDER.map((f, i) => [f, i]));
const problems = [];
const seenWrongWay = new Set();
for (const [from, edges] of [...graph].sort()) {
  if (!rank.has(from))
    problems.push(`harness/${from}/ is not in the layer order: add it to ORDER in scripts/folder-cycles.js`);
  for (const [to, file] of edges) {
    if ((rank.get(to) ?? -1) < (rank.get(from) ?? -1)) continue;
    const arrow = `${from} -> ${to}`;
    if (WRONG_WAY.has(arrow)) seenWrongWay.add(arrow);
    else if (rank.has(to) && rank.has(from)) problems.push(`${arrow} points up the layer order (harness/${file})`);
  }
}
for (const arrow of WRONG_WAY.keys())
  if (!seenWrongWay.has(arrow))
    problems.push(`${arrow} no longer occurs: remove it from WRONG_WAY in scripts/folder-cycles.js`);
if (problems.length > 0) {
  console.error(`folder layers in harness/ (${ORDER.join(' < ')}):`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
const edges = [...graph.values()].reduce((n, e) => n + e.size, 0);
console.log(
  `folder-cycles: none, layer order kept (${graph.size} folders, ${edges} folder imports, ${WRONG_WAY.size} wrong-way arrows left)`,
);
