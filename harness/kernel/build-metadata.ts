/**
 * A kernel build's metadata.json: what decided its artifacts (tree state, base, fragments,
 * compiler), what it produced, and how to reproduce it. Written last: its presence marks the
 * artifacts complete.
 */
import { join } from 'node:path';
import type { JSONSchemaType } from 'ajv';
import { selftestBuildSchema, type SelftestBuild } from '../results/selftests.js';
import { errorMessage } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { lazyValidator, readJsonFile, str } from '../util/schema.js';
import { RECIPE_VERSION, type TreeState } from './cache-key.js';
import type { CcacheStats } from './ccache.js';
import { TREE_STATE_KINDS } from './cache-key.js';

/** What metadata.json holds (validated when read back from disk). */
export interface BuildMetadata {
  recipeVersion: number;
  key: string;
  inputKey: string;
  createdAt: string;
  kernelSrc: string;
  tree: string;
  ref: string | null;
  commit: string | null;
  treeState: TreeState;
  base: string;
  fragments: { path: string; sha256: string }[];
  configHash: string;
  compiler: string;
  arch: string;
  release: string;
  jobs: number;
  durationsMs: Record<string, number>;
  ccache: CcacheStats | null;
  compileUnits: number;
  selftests: SelftestBuild | null;
  reproduce: string[];
  /** The tree's make ran in the build sandbox; absent in artifacts built before it existed. */
  sandboxed?: boolean;
}

const orNull = { type: 'null', nullable: true } as const;
const nullableStr = { anyOf: [str, orNull] } as const;
const durations = { type: 'object', required: [], additionalProperties: { type: 'number' } } as const;

const metadataSchema: JSONSchemaType<BuildMetadata> = {
  type: 'object',
  required: [
    'recipeVersion',
    'key',
    'inputKey',
    'createdAt',
    'kernelSrc',
    'tree',
    'ref',
    'commit',
    'treeState',
    'base',
    'fragments',
    'configHash',
    'compiler',
    'arch',
    'release',
    'jobs',
    'durationsMs',
    'ccache',
    'compileUnits',
    'selftests',
    'reproduce',
  ],
  properties: {
    // Artifacts of another recipe are not this build's: rebuilt.
    recipeVersion: { type: 'integer', const: RECIPE_VERSION },
    key: str,
    inputKey: str,
    createdAt: str,
    kernelSrc: str,
    tree: str,
    ref: nullableStr,
    commit: nullableStr,
    treeState: {
      type: 'object',
      required: ['kind', 'digest', 'summary'],
      properties: {
        kind: { type: 'string', enum: TREE_STATE_KINDS },
        head: { type: 'string', nullable: true },
        dirty: { type: 'boolean', nullable: true },
        digest: str,
        summary: str,
      },
    },
    base: str,
    fragments: {
      type: 'array',
      items: { type: 'object', required: ['path', 'sha256'], properties: { path: str, sha256: str } },
    },
    configHash: str,
    compiler: str,
    arch: str,
    release: str,
    jobs: { type: 'integer', minimum: 1 },
    durationsMs: durations,
    ccache: {
      anyOf: [
        {
          type: 'object',
          required: ['dir', 'hits', 'misses', 'delta'],
          properties: { dir: str, hits: { type: 'number' }, misses: { type: 'number' }, delta: durations },
        },
        orNull,
      ],
    },
    compileUnits: { type: 'integer', minimum: 0 },
    selftests: { anyOf: [selftestBuildSchema, orNull] },
    reproduce: { type: 'array', items: str },
    sandboxed: { type: 'boolean', nullable: true },
  },
};
const validateMetadata = lazyValidator<BuildMetadata>(metadataSchema);

/**
 * The metadata of complete artifacts in `dir`, or undefined: not cached, rebuild. A missing,
 * damaged or stale metadata.json (another recipe, another shape) is never an error here.
 */
export async function readArtifacts(dir: string): Promise<BuildMetadata | undefined> {
  const file = join(dir, 'metadata.json');
  let m: BuildMetadata;
  try {
    m = validateMetadata.checked(await readJsonFile(file), file, 'kernel build metadata');
  } catch (e) {
    if (await exists(file)) log.debug(`build: not reusing ${dir}: ${errorMessage(e)}`);
    return undefined;
  }
  for (const f of ['bzImage', '.config', 'System.map']) if (!(await exists(join(dir, f)))) return undefined;
  return m;
}
