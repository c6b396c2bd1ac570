import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
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

export function lazyValidator<T>(schema: object): LazyValidator<T> {
  let compiled: ValidateFunction | undefined;
  const validate = (value: unknown): value is T => {
    compiled ??= ajv.compile(schema);
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
