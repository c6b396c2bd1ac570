/** What a run leaves in its directory besides console and program logs, and its terminal summary. */
import { join } from 'node:path';
import type { RunRecord } from '../results/types.js';
import { writeRunRecord } from '../results/record.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { writeLatencyReport } from './run-latency.js';
import { toJunit } from './junit.js';
import { toTap } from './tap.js';

/** The known issues a run met, each with its link: present ones first, then the ones that passed (fixed?). */
function knownIssueLines(r: RunRecord): string[] {
  return (r.knownIssues ?? []).map((k) =>
    k.state === 'present'
      ? `KNOWN ${k.id} (${k.culprit}): ${k.title} <${k.report}>: ${k.where.join(', ')}`
      : `FIXED? ${k.id}: ${k.title} <${k.report}>: passed: ${k.where.join(', ')}`,
  );
}

export function summaryTable(r: RunRecord): string {
  // A failure a known issue explains shows as KNOWN, its real status and the issue after it.
  const rows = r.subtests.map((t) =>
    t.known !== undefined && t.status !== 'pass'
      ? [t.id, 'KNOWN', `${t.known}: ${t.status}${t.reason ? `: ${t.reason}` : ''}`]
      : [t.id, t.status.toUpperCase(), t.reason ?? ''],
  );
  const w0 = Math.max(4, ...rows.map((x) => (x[0] ?? '').length));
  const lines = rows.map(
    ([id, st, why]) => `${(id ?? '').padEnd(w0)}  ${(st ?? '').padEnd(5)}  ${(why ?? '').slice(0, 100)}`,
  );
  const s = r.summary;
  const head = `faultline run ${r.runId}: kernel ${r.kernel.release ?? r.kernel.path}, ${r.qemu ? `${r.qemu.accel}, ${r.qemu.smp} vCPU, ${r.qemu.memMiB} MiB` : 'on the host, no guest'}`;
  const splats = r.splats.map(
    (sp) =>
      `${sp.known !== undefined ? `KNOWN ${sp.known}: ` : ''}KERNEL ${sp.kind.toUpperCase()}${sp.subtest ? ` during ${sp.subtest}` : sp.test ? ` during ${sp.test}` : ''}: ${sp.title}`,
  );
  const flaky = r.subtests.filter((t) => t.status === 'flaky').map((t) => `FLAKY ${t.id}: ${t.reason ?? ''}`);
  // Program lines only for failures no subtest shows (a subtest's own line says it better).
  const shown = new Set(r.subtests.filter((t) => t.status !== 'pass' && t.status !== 'skip').map((t) => t.program));
  const progs = r.programs
    .filter((p) => p.purpose !== 'retry' && (p.status === 'error' || p.status === 'fail') && !shown.has(p.program))
    .map(
      (p) => `program ${p.program}${p.backing ? ` (${p.backing})` : ''}: ${p.status.toUpperCase()} ${p.reason ?? ''}`,
    );
  const boots = (r.guest?.boots ?? 1) > 1 ? `; guest booted ${r.guest?.boots ?? 1} times` : '';
  const known = r.subtests.filter((t) => t.known !== undefined && t.status !== 'pass').length;
  const tail = `${s.total} subtests: ${s.pass} pass, ${s.fail} fail, ${s.skip} skip, ${s.error} error, ${s.flaky} flaky${known ? ` (${known} of them known issues)` : ''}; ${r.splats.length} kernel splat(s)${boots}; verdict ${r.verdict.toUpperCase()} in ${(r.durationMs / 1000).toFixed(1)} s`;
  return [
    head,
    '',
    ...lines,
    '',
    ...progs,
    ...flaky,
    ...splats,
    ...knownIssueLines(r),
    ...(r.infraError ? [`INFRASTRUCTURE ERROR: ${r.infraError}`] : []),
    tail,
    '',
  ].join('\n');
}

/** A run's views beside its results.json: latency.html and its histograms, results.tap, junit.xml (each atomically). */
export async function writeRunViews(dir: string, r: RunRecord): Promise<void> {
  await writeLatencyReport(dir, r);
  await writeFileAtomic(join(dir, 'results.tap'), toTap(r));
  await writeFileAtomic(join(dir, 'junit.xml'), toJunit(r));
}

/** A run directory's files from its record: the views, then results.json (which marks it complete). */
export async function writeRunOutputs(dir: string, r: RunRecord): Promise<void> {
  await writeRunViews(dir, r);
  await writeRunRecord(dir, r);
}
