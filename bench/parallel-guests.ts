/**
 * Parallel guests benchmark (issue 6): the same plan run with 1 guest at a time and with 2 in
 * parallel, real QEMU guests (TCG without /dev/kvm). Prints jobs/hour for each and the ratio.
 * Target on a 2-core machine: >= 1.6x. Kernel, selftests and initramfs are prepared (cached)
 * before timing so both runs measure only the guests.
 *
 *   node dist/bench/parallel-guests.js [--plan FILE] [--repeat N] [--json FILE]
 *
 * Default plan: harness/nightly/fixtures/plans/e2e.yaml (Debian 6.12, anon + shmem, quick uffd,
 * 1 vCPU per guest) with repeat 2, i.e. 4 jobs per run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPlan } from '../harness/nightly/plan.js';
import { expandJobs } from '../harness/nightly/jobs.js';
import { runNightly } from '../harness/nightly/nightly.js';
import { defaultKernelPreparer, prepareKernels, type KernelPreparer } from '../harness/nightly/kernels.js';
import { PROJECT_ROOT } from '../harness/util/project.js';
import { writeJsonAtomic } from '../harness/util/fsutil.js';
import { which } from '../harness/util/proc.js';
import { NIGHTLY_VIEWS } from '../harness/report/views.js';

function opt(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const planFile = opt('plan') ?? join(PROJECT_ROOT, 'harness', 'nightly', 'fixtures', 'plans', 'e2e.yaml');
const base = await readPlan(planFile);
const plan = { ...base, repeat: Number(opt('repeat') ?? 2) };
const jobs = expandJobs(plan);
const kvm = (await which('kvm-ok')) !== undefined || (await import('node:fs')).existsSync('/dev/kvm');

// Prepare every kernel once (cache warm), then hand the prepared result to both runs.
const prepared = await prepareKernels(plan, jobs, defaultKernelPreparer());
const cachedPreparer: KernelPreparer = async (_k, _c, buildKey) => {
  const p = prepared.get(buildKey);
  if (!p || 'error' in p) throw new Error(p && 'error' in p ? p.error : `kernel ${buildKey} not prepared`);
  return p;
};

async function measure(
  parallel: number,
): Promise<{ parallel: number; seconds: number; jobsPerHour: number; verdicts: string[] }> {
  const root = await mkdtemp(join(tmpdir(), `faultline-bench-par${parallel}-`));
  try {
    const t0 = Date.now();
    const out = await runNightly({
      views: NIGHTLY_VIEWS,
      planFile,
      plan,
      resultsRoot: root,
      parallel,
      accel: 'auto',
      kernelPreparer: cachedPreparer,
      compare: false,
      print: false,
    });
    const seconds = (Date.now() - t0) / 1000;
    return {
      parallel,
      seconds,
      jobsPerHour: (out.record.jobs.length / seconds) * 3600,
      verdicts: out.record.jobs.map((j) => j.verdict ?? 'pending'),
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

process.stderr.write(
  `plan ${plan.name}: ${jobs.length} jobs, ${plan.smp} vCPU / ${plan.memMiB} MiB per guest, ${availableParallelism()} host cores, ${kvm ? 'KVM' : 'TCG'}\n`,
);
const one = await measure(1);
const two = await measure(2);
const ratio = two.jobsPerHour / one.jobsPerHour;
const result = {
  bench: 'parallel-guests',
  jobs: jobs.length,
  hostCores: availableParallelism(),
  accel: kvm ? 'kvm' : 'tcg',
  oneGuest: one,
  twoGuests: two,
  ratio,
  target: 1.6,
  pass: ratio >= 1.6,
};
process.stdout.write(
  `1 guest : ${one.seconds.toFixed(0)} s, ${one.jobsPerHour.toFixed(1)} jobs/h (${one.verdicts.join(',')})\n` +
    `2 guests: ${two.seconds.toFixed(0)} s, ${two.jobsPerHour.toFixed(1)} jobs/h (${two.verdicts.join(',')})\n` +
    `ratio ${ratio.toFixed(2)}x (target >= 1.6x on ${availableParallelism()} cores: ${result.pass ? 'PASS' : 'FAIL'})\n`,
);
const json = opt('json');
if (json) await writeJsonAtomic(json, result);
