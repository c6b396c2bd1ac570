/**
 * The nightly HTML report: one self-contained static page (inline CSS and SVG, no scripts, no
 * external requests). Latency comes first as people read it: one row per uffd-lat case in human
 * units with the baseline night, the change and a trend; kernels side by side; distributions as
 * log2 histograms. Rendering is a pure function of ReportInput so it is cheap to benchmark and
 * to test; generate.ts gathers the input (baseline runs, log excerpts, history) from disk.
 */
import { nightlyContext } from '../history/index.js';
import type { Comparison, SampleComparison } from '../analysis/compare.js';
import type { RunRecord, SubtestResult } from '../results/types.js';
import type { NightlyJobState, NightlyRecord } from '../results/nightly.js';
import { latencyCases } from './latency.js';
import {
  casesById,
  renderDistributions,
  renderGlance,
  renderSideBySide,
  type GlanceGroup,
  type Side,
  type TrendPoint,
} from './latency-html.js';
import { pageHead, renderAllMetrics, renderComparison, samplesBySubtest, type ContextRecord } from './sections.js';
import { svgStatusTrend, type TrendBar } from './svg.js';
import { escapeMarkup } from '../util/markup.js';
import { renderKnownIssues } from './known-issues-html.js';
import type { KnownIssueTimeline, StaleKnownIssue } from '../analysis/known-issue-history.js';
import { renderCulprits } from './culprits-html.js';
import { accelOf } from '../results/record.js';

/** A nightly job and its run record. */
export interface JobRun {
  job: NightlyJobState;
  record: RunRecord;
}

export interface ReportRun extends JobRun {
  /** Link to the run directory, relative to the report page. */
  href: string;
  /** Log excerpts keyed by subtest id; console tail under the key "console". */
  excerpts: Map<string, string>;
}

export interface NightLink {
  id: string;
  href: string;
  startedAt: string;
}

export interface ReportInput {
  nightly: NightlyRecord;
  runs: ReportRun[];
  comparison?: Comparison;
  baselineId?: string;
  /** The baseline night's runs: its latency figures and distributions next to tonight's. */
  baseline?: { id: string; runs: readonly JobRun[] };
  trend: TrendBar[];
  /** total_p50 per night, by `${nightly context}|${case id}`. */
  caseTrends?: ReadonlyMap<string, readonly TrendPoint[]>;
  /** Since when each known issue occurs on the plan's nights (analysis/known-issue-history.ts). */
  knownSince?: ReadonlyMap<string, KnownIssueTimeline>;
  /** The known issues the plan saw that matched nothing for STALE_NIGHTS nights (staleKnownIssues). */
  staleKnown?: readonly StaleKnownIssue[];
  /** Links to the neighbouring nights of the plan and to the list of all nights. */
  nav?: { previous?: NightLink; next?: NightLink; all?: string };
  generatedAt: string;
}

type CellState = 'pass' | 'fail' | 'error' | 'flaky' | 'skip' | 'pending' | 'none';

function jobAnchor(id: string): string {
  return `job-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

function cellState(jobs: readonly NightlyJobState[], runs: ReadonlyMap<string, ReportRun>): CellState {
  if (jobs.length === 0) return 'none';
  const v = jobs.map((j) => j.verdict);
  if (v.some((x) => x === undefined)) return 'pending';
  const pass = v.filter((x) => x === 'pass').length;
  const fail = v.filter((x) => x === 'fail').length;
  const err = v.filter((x) => x === 'error').length;
  if (fail > 0 && pass > 0) return 'flaky';
  if (fail > 0) return 'fail';
  if (err > 0) return 'error';
  // A subtest that failed and then passed on a retry inside a job.
  if (jobs.some((j) => runs.get(j.id)?.record.subtests.some((t) => t.status === 'flaky'))) return 'flaky';
  const allSkipped = jobs.every((j) => {
    const r = runs.get(j.id)?.record;
    return r !== undefined && r.subtests.length > 0 && r.subtests.every((t) => t.status === 'skip');
  });
  return allSkipped ? 'skip' : 'pass';
}

function renderMatrix(input: ReportInput, byJob: ReadonlyMap<string, ReportRun>): string {
  const jobs = input.nightly.jobs;
  const rowsKey = (j: NightlyJobState): string => `${j.kernel}|${j.config}|${j.guestRam}`;
  const rows = [...new Set(jobs.map(rowsKey))];
  const backings = [...new Set(jobs.map((j) => j.backing))];
  const suites = [...new Set(jobs.map((j) => j.suite))];
  const out: string[] = [
    '<table id="matrix"><thead><tr><th rowspan="2">kernel</th><th rowspan="2">config</th><th rowspan="2">guest RAM</th>',
  ];
  for (const b of backings) out.push(`<th colspan="${suites.length}">${escapeMarkup(b)}</th>`);
  out.push('</tr><tr>');
  for (let i = 0; i < backings.length; i++) for (const s of suites) out.push(`<th>${escapeMarkup(s)}</th>`);
  out.push('</tr></thead><tbody>');
  for (const row of rows) {
    const [kernel = '', config = '', ram = ''] = row.split('|');
    out.push(`<tr><th>${escapeMarkup(kernel)}</th><td>${escapeMarkup(config)}</td><td>${escapeMarkup(ram)}</td>`);
    for (const b of backings) {
      for (const s of suites) {
        const cellJobs = jobs.filter((j) => rowsKey(j) === row && j.backing === b && j.suite === s);
        const st = cellState(cellJobs, byJob);
        const pass = cellJobs.filter((j) => j.verdict === 'pass').length;
        const label = st === 'none' ? '—' : `${pass}/${cellJobs.length}`;
        const first = cellJobs.find((j) => j.verdict !== 'pass') ?? cellJobs[0];
        // A flaky cell whose jobs all passed points at the flaky list, not at a failure.
        const href = st === 'flaky' && first?.verdict === 'pass' ? '#flaky' : first ? `#${jobAnchor(first.id)}` : '';
        const title = cellJobs.map((j) => `${j.id}: ${j.verdict ?? 'pending'}`).join('\n');
        out.push(
          `<td class="cell c-${st}" title="${escapeMarkup(title)}" data-state="${st}">${href ? `<a href="${href}">${label}</a>` : label}</td>`,
        );
      }
    }
    out.push('</tr>');
  }
  out.push('</tbody></table>');
  out.push(
    '<p class="legend"><span class="c-pass">pass</span><span class="c-fail">fail</span><span class="c-flaky">flaky (mixed over repetitions, or passed on a retry)</span><span class="c-error">infrastructure error</span><span class="c-skip">all skipped</span><span class="c-pending">pending</span></p>',
  );
  return out.join('');
}

function renderFailures(runs: readonly ReportRun[]): string {
  const bad = runs.filter((r) => r.record.verdict !== 'pass');
  const out: string[] = [`<h2 id="failures">Failures (${bad.length} job${bad.length === 1 ? '' : 's'})</h2>`];
  if (bad.length === 0) out.push('<p class="good">Every job passed.</p>');
  for (const r of bad) {
    const rec = r.record;
    out.push(
      `<details open id="${jobAnchor(r.job.id)}"><summary class="bad">${escapeMarkup(r.job.id)}: ${rec.verdict.toUpperCase()}${rec.infraError ? ' (infrastructure)' : ''}</summary>`,
    );
    out.push(
      `<p class="muted">kernel ${escapeMarkup(rec.kernel.release ?? rec.kernel.path)} · ${escapeMarkup(accelOf(rec))} · <a href="${escapeMarkup(r.href)}/results.json">results.json</a> · <a href="${escapeMarkup(r.href)}/console.log">console.log</a>${r.job.failedAttempts?.length ? ` · retried after an infrastructure error (${r.job.failedAttempts.length})` : ''}</p>`,
    );
    if (rec.infraError) {
      out.push(`<p class="bad">${escapeMarkup(rec.infraError.split('\n')[0] ?? '')}</p>`);
      const more = rec.infraError.split('\n').slice(1).join('\n');
      const con = r.excerpts.get('console');
      if (more || con)
        out.push(
          `<pre>${escapeMarkup([more, con ? `--- console.log (tail) ---\n${con}` : ''].filter(Boolean).join('\n'))}</pre>`,
        );
    }
    for (const t of rec.subtests.filter((x) => x.status === 'fail' || x.status === 'error')) {
      out.push(`<h4>${escapeMarkup(t.id)}: <span class="bad">${t.status}</span> ${escapeMarkup(t.reason ?? '')}</h4>`);
      const ex = r.excerpts.get(t.id);
      if (ex) out.push(`<pre>${escapeMarkup(ex)}</pre>`);
    }
    for (const p of rec.programs.filter(
      (x) =>
        (x.status === 'fail' || x.status === 'error') &&
        !rec.subtests.some((t) => t.program === x.program && (t.status === 'fail' || t.status === 'error')),
    )) {
      out.push(
        `<h4>${escapeMarkup(p.program)}${p.backing ? ` (${escapeMarkup(p.backing)})` : ''}: <span class="bad">${p.status}</span> ${escapeMarkup(p.reason ?? '')}${p.timedOut ? ' (timed out)' : ''}</h4>`,
      );
      const ex = r.excerpts.get(`program:${p.outputFile}`);
      if (ex) out.push(`<pre>${escapeMarkup(ex)}</pre>`);
    }
    for (const s of rec.splats) {
      out.push(
        `<h4 class="bad">kernel ${escapeMarkup(s.kind)}${s.subtest ? ` during ${escapeMarkup(s.subtest)}` : s.test ? ` during ${escapeMarkup(s.test)}` : ''}: ${escapeMarkup(s.title)}</h4><pre>${escapeMarkup(s.excerpt)}</pre>`,
      );
    }
    out.push('</details>');
  }
  return out.join('');
}

function renderJobs(input: ReportInput, byJob: ReadonlyMap<string, ReportRun>): string {
  const out = [
    `<h2 id="jobs">Jobs (${input.nightly.jobs.length})</h2><details><summary>all jobs</summary><table><thead><tr><th>job</th><th>verdict</th><th>tests</th><th>duration</th><th>attempts</th><th>run</th></tr></thead><tbody>`,
  ];
  for (const j of input.nightly.jobs) {
    const r = byJob.get(j.id);
    const s = r?.record.summary;
    out.push(
      `<tr><td>${escapeMarkup(j.id)}</td><td class="c-${j.verdict ?? 'pending'}">${escapeMarkup(j.verdict ?? 'pending')}</td><td>${s ? `${s.pass}/${s.total} pass${s.fail ? `, ${s.fail} fail` : ''}${s.error ? `, ${s.error} error` : ''}` : ''}</td><td class="num">${j.durationMs !== undefined ? `${(j.durationMs / 1000).toFixed(0)} s` : ''}</td><td class="num">${j.attempts}</td><td>${r ? `<a href="${escapeMarkup(r.href)}/results.json">results</a>` : ''}</td></tr>`,
    );
  }
  out.push('</tbody></table></details>');
  return out.join('');
}

interface ContextRuns {
  key: string;
  kernel: string;
  config: string;
  guestRam: string;
  runs: JobRun[];
}

/** Runs grouped by nightly context (kernel + config + guest RAM), in the plan's order. */
function byContext(runs: readonly JobRun[]): ContextRuns[] {
  const out = new Map<string, ContextRuns>();
  for (const r of runs) {
    const key = nightlyContext(r.job.kernel, r.job.config, r.job.guestRam);
    const c = out.get(key) ?? { key, kernel: r.job.kernel, config: r.job.config, guestRam: r.job.guestRam, runs: [] };
    c.runs.push(r);
    out.set(key, c);
  }
  return [...out.values()];
}

function contextRecords(runs: readonly JobRun[]): ContextRecord[] {
  return runs.map((r) => ({ context: nightlyContext(r.job.kernel, r.job.config, r.job.guestRam), record: r.record }));
}

function contextNote(c: ContextRuns, runs: readonly ReportRun[]): string {
  const rec = c.runs[0]?.record;
  if (!rec) return '';
  const pages = runs
    .filter(
      (r) =>
        nightlyContext(r.job.kernel, r.job.config, r.job.guestRam) === c.key && latencyCases([r.record]).length > 0,
    )
    .map((r) => `<a href="${escapeMarkup(r.href)}/latency.html">${escapeMarkup(`${r.job.backing} r${r.job.rep}`)}</a>`);
  const q = rec.qemu;
  const accel = !q ? 'no guest' : q.accel === 'tcg' ? 'TCG (software emulation: not KVM figures)' : 'KVM';
  return `kernel ${escapeMarkup(rec.kernel.release ?? rec.kernel.path)} · ${accel} · ${q?.smp ?? 0} vCPU · guest clocksource ${escapeMarkup(rec.guest?.clocksource ?? 'unknown')}${pages.length ? ` · per-run pages: ${pages.join(' · ')}` : ''}`;
}

function glanceGroups(input: ReportInput): GlanceGroup[] {
  const base = new Map(byContext(input.baseline?.runs ?? []).map((c) => [c.key, c]));
  const out: GlanceGroup[] = [];
  for (const c of byContext(input.runs)) {
    const cases = latencyCases(
      c.runs.map((r) => r.record),
      input.nightly.plan.backings,
    );
    if (cases.length === 0) continue;
    const changes = new Map<string, SampleComparison>();
    for (const m of input.comparison?.metrics ?? [])
      if (m.context === c.key && m.metric === 'total_p50' && m.unit === 'ns') changes.set(m.id, m);
    const trends = new Map<string, readonly TrendPoint[]>();
    for (const x of cases) {
      const t = input.caseTrends?.get(`${c.key}|${x.id}`);
      if (t) trends.set(x.id, t);
    }
    const b = base.get(c.key);
    out.push({
      key: c.key,
      title: `${c.kernel} · config ${c.config} · guest RAM ${c.guestRam}`,
      noteHtml:
        contextNote(c, input.runs) + (input.baseline ? ` · baseline: night ${escapeMarkup(input.baseline.id)}` : ''),
      cases,
      ...(b ? { baseline: { label: 'baseline', cases: casesById(latencyCases(b.runs.map((r) => r.record))) } } : {}),
      changes,
      trends,
    });
  }
  return out;
}

/** Per config + guest RAM, every kernel of the plan as one side (plan order). */
function kernelGroups(input: ReportInput): { key: string; title: string; noteHtml: string; sides: Side[] }[] {
  const kernels = input.nightly.plan.kernels
    .map((k) => k.name)
    .filter((k) => input.runs.some((r) => r.job.kernel === k));
  if (kernels.length < 2) return [];
  const slots = new Map<string, { title: string; runs: JobRun[] }>();
  for (const r of input.runs) {
    const key = `${r.job.config}+${r.job.guestRam}`;
    const s = slots.get(key) ?? { title: `config ${r.job.config} · guest RAM ${r.job.guestRam}`, runs: [] };
    s.runs.push(r);
    slots.set(key, s);
  }
  return [...slots].map(([key, s]) => {
    const release = (k: string): string =>
      escapeMarkup(s.runs.find((r) => r.job.kernel === k)?.record.kernel.release ?? '?');
    // Which clock each kernel's figures were read with: a change across clocksources is invalid.
    const clocks = (k: string): string =>
      escapeMarkup(
        [...new Set(s.runs.filter((r) => r.job.kernel === k).map((r) => r.record.guest?.clocksource ?? 'unknown'))]
          .sort()
          .join(', '),
      );
    return {
      key,
      title: s.title,
      noteHtml: kernels.map((k) => `${escapeMarkup(k)}: kernel ${release(k)}, clocksource ${clocks(k)}`).join(' · '),
      sides: kernels.map((k) => ({
        label: k,
        cases: casesById(
          latencyCases(
            s.runs.filter((r) => r.job.kernel === k).map((r) => r.record),
            input.nightly.plan.backings,
          ),
        ),
      })),
    };
  });
}

function renderKernels(input: ReportInput, opts: { alpha: number; threshold: number }): string {
  const groups = kernelGroups(input);
  if (groups.length === 0) return '';
  return [
    '<section id="kernels"><h2>Kernel against kernel</h2>',
    '<p class="muted">The same cases on each kernel of the plan tonight; the change is each later kernel against the first.</p>',
    renderSideBySide(groups, opts),
    '<h3>Distributions, kernel against kernel</h3>',
    renderDistributions(groups.map((g) => ({ key: g.key, title: g.title, series: [...g.sides].reverse() }))),
    '</section>',
  ].join('');
}

function renderLatencySections(input: ReportInput): string {
  const opts = {
    alpha: input.comparison?.options.alpha ?? 0.05,
    threshold: input.comparison?.options.threshold ?? 0.05,
  };
  const glance = glanceGroups(input);
  return [
    '<section id="latency"><h2>Latency at a glance</h2>',
    '<p class="muted">Per-fault userfaultfd round trip (fault to resolved page) of each uffd-lat case: operation, backing, handler mode.</p>',
    renderGlance(glance, opts),
    '</section>',
    renderKernels(input, opts),
  ].join('');
}

function renderDistributionSection(input: ReportInput): string {
  const groups = glanceGroups(input).map((g) => ({
    key: g.key,
    title: g.title,
    series: [
      { label: 'tonight', cases: casesById(g.cases) },
      ...(g.baseline ? [{ label: 'baseline night', cases: g.baseline.cases }] : []),
    ],
  }));
  const body = renderDistributions(groups);
  if (!body) return '';
  return `<section id="distributions"><h2>Latency distributions</h2><p class="muted">Each case's per-fault log2 histogram, merged over its repetitions, as the share of samples per bucket${input.baseline ? '; tonight filled, the baseline night outlined' : ''}.</p>${body}</section>`;
}

function attemptsText(t: SubtestResult): string {
  return (t.attempts ?? []).map((a) => a.status).join(' → ') || 'flaky';
}

/** Subtests that failed and then passed on a retry: their own list, with every attempt's output. */
function renderFlaky(runs: readonly ReportRun[]): string {
  const rows = runs.flatMap((r) => r.record.subtests.filter((t) => t.status === 'flaky').map((t) => ({ r, t })));
  if (rows.length === 0) return '';
  const out = [
    `<section id="flaky"><h2>Flaky subtests (${rows.length})</h2><p class="muted">Failed, then passed when rerun on their own: not counted as failures (JUnit: flakyFailure; KCIDB: PASS with misc.flaky and the attempts).</p>`,
  ];
  out.push(
    '<table id="flaky-table"><thead><tr><th>job</th><th>subtest</th><th>attempts</th><th>why the failed attempt failed</th><th>outputs</th></tr></thead><tbody>',
  );
  for (const { r, t } of rows) {
    const failed = (t.attempts ?? []).find((a) => a.status === 'fail' || a.status === 'error');
    const outputs = (t.attempts ?? [])
      .map(
        (a, i) =>
          `<a href="${escapeMarkup(r.href)}/${escapeMarkup(a.outputFile)}">${i + 1}: ${escapeMarkup(a.status)}</a>`,
      )
      .join(' · ');
    out.push(
      `<tr class="c-flaky"><td>${escapeMarkup(r.job.id)}</td><td>${escapeMarkup(t.id)}</td><td>${escapeMarkup(attemptsText(t))}</td><td>${escapeMarkup(failed?.reason ?? t.reason ?? '')}</td><td>${outputs}</td></tr>`,
    );
  }
  out.push('</tbody></table></section>');
  return out.join('');
}

function renderTrends(input: ReportInput): string {
  const out: string[] = [`<h2 id="trends">Test status over the last ${input.trend.length} night(s)</h2>`];
  if (input.trend.length < 2)
    out.push('<p class="muted">Trends appear once the history holds more than one night of this plan.</p>');
  else out.push('<p class="muted">Latency trends are the sparklines in the latency table.</p>');
  out.push(svgStatusTrend(input.trend));
  return out.join('');
}

function renderNav(input: ReportInput): string {
  const nav = input.nav;
  if (!nav) return '';
  const link = (l: NightLink, rel: string, text: string): string =>
    `<a rel="${rel}" href="${escapeMarkup(l.href)}">${text} ${escapeMarkup(l.id)} (${escapeMarkup(l.startedAt.slice(0, 16).replace('T', ' '))})</a>`;
  const parts = [
    nav.previous ? link(nav.previous, 'prev', '← previous night') : '',
    nav.next ? link(nav.next, 'next', 'next night →') : '',
    nav.all ? `<a href="${escapeMarkup(nav.all)}">all nights</a>` : '',
  ].filter(Boolean);
  return parts.length ? `<nav class="nights">${parts.join('')}</nav>` : '';
}

function renderHeader(input: ReportInput): string {
  const n = input.nightly;
  const v = { pass: 0, fail: 0, error: 0, pending: 0 };
  for (const j of n.jobs) v[j.verdict ?? 'pending']++;
  const tests = { pass: 0, fail: 0, skip: 0, error: 0, flaky: 0 };
  for (const r of input.runs)
    for (const k of ['pass', 'fail', 'skip', 'error', 'flaky'] as const) tests[k] += r.record.summary[k];
  const total = tests.pass + tests.fail + tests.skip + tests.error + tests.flaky;
  return [
    `<h1>faultline nightly ${escapeMarkup(n.nightlyId)}</h1>`,
    renderNav(input),
    `<p>plan <b>${escapeMarkup(n.planName)}</b> (${escapeMarkup(n.planHash)})${n.shard ? ` · shard ${n.shard.index}/${n.shard.count}` : ''}${n.mergedFrom ? ` · merged from ${n.mergedFrom.length} shard(s)` : ''} · started ${escapeMarkup(n.startedAt)}${n.finishedAt ? ` · finished ${escapeMarkup(n.finishedAt)}` : ''} · host ${escapeMarkup(n.host.hostname)} (${n.host.cpus} CPUs, ${n.host.parallel} parallel guests)</p>`,
    `<p id="summary"><b>${n.jobs.length}</b> jobs: <span class="good">${v.pass} pass</span>, <span class="${v.fail ? 'bad' : ''}">${v.fail} fail</span>, ${v.error} infrastructure error${v.pending ? `, ${v.pending} pending` : ''} · ${total} test results: ${tests.pass} pass, ${tests.fail} fail, ${tests.flaky} flaky, ${tests.skip} skip, ${tests.error} error</p>`,
  ].join('\n');
}

export function renderReport(input: ReportInput): string {
  const byJob = new Map(input.runs.map((r) => [r.job.id, r]));
  const kernels = new Set(input.runs.map((r) => r.job.kernel)).size;
  const flaky = input.runs.some((r) => r.record.summary.flaky > 0);
  const known = input.runs.some((r) => (r.record.knownIssues ?? []).length > 0) || (input.staleKnown ?? []).length > 0;
  const links = [
    ['#matrix', 'matrix'],
    ['#latency', 'latency'],
    ...(kernels > 1 ? [['#kernels', 'kernels']] : []),
    ['#regressions', 'changes'],
    ...(input.nightly.bisects?.length ? [['#culprits', 'culprits']] : []),
    ...(flaky ? [['#flaky', 'flaky']] : []),
    ...(known ? [['#known-issues', 'known issues']] : []),
    ['#failures', 'failures'],
    ['#distributions', 'distributions'],
    ['#metrics', 'all metrics'],
    ['#trends', 'trends'],
    ['#jobs', 'jobs'],
    ['../junit.xml', 'junit.xml'],
  ];
  const samples = samplesBySubtest(contextRecords(input.runs));
  return [
    pageHead(`faultline nightly ${input.nightly.nightlyId}`),
    renderHeader(input),
    `<p>${links.map(([href, text]) => `<a href="${href ?? ''}">${text ?? ''}</a>`).join(' · ')}</p>`,
    '<h2>Matrix: kernel × backing × suite</h2>',
    renderMatrix(input, byJob),
    renderLatencySections(input),
    input.comparison
      ? renderComparison(input.comparison, input.baselineId ?? 'the previous night', samples)
      : '<h2 id="regressions">Changes</h2><p class="muted">No baseline night to compare with.</p>',
    renderCulprits(input.nightly.bisects),
    renderFlaky(input.runs),
    renderKnownIssues(
      input.runs.map((r) => ({ jobId: r.job.id, knownIssues: r.record.knownIssues })),
      input.knownSince,
      input.staleKnown,
    ),
    renderFailures(input.runs),
    renderDistributionSection(input),
    renderAllMetrics(contextRecords(input.runs), input.comparison),
    renderTrends(input),
    renderJobs(input, byJob),
    `<p class="muted">generated ${escapeMarkup(input.generatedAt)} by faultline</p>`,
    '</body></html>',
    '',
  ].join('\n');
}
