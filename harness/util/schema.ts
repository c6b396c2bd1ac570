import { Ajv, type ErrorObject, type JSONSchemaType, type ValidateFunction } from 'ajv';
import { readFile } from 'node:fs/promises';
import { FaultlineError } from './errors.js';

/**
 * JSON Schema validation at the boundaries (results.json, plan, history, bisect and
 * series records). Compiling a schema costs tens of milliseconds, and every command
 * imports several of them: compile on first use so startup stays fast.
 */
const ajv = new Ajv({ strict: false, allErrors: false });

export interface LazyValidator<T> {
  (value: unknown): value is T;
  /** Errors of the last failed validation. */
  readonly errors: ErrorObject[] | null | undefined;
  /** The value as T, or a one-line error: "<origin> is not a faultline <what>: <path> <problem>". */
  checked(value: unknown, origin: string, what: string): T;
}

/**
 * Ajv's JSONSchemaType makes an optional property spell `nullable: true`, which would let a null
 * through where the type allows only absence. Optional means absent in faultline's records: drop
 * `nullable` from every property its object does not require (a required `T | null` keeps it).
 */
function optionalMeansAbsent(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(optionalMeansAbsent);
  if (typeof schema !== 'object' || schema === null) return schema;
  const s = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, optionalMeansAbsent(v)]));
  const props = s['properties'];
  if (typeof props !== 'object' || props === null) return s;
  const required = new Set(Array.isArray(s['required']) ? (s['required'] as unknown[]) : []);
  const strict = Object.entries(props as Record<string, unknown>).map(([k, v]): [string, unknown] => {
    if (required.has(k) || typeof v !== 'object' || v === null || !('nullable' in v)) return [k, v];
    const { nullable: _, ...rest } = v as Record<string, unknown>;
    return [k, rest];
  });
  return { ...s, properties: Object.fromEntries(strict) };
}

/** A validator compiled on first use from a schema typed against T, so the two cannot drift apart. */
export function lazyValidator<T>(schema: JSONSchemaType<T>): LazyValidator<T> {
  let compiled: ValidateFunction | undefined;
  const validate = (value: unknown): value is T => {
    compiled ??= ajv.compile(optionalMeansAbsent(schema) as object);
    return compiled(value);
  };
  Object.defineProperty(validate, 'errors', { get: () => compiled?.errors });
  const checked = (value: unknown, origin: string, what: string): T => {
    if (validate(value)) return value;
    const e = compiled?.errors?.[0];
    const where = e ? `${e.instancePath || '/'} ${e.message ?? ''}` : 'unknown error';
    throw new FaultlineError(`${origin} is not a faultline ${what}: ${where.trim()}`);
  };
  return Object.assign(validate, { checked }) as LazyValidator<T>;
}

/**
 * Read a JSON file from disk for validation: a missing file or bad JSON is one line
 * naming the path (`hint` says what the path should have been).
 */
export async function readJsonFile(path: string, hint = ''): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new FaultlineError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}${hint}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FaultlineError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The building blocks every record's schema is made of, declared once: a record module spells
 * only what is its own. Each is `as const` so JSONSchemaType checks it against the field's type.
 */
export const str = { type: 'string' } as const;
export const optStr = { type: 'string', nullable: true } as const;
export const strings = { type: 'array', items: str } as const;
export const num = { type: 'number' } as const;
export const optNum = { type: 'number', nullable: true } as const;
export const count = { type: 'integer', minimum: 0 } as const;
export const positive = { type: 'integer', minimum: 1 } as const;
export const bool = { type: 'boolean' } as const;
