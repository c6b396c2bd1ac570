import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

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
}

export function lazyValidator<T>(schema: object): LazyValidator<T> {
  let compiled: ValidateFunction | undefined;
  const validate = (value: unknown): value is T => {
    compiled ??= ajv.compile(schema);
    return compiled(value);
  };
  Object.defineProperty(validate, 'errors', { get: () => compiled?.errors });
  return validate as LazyValidator<T>;
}
