#!/usr/bin/env node
// @ts-check
/**
 * Function length in harness/ and bench/: lists every function over 80 lines (the aim) and fails
 * when one is over 120 (the limit). A function's lines run from its first line to its closing brace as
 * prettier formats them, nested functions included (a closure is part of what its reader holds).
 * Test files and fixtures are left out: a tap test callback is a script, not a function to hold.
 *
 *   node scripts/function-length.js [--aim N] [--limit N]
 *
 * Exit 0 none over the limit, 1 some over it, 2 a file could not be read.
 */
import ts from 'typescript';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** @param {string} name @param {number} dflt */
function option(name, dflt) {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) {
    console.error(`function-length: ${name} wants a positive whole number of lines`);
    process.exit(2);
  }
  return v;
}
const aim = option('--aim', 80);
const limit = option('--limit', 120);

/** @param {string} dir @returns {string[]} */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)],
  );
}
const files = ['harness', 'bench']
  .flatMap((dir) => walk(join(root, dir)))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.split(sep).includes('fixtures'));

/** @param {ts.Node} n the name a reader would search for */
function nameOf(n) {
  const named = /** @type {{ name?: ts.Node }} */ (n).name;
  if (named && (ts.isIdentifier(named) || ts.isStringLiteral(named) || ts.isPrivateIdentifier(named)))
    return named.text;
  if (ts.isConstructorDeclaration(n)) return 'constructor';
  const p = n.parent;
  if (ts.isVariableDeclaration(p) && ts.isIdentifier(p.name)) return p.name.text;
  if (ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) return p.name.getText();
  return '<anonymous>';
}

/** @type {{ where: string, name: string, lines: number }[]} */
const long = [];
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    console.error(`function-length: cannot read ${file}: ${String(e)}`);
    process.exit(2);
  }
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  /** @param {ts.Node} n */
  const visit = (n) => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
      const lines = last - first + 1;
      if (lines > aim) long.push({ where: `${relative(root, file)}:${first + 1}`, name: nameOf(n), lines });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
}

long.sort((a, b) => b.lines - a.lines);
const over = long.filter((f) => f.lines > limit);
for (const f of long)
  (f.lines > limit ? console.error : console.log)(
    `${f.lines > limit ? 'over the limit' : 'over the aim  '} ${String(f.lines).padStart(4)}  ${f.name}  (${f.where})`,
  );
if (over.length > 0) {
  console.error(`function-length: ${over.length} function(s) over ${limit} lines: split them along their seams`);
  process.exit(1);
}
console.log(`function-length: none over ${limit} lines, ${long.length} over the aim of ${aim} (${files.length} files)`);
