import type { JSONSchemaType } from 'ajv';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildBrokenError, errorMessage } from '../util/errors.js';
import { exists, writeJsonAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { lazyValidator, readJsonFile } from '../util/schema.js';

/**
 * Builds that failed through the tree's own fault, remembered by their input key (tree state,
 * config base, fragments, compiler, arch: everything that decides the outcome). A bisect or a
 * series meets the same broken commit again and again (every bisect of a window that holds it,
 * every series run over it); rebuilding it only to read the same compiler error costs minutes
 * each time. Only a `broken` classification is remembered: an infrastructure failure (OOM, disk
 * full, a timeout) may not happen twice. `force` builds again.
 */
export interface BrokenBuildRecord {
  /** The first compiler/linker error, as the build reported it. */
  firstError: string;
  /** The error's one-line message when it was found. */
  message: string;
  /** The log's tail and where the full log is. */
  detail: string;
  /** When the build failed (ISO 8601). */
  at: string;
}

const brokenBuildSchema: JSONSchemaType<BrokenBuildRecord> = {
  type: 'object',
  properties: {
    firstError: { type: 'string', minLength: 1 },
    message: { type: 'string', minLength: 1 },
    detail: { type: 'string' },
    at: { type: 'string', minLength: 1 },
  },
  required: ['firstError', 'message', 'detail', 'at'],
  additionalProperties: false,
};
const validateBrokenBuild = lazyValidator(brokenBuildSchema);

const brokenFile = (root: string, inputKey: string): string => join(root, 'broken', `${inputKey}.json`);

/** Remember that these inputs do not build. */
export async function rememberBrokenBuild(root: string, inputKey: string, e: BuildBrokenError): Promise<void> {
  const record: BrokenBuildRecord = {
    firstError: e.firstError,
    message: e.message,
    detail: e.detail ?? '',
    at: new Date().toISOString(),
  };
  await writeJsonAtomic(brokenFile(root, inputKey), record);
}

/**
 * The failure an earlier build of these inputs ended in, as the same BuildBrokenError, or
 * undefined. A damaged record is not a failure: the build runs and finds out again.
 */
export async function knownBrokenBuild(root: string, inputKey: string): Promise<BuildBrokenError | undefined> {
  const file = brokenFile(root, inputKey);
  if (!(await exists(file))) return undefined;
  try {
    const r = validateBrokenBuild.checked(await readJsonFile(file), file, 'broken build record');
    return new BuildBrokenError(
      `${r.message} (remembered from the build of ${r.at}; --force builds again)`,
      r.firstError,
      r.detail,
    );
  } catch (e) {
    log.warn(`build: ignoring ${file}: ${errorMessage(e)}`);
    return undefined;
  }
}

/** A successful build of these inputs (after --force, or a flaky toolchain) forgets the failure. */
export async function forgetBrokenBuild(root: string, inputKey: string): Promise<void> {
  await rm(brokenFile(root, inputKey), { force: true });
}
