#!/usr/bin/env node
// @ts-check
/**
 * Dead exports in harness/ and bench/: exported symbols that no other module uses, tests
 * included as users. Runs the TypeScript checker over tsconfig.test.json, so type-only imports,
 * namespace member accesses and names destructured from `await import()` count as uses.
 *
 * Dead: a value no other file uses (drop `export`, or the code if its own file does not use it
 * either); a type no other file uses, unless another export of its own file names it (then it is
 * part of that export's signature, which callers may need to spell).
 * Allowed: exports only tests use (a module's internals tested directly); `--verbose` lists them.
 *
 * Exit 0 none, 1 dead exports (printed as file:line: name), 2 the project did not load.
 */
import ts from 'typescript';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const verbose = process.argv.includes('--verbose');
const rel = (/** @type {string} */ f) => relative(root, f);
const isTest = (/** @type {string} */ f) => /\.test\.ts$/.test(f) || /(^|\/)fixtures\//.test(rel(f));

const parsed = ts.getParsedCommandLineOfConfigFile(
  resolve(root, 'tsconfig.test.json'),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      console.error(`dead-exports: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
      process.exit(2);
    },
  },
);
if (!parsed) process.exit(2);
const program = ts.createProgram({ rootNames: parsed.fileNames, options: { ...parsed.options, noEmit: true } });
const checker = program.getTypeChecker();
const ours = program
  .getSourceFiles()
  .filter((sf) => !sf.isDeclarationFile && /^(harness|bench)\//.test(rel(sf.fileName)));

/** @param {ts.Symbol} s */
const original = (s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);

/**
 * @typedef {{ name: string, file: string, line: number, isType: boolean,
 *   users: Set<string>, ownUse: boolean, namedByExport: boolean }} Export
 * @type {Map<ts.Symbol, Export>}
 */
const exports = new Map();
for (const sf of ours) {
  const moduleSymbol = checker.getSymbolAtLocation(sf);
  if (!moduleSymbol) continue;
  for (const e of checker.getExportsOfModule(moduleSymbol)) {
    const decl = e.declarations?.[0];
    if (!decl) continue;
    const s = original(e);
    exports.set(s, {
      name: e.name,
      file: sf.fileName,
      line: sf.getLineAndCharacterOfPosition(decl.getStart(sf)).line + 1,
      isType: !(s.flags & ts.SymbolFlags.Value),
      users: new Set(),
      ownUse: false,
      namedByExport: false,
    });
  }
}
const names = new Set([...exports.values()].map((x) => x.name));

/** @param {ts.Node} n whether n sits in a top-level `export ...` statement */
function inExportedStatement(n) {
  while (n.parent && !ts.isSourceFile(n.parent)) n = n.parent;
  return ts.canHaveModifiers(n) && !!ts.getModifiers(n)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

/** @param {ts.Symbol | undefined} s @param {ts.SourceFile} sf @param {ts.Node} at */
function use(s, sf, at) {
  if (!s) return;
  const x = exports.get(original(s));
  if (!x) return;
  if (x.file !== sf.fileName) x.users.add(sf.fileName);
  else if (!original(s).declarations?.some((d) => ts.getNameOfDeclaration(d) === at)) {
    x.ownUse = true;
    if (inExportedStatement(at)) x.namedByExport = true;
  }
}

for (const sf of ours) {
  /** @param {ts.Node} node */
  const visit = (node) => {
    if (ts.isIdentifier(node) && names.has(node.text)) use(checker.getSymbolAtLocation(node), sf, node);
    // `const { name } = await import('./x.js')`: the name is a property of the module object.
    if (ts.isBindingElement(node) && ts.isObjectBindingPattern(node.parent)) {
      const key = node.propertyName ?? node.name;
      if (ts.isIdentifier(key) && names.has(key.text))
        use(checker.getTypeAtLocation(node.parent).getProperty(key.text), sf, key);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

const dead = [];
const testOnly = [];
for (const x of exports.values()) {
  const where = `${rel(x.file)}:${x.line}: ${x.name}`;
  if (x.users.size === 0) {
    if (x.isType && x.namedByExport) continue;
    dead.push(`${where}${x.ownUse ? '' : ' (unused in its own file too)'}`);
  } else if (!isTest(x.file) && [...x.users].every(isTest)) {
    testOnly.push(`${where} (${[...x.users].map(rel).join(', ')})`);
  }
}
if (verbose) console.log(`exports only tests use:\n  ${testOnly.join('\n  ')}`);
if (dead.length > 0) {
  console.error(`dead exports: no other module uses them; drop the export, or the code:\n  ${dead.join('\n  ')}`);
  process.exit(1);
}
console.log(`dead-exports: none (${exports.size} exports in ${ours.length} files)`);
