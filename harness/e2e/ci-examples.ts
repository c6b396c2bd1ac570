import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../util/project.js';

/**
 * The CI examples (docs/github-actions-nightly.yml, docs/k8s-nightly-job.yaml) read as data: the
 * scripts their shard and merge steps run, with the environment, matrix and volumes around them,
 * so that the tests lint them and replay them exactly as written (never a retyped copy).
 */

export const ACTIONS_FILE = join(PROJECT_ROOT, 'docs', 'github-actions-nightly.yml');
const K8S_FILE = join(PROJECT_ROOT, 'docs', 'k8s-nightly-job.yaml');

type Obj = Record<string, unknown>;

function obj(x: unknown, what: string): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Error(`${what}: not a mapping`);
  return x as Obj;
}

function str(x: unknown, what: string): string {
  if (typeof x !== 'string') throw new Error(`${what}: not a string`);
  return x;
}

function list(x: unknown, what: string): unknown[] {
  if (!Array.isArray(x)) throw new Error(`${what}: not a list`);
  return x;
}

/** An env mapping (YAML numbers become the strings a process sees). */
function envMap(x: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (x === undefined) return out;
  for (const [k, v] of Object.entries(obj(x, what))) {
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`${what}.${k}: not a scalar`);
    out[k] = String(v);
  }
  return out;
}

export interface WorkflowStep {
  name?: string;
  uses?: string;
  run?: string;
  with: Obj;
  env: Record<string, string>;
}

export interface WorkflowJob {
  env: Record<string, string>;
  matrix: Record<string, unknown[]>;
  container?: { image: string; options?: string };
  steps: WorkflowStep[];
}

export interface Workflow {
  text: string;
  env: Record<string, string>;
  /** defaults.run.shell */
  shell?: string;
  jobs: Record<string, WorkflowJob>;
}

function readStep(x: unknown, what: string): WorkflowStep {
  const s = obj(x, what);
  return {
    ...(s['name'] !== undefined ? { name: str(s['name'], `${what}.name`) } : {}),
    ...(s['uses'] !== undefined ? { uses: str(s['uses'], `${what}.uses`) } : {}),
    ...(s['run'] !== undefined ? { run: str(s['run'], `${what}.run`) } : {}),
    with: s['with'] === undefined ? {} : obj(s['with'], `${what}.with`),
    env: envMap(s['env'], `${what}.env`),
  };
}

function readJob(x: unknown, what: string): WorkflowJob {
  const j = obj(x, what);
  const matrix: Record<string, unknown[]> = {};
  const strategy = j['strategy'] === undefined ? {} : obj(j['strategy'], `${what}.strategy`);
  if (strategy['matrix'] !== undefined)
    for (const [k, v] of Object.entries(obj(strategy['matrix'], `${what}.matrix`))) matrix[k] = list(v, `matrix.${k}`);
  const c = j['container'] === undefined ? undefined : obj(j['container'], `${what}.container`);
  return {
    env: envMap(j['env'], `${what}.env`),
    matrix,
    ...(c
      ? {
          container: {
            image: str(c['image'], `${what}.container.image`),
            ...(c['options'] !== undefined ? { options: str(c['options'], `${what}.container.options`) } : {}),
          },
        }
      : {}),
    steps: list(j['steps'], `${what}.steps`).map((s, i) => readStep(s, `${what}.steps[${i}]`)),
  };
}

export async function readWorkflow(file = ACTIONS_FILE): Promise<Workflow> {
  const text = await readFile(file, 'utf8');
  const w = obj(parse(text), file);
  const jobs: Record<string, WorkflowJob> = {};
  for (const [name, j] of Object.entries(obj(w['jobs'], 'jobs'))) jobs[name] = readJob(j, `jobs.${name}`);
  const defaults = w['defaults'] === undefined ? {} : obj(w['defaults'], 'defaults');
  const shell = defaults['run'] === undefined ? undefined : obj(defaults['run'], 'defaults.run')['shell'];
  return { text, env: envMap(w['env'], 'env'), ...(shell !== undefined ? { shell: str(shell, 'shell') } : {}), jobs };
}

/** The one step of a job whose script contains `needle` (e.g. "faultline nightly"). */
export function stepRunning(w: Workflow, job: string, needle: string): WorkflowStep {
  const steps = (w.jobs[job]?.steps ?? []).filter((s) => s.run?.includes(needle));
  if (steps.length !== 1) throw new Error(`jobs.${job}: ${steps.length} steps run '${needle}', expected 1`);
  return steps[0] as WorkflowStep;
}

/** `${{ a.b }}` replaced from a context of dotted names; any other expression is an error. */
export function expandExpressions(text: string, ctx: Record<string, string>): string {
  return text.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_m, expr: string) => {
    const v = ctx[expr];
    if (v === undefined) throw new Error(`no value for the expression \${{ ${expr} }} in the replay`);
    return v;
  });
}

export interface K8sContainer {
  image: string;
  args: string[];
  env: Record<string, string>;
  /** mountPath of each volume mount. */
  mounts: string[];
}

export interface K8sManifests {
  text: string;
  docs: Obj[];
}

export async function readK8s(file = K8S_FILE): Promise<K8sManifests> {
  const text = await readFile(file, 'utf8');
  const docs = parseAllDocuments(text).map((d, i) => obj(d.toJS(), `${file} document ${i + 1}`));
  return { text, docs };
}

/** The Job spec of a CronJob and its pod's one container. */
export function cronJobContainer(m: K8sManifests, name: string): { jobSpec: Obj; container: K8sContainer } {
  const doc = m.docs.find((d) => d['kind'] === 'CronJob' && obj(d['metadata'], 'metadata')['name'] === name);
  if (!doc) throw new Error(`no CronJob named ${name}`);
  const jobSpec = obj(obj(obj(doc['spec'], 'spec')['jobTemplate'], 'jobTemplate')['spec'], 'jobTemplate.spec');
  const pod = obj(obj(jobSpec['template'], 'template')['spec'], 'template.spec');
  const containers = list(pod['containers'], 'containers');
  if (containers.length !== 1) throw new Error(`${name}: ${containers.length} containers, expected 1`);
  const c = obj(containers[0], 'container');
  const env: Record<string, string> = {};
  for (const e of list(c['env'] ?? [], 'env')) {
    const o = obj(e, 'env entry');
    env[str(o['name'], 'env.name')] = str(o['value'], 'env.value');
  }
  return {
    jobSpec,
    container: {
      image: str(c['image'], 'image'),
      args: list(c['args'], 'args').map((a) => str(a, 'args[]')),
      env,
      mounts: list(c['volumeMounts'] ?? [], 'volumeMounts').map((v) => str(obj(v, 'mount')['mountPath'], 'mountPath')),
    },
  };
}

/** Absolute paths under the container's mount points, moved under `root` (the replay's volumes). */
export function remapMounts(text: string, mounts: readonly string[], root: string): string {
  let out = text;
  for (const m of mounts) {
    const esc = m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`(?<![\\w./-])${esc}(?=$|[/\\s"'])`, 'gm'), join(root, m));
  }
  return out;
}
