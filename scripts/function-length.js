#!/usr/bin/env node
// @ts-check
/**
 * Function length in everything faultline wrote: every .ts under harness/ and bench/ (tests and
 * fixtures too: a 300-line test callback is as hard to read as any other function) and every .c
 * outside node_modules/ and dist/, except the upstream kernel sources listed in UPSTREAM_C. Fails
 * when a function is over 80 lines.
 *
 * A TS function's lines run from its first line to its closing brace as prettier formats them,
 * nested functions included (a closure is part of what its reader holds). A C function's lines run
 * from its header's first line to its closing brace, kernel style (that brace sits at column 0).
 *
 *   node scripts/function-length.js [--limit N]
 *
 * Exit 0 none over the limit, 1 some over it, 2 a file could not be read or parsed.
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
const limit = option('--limit', 80);

/**
 * Linux's own selftests, captured verbatim as parser fixtures: upstream's code, held to upstream's
 * style, not ours. Listed one by one so that a C file of ours cannot slip out of the check.
 */
const UPSTREAM_C = [
  'harness/selftests/fixtures/uffd-stress.6.12.117.c',
  'harness/selftests/fixtures/uffd-unit-tests.6.12.117.c',
  'harness/selftests/fixtures/userfaultfd.6.1.192.c',
];
/** Not sources: installed packages, build output, git's own store. */
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git']);

/** @param {string} dir @returns {string[]} */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    if (d.isDirectory()) return SKIP_DIRS.has(d.name) ? [] : walk(join(dir, d.name));
    return [join(dir, d.name)];
  });
}
const tsFiles = ['harness', 'bench'].flatMap((dir) => walk(join(root, dir))).filter((f) => f.endsWith('.ts'));
const cFiles = walk(root).filter(
  (f) => f.endsWith('.c') && !UPSTREAM_C.includes(relative(root, f).split(sep).join('/')),
);

/** @param {string} file */
function read(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    console.error(`function-length: cannot read ${file}: ${String(e)}`);
    process.exit(2);
  }
}

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

/** @typedef {{ line: number, name: string, lines: number }} Measured */

/** @param {string} file @param {string} text @returns {Measured[]} */
function tsFunctions(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  /** @type {Measured[]} */
  const out = [];
  /** @param {ts.Node} n */
  const visit = (n) => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
      out.push({ line: first + 1, name: nameOf(n), lines: last - first + 1 });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/**
 * C with comments, string and character literals and preprocessor lines blanked to spaces, newlines
 * kept: what is left holds only the braces that nest code, at their original line and column.
 * @param {string} text
 */
function cCode(text) {
  let out = '';
  let i = 0;
  let lineStart = true;
  const blank = (/** @type {string} */ s) => s.replace(/[^\n]/g, ' ');
  while (i < text.length) {
    const rest = text.slice(i);
    let m;
    if (lineStart && (m = /^[ \t]*#(?:[^\n\\]|\\[^])*/.exec(rest))) m = m[0];
    else if ((m = /^\/\*[^]*?\*\//.exec(rest)) || (m = /^\/\/[^\n]*/.exec(rest))) m = m[0];
    else if ((m = /^"(?:[^"\\\n]|\\[^])*"/.exec(rest)) || (m = /^'(?:[^'\\\n]|\\[^])*'/.exec(rest))) m = m[0];
    else m = null;
    if (m !== null) {
      out += blank(m);
      i += m.length;
      lineStart = m.endsWith('\n');
      continue;
    }
    const c = text[i];
    out += c;
    i++;
    if (c === '\n') lineStart = true;
    else if (c !== ' ' && c !== '\t') lineStart = false;
  }
  return out;
}

/**
 * Function definitions at file scope: a `{` at depth 0 whose declaration ends in `)` and holds no
 * `=` (that would be an initialiser). The declaration starts after the previous `;` or `}` at depth
 * 0; its first non-blank line is the header's first line.
 * @param {string} file @param {string} text @returns {Measured[]}
 */
function cFunctions(file, text) {
  const code = cCode(text);
  const lineAt = (/** @type {number} */ pos) => code.slice(0, pos).split('\n').length;
  /** @type {Measured[]} */
  const out = [];
  let depth = 0;
  let declStart = 0;
  /** @type {{ start: number, name: string } | null} */
  let open = null;
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (c === '{') {
      if (depth === 0) {
        const decl = code.slice(declStart, i);
        const isFunction = /\)\s*$/.test(decl) && !decl.includes('=');
        const name = /([A-Za-z_]\w*)\s*\(/.exec(decl)?.[1];
        open = isFunction && name !== undefined ? { start: declStart + decl.search(/\S/), name } : null;
      }
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth < 0) {
        console.error(`function-length: ${relative(root, file)}:${lineAt(i)}: a } closes nothing; cannot measure`);
        process.exit(2);
      }
      if (depth === 0) {
        if (open) {
          const first = lineAt(open.start);
          out.push({ line: first, name: open.name, lines: lineAt(i) - first + 1 });
        }
        open = null;
        declStart = i + 1;
      }
    } else if (c === ';' && depth === 0) declStart = i + 1;
  }
  if (depth !== 0) {
    console.error(`function-length: ${relative(root, file)}: braces do not balance; cannot measure`);
    process.exit(2);
  }
  return out;
}

/** @type {{ where: string, name: string, lines: number }[]} */
const long = [];
let measured = 0;
for (const [files, measure] of /** @type {const} */ ([
  [tsFiles, tsFunctions],
  [cFiles, cFunctions],
])) {
  for (const file of files) {
    for (const f of measure(file, read(file))) {
      measured++;
      if (f.lines > limit) long.push({ where: `${relative(root, file)}:${f.line}`, name: f.name, lines: f.lines });
    }
  }
}

long.sort((a, b) => b.lines - a.lines);
for (const f of long) console.error(`over the limit ${String(f.lines).padStart(4)}  ${f.name}  (${f.where})`);
if (long.length > 0) {
  console.error(`function-length: ${long.length} function(s) over ${limit} lines: split them along their seams`);
  process.exit(1);
}
console.log(
  `function-length: none over ${limit} lines (${measured} functions in ${tsFiles.length} TS and ${cFiles.length} C files)`,
);
