/** TAP 14 view of a RunRecord (results.tap in the run directory). results.json is the source. */
import { accelOf } from '../results/record.js';
import type { RunRecord } from '../results/types.js';

function yamlBlock(fields: Record<string, string | number | undefined>, indent: string): string[] {
  const lines = [`${indent}---`];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    lines.push(`${indent}${k}: ${JSON.stringify(v)}`);
  }
  lines.push(`${indent}...`);
  return lines;
}

export function toTap(r: RunRecord): string {
  const out = [
    'TAP version 14',
    `# faultline run ${r.runId} kernel ${r.kernel.release ?? r.kernel.path} accel ${accelOf(r)}`,
  ];
  const tests = r.subtests;
  out.push(`1..${tests.length + r.splats.length + (r.infraError ? 1 : 0)}`);
  let n = 0;
  for (const t of tests) {
    n++;
    // TAP has no flaky directive: a flaky test is ok (it passed in the end), with its attempts below.
    const ok = t.status === 'pass' || t.status === 'skip' || t.status === 'flaky';
    const directive =
      t.status === 'skip' ? ` # SKIP ${t.reason ?? ''}`.trimEnd() : t.status === 'flaky' ? ' # flaky' : '';
    // A failure a known issue explains is TODO: TAP's expected failure, which does not fail the run.
    const todo = !ok && t.known !== undefined ? ` # TODO known issue ${t.known}` : '';
    out.push(`${ok ? 'ok' : 'not ok'} ${n} - ${t.id}${directive}${todo}`);
    if (!ok || t.status === 'flaky' || t.metrics?.length) {
      const fields: Record<string, string | number | undefined> = {
        status: t.status,
        reason: t.reason,
        known_issue: t.known,
      };
      (t.attempts ?? []).forEach((a, i) => {
        fields[`attempt_${i + 1}`] = `${a.status}${a.reason ? `: ${a.reason}` : ''} (${a.outputFile})`;
      });
      for (const m of t.metrics ?? []) fields[m.name] = `${m.value} ${m.unit}`;
      out.push(...yamlBlock(fields, '  '));
    }
  }
  for (const s of r.splats) {
    n++;
    const todo = s.known !== undefined ? ` # TODO known issue ${s.known}` : '';
    out.push(`not ok ${n} - kernel/${s.kind}${s.test ? ` (during ${s.test})` : ''}${todo}`);
    out.push(...yamlBlock({ title: s.title, console_line: s.line }, '  '));
  }
  if (r.infraError) {
    n++;
    out.push(`not ok ${n} - infrastructure`, ...yamlBlock({ error: r.infraError }, '  '));
  }
  return out.join('\n') + '\n';
}
