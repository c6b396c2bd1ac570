import { UsageError } from '../util/errors.js';
import type { Suite } from './types.js';
import { uffdSuite } from './uffd.js';

/** Every suite faultline knows, by name. */
const SUITES: readonly Suite[] = [uffdSuite];

export function allSuites(): readonly Suite[] {
  return SUITES;
}

export function suiteByName(name: string): Suite {
  const s = SUITES.find((x) => x.name === name);
  if (!s) throw new UsageError(`unknown suite '${name}': choose from ${SUITES.map((x) => x.name).join(', ')}`);
  return s;
}
