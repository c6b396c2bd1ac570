/**
 * A YAML file checked by a schema typed against its record (schema.ts): the yaml package's
 * Document + LineCounter (as plan files are read) locate what the schema or a later check
 * refuses, so a bad file is one line, FILE:LINE:COL, and exit 2.
 */
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { UsageError } from './errors.js';
import type { LazyValidator } from './schema.js';

/** A parsed YAML file: its value, and where each path of it was written. */
export interface LocatedYaml {
  file: string;
  /** LINE:COL of the value at a JSON pointer path ('/issues/0/match'), or of its nearest parent; of its key with `key`. */
  at(pointer: string, key?: boolean): string;
}

/**
 * The node at a list of keys and indexes, or the deepest one that exists on the way; with `key`,
 * the last key itself rather than its value (an unknown key is about the key).
 */
function nodeAt(doc: Document, keys: readonly string[], key = false): YamlNode | null {
  let node: YamlNode | null = doc.contents;
  for (const [i, k] of keys.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === k);
      if (!pair) return node;
      const keyNode = pair.key as YamlNode;
      node = key && i === keys.length - 1 ? keyNode : ((pair.value as YamlNode | null) ?? keyNode);
    } else if (isSeq(node)) {
      const item = node.items[Number(k)] as YamlNode | null | undefined;
      if (item === undefined || item === null) return node;
      node = item;
    } else return node;
  }
  return node;
}

function where(lines: LineCounter, node: YamlNode | null): string {
  const p = lines.linePos(node?.range?.[0] ?? 0);
  return `${p.line}:${p.col}`;
}

function pointerKeys(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Parse YAML text and check it with the validator: the value as T, or a UsageError
 * "FILE:LINE:COL: <what>: <path> <problem>" (the first problem; an unknown key names the key).
 */
export function parseYamlChecked<T>(
  text: string,
  file: string,
  validate: LazyValidator<T>,
  what: string,
): { value: T; located: LocatedYaml } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const p = first.linePos?.[0] ?? lines.linePos(first.pos[0]);
    throw new UsageError(`${file}:${p.line}:${p.col}: not valid YAML: ${first.message.split('\n')[0] ?? first.code}`);
  }
  const located: LocatedYaml = { file, at: (pointer, key) => where(lines, nodeAt(doc, pointerKeys(pointer), key)) };
  const value: unknown = doc.toJS();
  if (validate(value)) return { value, located };
  const e = validate.errors?.[0];
  const extra = e?.keyword === 'additionalProperties' ? String(e.params['additionalProperty']) : undefined;
  const path = `${e?.instancePath ?? ''}${extra !== undefined ? `/${extra}` : ''}`;
  const problem =
    extra !== undefined
      ? `unknown key '${extra}'`
      : e?.keyword === 'enum'
        ? `${e.message ?? ''}: ${(e.params['allowedValues'] as unknown[]).join(', ')}`
        : (e?.message ?? 'invalid');
  throw new UsageError(`${file}:${located.at(path, extra !== undefined)}: invalid ${what}: ${path || '/'} ${problem}`);
}
