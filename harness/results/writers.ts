import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import type { RunRecord, SubtestResult } from './types.js';

/** Views of a RunRecord: TAP 14, JUnit XML, and the terminal summary. results.json is the source. */

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
    `# faultline run ${r.runId} kernel ${r.kernel.release ?? r.kernel.path} accel ${r.qemu.accel}`,
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
    out.push(`${ok ? 'ok' : 'not ok'} ${n} - ${t.id}${directive}`);
    if (!ok || t.status === 'flaky' || t.metrics?.length) {
      const fields: Record<string, string | number | undefined> = { status: t.status, reason: t.reason };
      (t.attempts ?? []).forEach((a, i) => {
        fields[`attempt_${i + 1}`] = `${a.status}${a.reason ? `: ${a.reason}` : ''} (${a.outputFile})`;
      });
      for (const m of t.metrics ?? []) fields[m.name] = `${m.value} ${m.unit}`;
      out.push(...yamlBlock(fields, '  '));
    }
  }
  for (const s of r.splats) {
    n++;
    out.push(`not ok ${n} - kernel/${s.kind}${s.test ? ` (during ${s.test})` : ''}`);
    out.push(...yamlBlock({ title: s.title, console_line: s.line }, '  '));
  }
  if (r.infraError) {
    n++;
    out.push(`not ok ${n} - infrastructure`, ...yamlBlock({ error: r.infraError }, '  '));
  }
  return out.join('\n') + '\n';
}

// XML 1.0 forbids most control characters even escaped: they are dropped.
// eslint-disable-next-line no-control-regex
const XML_FORBIDDEN = /[\x00-\x08\x0b\x0c\x0e-\x1f]/g;

export function xmlEscape(s: string): string {
  return s
    .replace(XML_FORBIDDEN, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/**
 * One JUnit <testcase> (per-run and nightly junit.xml alike). A flaky subtest passes with
 * one <flakyFailure>/<flakyError> per failed attempt: Maven Surefire's rerun convention,
 * which Jenkins, GitLab and the JUnit dashboards read.
 */
export function junitTestcase(t: SubtestResult, classPrefix?: string): string {
  const classname = xmlEscape(`${classPrefix ? `${classPrefix}.` : ''}${t.program}${t.backing ? `.${t.backing}` : ''}`);
  const head = `    <testcase classname="${classname}" name="${xmlEscape(t.id)}" time="${((t.durationMs ?? 0) / 1000).toFixed(3)}"`;
  const reason = xmlEscape(t.reason ?? '');
  const metrics = t.metrics?.length
    ? `<system-out>${xmlEscape(t.metrics.map((m) => `${m.name}=${m.value} ${m.unit}`).join('\n'))}</system-out>`
    : '';
  switch (t.status) {
    case 'pass':
      return metrics ? `${head}>${metrics}</testcase>` : `${head}/>`;
    case 'skip':
      return `${head}><skipped message="${reason}"/></testcase>`;
    case 'fail':
      return `${head}><failure message="${reason}"/>${metrics}</testcase>`;
    case 'error':
      return `${head}><error message="${reason}"/>${metrics}</testcase>`;
    case 'flaky': {
      const failed = (t.attempts ?? []).filter((a) => a.status === 'fail' || a.status === 'error');
      const flaky = failed.map(
        (a) =>
          `<${a.status === 'fail' ? 'flakyFailure' : 'flakyError'} message="${xmlEscape(a.reason ?? '')}" type="${a.status}"><system-out>${xmlEscape(a.outputFile)}</system-out></${a.status === 'fail' ? 'flakyFailure' : 'flakyError'}>`,
      );
      return `${head}>${flaky.join('')}${metrics}</testcase>`;
    }
  }
}

export function toJunit(r: RunRecord): string {
  const s = r.summary;
  const extra = r.splats.map(
    (sp) =>
      `    <testcase classname="kernel" name="kernel/${xmlEscape(sp.kind)}"><failure message="${xmlEscape(sp.title)}">${xmlEscape(sp.excerpt)}</failure></testcase>`,
  );
  if (r.infraError)
    extra.push(
      `    <testcase classname="faultline" name="infrastructure"><error message="${xmlEscape(r.infraError)}"/></testcase>`,
    );
  const failures = s.fail + r.splats.length;
  const errors = s.error + (r.infraError ? 1 : 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="faultline" tests="${s.total + extra.length}" failures="${failures}" errors="${errors}" skipped="${s.skip}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="${xmlEscape(`faultline.${r.suites.join('+')}`)}" tests="${s.total + extra.length}" failures="${failures}" errors="${errors}" skipped="${s.skip}" timestamp="${r.startedAt}" hostname="${xmlEscape(r.guest.uname ?? 'guest')}">`,
    ...r.subtests.map((t) => junitTestcase(t)),
    ...extra,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function summaryTable(r: RunRecord): string {
  const rows = r.subtests.map((t) => [t.id, t.status.toUpperCase(), t.reason ?? '']);
  const w0 = Math.max(4, ...rows.map((x) => (x[0] ?? '').length));
  const lines = rows.map(
    ([id, st, why]) => `${(id ?? '').padEnd(w0)}  ${(st ?? '').padEnd(5)}  ${(why ?? '').slice(0, 100)}`,
  );
  const s = r.summary;
  const head = `faultline run ${r.runId}: kernel ${r.kernel.release ?? r.kernel.path}, ${r.qemu.accel}, ${r.qemu.smp} vCPU, ${r.qemu.memMiB} MiB`;
  const splats = r.splats.map(
    (sp) =>
      `KERNEL ${sp.kind.toUpperCase()}${sp.subtest ? ` during ${sp.subtest}` : sp.test ? ` during ${sp.test}` : ''}: ${sp.title}`,
  );
  const flaky = r.subtests.filter((t) => t.status === 'flaky').map((t) => `FLAKY ${t.id}: ${t.reason ?? ''}`);
  // Program lines only for failures no subtest shows (a subtest's own line says it better).
  const shown = new Set(r.subtests.filter((t) => t.status !== 'pass' && t.status !== 'skip').map((t) => t.program));
  const progs = r.programs
    .filter((p) => p.purpose !== 'retry' && (p.status === 'error' || p.status === 'fail') && !shown.has(p.program))
    .map(
      (p) => `program ${p.program}${p.backing ? ` (${p.backing})` : ''}: ${p.status.toUpperCase()} ${p.reason ?? ''}`,
    );
  const boots = (r.guest.boots ?? 1) > 1 ? `; guest booted ${r.guest.boots ?? 1} times` : '';
  const tail = `${s.total} subtests: ${s.pass} pass, ${s.fail} fail, ${s.skip} skip, ${s.error} error, ${s.flaky} flaky; ${r.splats.length} kernel splat(s)${boots}; verdict ${r.verdict.toUpperCase()} in ${(r.durationMs / 1000).toFixed(1)} s`;
  return [
    head,
    '',
    ...lines,
    '',
    ...progs,
    ...flaky,
    ...splats,
    ...(r.infraError ? [`INFRASTRUCTURE ERROR: ${r.infraError}`] : []),
    tail,
    '',
  ].join('\n');
}

/** Write results.json, results.tap and junit.xml (each atomically). */
export async function writeRunOutputs(dir: string, r: RunRecord): Promise<void> {
  await writeFileAtomic(join(dir, 'results.tap'), toTap(r));
  await writeFileAtomic(join(dir, 'junit.xml'), toJunit(r));
  // results.json last: its presence marks a complete run directory.
  await writeJsonAtomic(join(dir, 'results.json'), r);
}
