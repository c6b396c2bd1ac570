import { UsageError } from '../util/errors.js';
import type { Suite } from './types.js';
import { uffdSuite } from './uffd.js';
import { uffdLatSuite } from './uffd-lat.js';
import { uffdContractSuite } from './uffd-contract.js';
import { postcopySuite } from './postcopy.js';
import { mmSuite } from './mm.js';
import { vmtestsSuite } from './vmtests.js';

/** Every suite faultline knows, by name. */
const SUITES: readonly Suite[] = [uffdSuite, uffdLatSuite, uffdContractSuite, postcopySuite, mmSuite, vmtestsSuite];

export function allSuites(): readonly Suite[] {
  return SUITES;
}

export function suiteByName(name: string): Suite {
  const s = SUITES.find((x) => x.name === name);
  if (!s) throw new UsageError(`unknown suite '${name}': choose from ${SUITES.map((x) => x.name).join(', ')}`);
  return s;
}
