/**
 * Loading what `faultline export` / `faultline compare` are pointed at: a nightly directory
 * (nightly.json), a single run directory (results.json), a results.json file, or a run/nightly id
 * under the results root.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { readRunRecord } from '../results/record.js';
import type { RunRecord } from '../results/types.js';
import { UsageError } from '../util/errors.js';
import { exists } from '../util/fsutil.js';
import {
  loadNightlyRuns,
  readNightlyRecord,
  NIGHTLY_FILE,
  type LoadedJob,
  type NightlyRecord,
} from '../results/nightly.js';
import type { KcidbRunInput } from './kcidb.js';

export type LoadedTarget =
  | { kind: 'nightly'; dir: string; record: NightlyRecord; runs: LoadedJob[] }
  | { kind: 'run'; dir: string; record: RunRecord };

async function resolveTarget(arg: string, resultsRoot: string): Promise<string> {
  const candidates = [resolve(arg), join(resolve(resultsRoot), arg), join(resolve(resultsRoot), 'nightly', arg)];
  for (const c of candidates) if (await exists(c)) return c;
  throw new UsageError(
    `'${arg}' is neither a run/nightly directory nor a run id under ${resultsRoot}: pass a directory holding results.json or nightly.json`,
  );
}

export async function loadTarget(arg: string, resultsRoot: string): Promise<LoadedTarget> {
  let path = await resolveTarget(arg, resultsRoot);
  if ((await stat(path)).isFile()) {
    if (basename(path) === NIGHTLY_FILE) path = dirname(path);
    else return { kind: 'run', dir: dirname(path), record: await readRunRecord(path) };
  }
  if (await exists(join(path, NIGHTLY_FILE))) {
    const record = await readNightlyRecord(path);
    return { kind: 'nightly', dir: path, record, runs: await loadNightlyRuns(path, record) };
  }
  if (await exists(join(path, 'results.json')))
    return { kind: 'run', dir: path, record: await readRunRecord(join(path, 'results.json')) };
  throw new UsageError(`${path} holds neither nightly.json nor results.json`);
}

export function kcidbInputs(t: LoadedTarget): KcidbRunInput[] {
  if (t.kind === 'run') return [{ record: t.record }];
  return t.runs.map((r) => {
    const k = t.record.plan.kernels.find((x) => x.name === r.job.kernel);
    return {
      record: r.record,
      kernelName: r.job.kernel,
      config: r.job.config,
      job: r.job.id,
      ...(k?.kind === 'tree' ? { tree: k.tree, ...(k.ref !== undefined ? { ref: k.ref } : {}) } : {}),
    };
  });
}

export function recordsOf(t: LoadedTarget): RunRecord[] {
  return t.kind === 'run' ? [t.record] : t.runs.map((r) => r.record);
}
