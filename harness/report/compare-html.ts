/**
 * `faultline compare A B --html`: the nightly report's latency view for any two runs or nights.
 * Status and metric changes as in the report, then every latency case of A and B side by side
 * (percentiles in human units, change with CI and p) and their distributions overlaid.
 */
import { nightlyContext } from '../history/index.js';
import type { Comparison } from '../analysis/compare.js';
import type { RunRecord } from '../results/types.js';
import type { LoadedTarget } from './export.js';
import { latencyCases } from './latency.js';
import { casesById, renderDistributions, renderSideBySide, type Side } from './latency-html.js';
import { pageHead, renderComparison, samplesBySubtest, type ContextRecord } from './sections.js';
import { escapeMarkup } from '../util/markup.js';
import { accelOf, guestRamContext } from '../results/record.js';

interface SlotRun {
  slot: string;
  title: string;
  record: RunRecord;
}

function kernelNames(t: LoadedTarget): string[] {
  return t.kind === 'nightly' ? [...new Set(t.runs.map((r) => r.job.kernel))].sort() : [];
}

/**
 * Which runs of A and B are compared with each other. Nights with the same kernels: per kernel,
 * config and guest RAM; nights of different kernels: per config and guest RAM (kernel against
 * kernel); single runs: the whole run.
 */
function slots(t: LoadedTarget, perKernel: boolean): SlotRun[] {
  if (t.kind === 'run') return [{ slot: 'run', title: 'all cases', record: t.record }];
  return t.runs.map((r) =>
    perKernel
      ? {
          slot: nightlyContext(r.job.kernel, r.job.config, r.job.guestRam),
          title: `${r.job.kernel} · config ${r.job.config} · guest RAM ${r.job.guestRam}`,
          record: r.record,
        }
      : {
          slot: `${r.job.config}+${r.job.guestRam}`,
          title: `config ${r.job.config} · guest RAM ${r.job.guestRam}`,
          record: r.record,
        },
  );
}

function describe(t: LoadedTarget): string {
  const recs = t.kind === 'run' ? [t.record] : t.runs.map((r) => r.record);
  const kernels = [...new Set(recs.map((r) => r.kernel.release ?? r.kernel.path))].join(', ');
  const accel = [...new Set(recs.map((r) => accelOf(r).toUpperCase()))].join('/');
  const clocks = [...new Set(recs.map((r) => r.guest?.clocksource ?? 'unknown'))].sort().join(', ');
  const env = `${accel} · guest clocksource ${escapeMarkup(clocks)}`;
  return t.kind === 'run'
    ? `run ${escapeMarkup(t.record.runId)} · kernel ${escapeMarkup(kernels)} · ${env}`
    : `nightly ${escapeMarkup(t.record.nightlyId)} (plan ${escapeMarkup(t.record.planName)}, ${t.runs.length} runs, started ${escapeMarkup(t.record.startedAt)}) · kernel ${escapeMarkup(kernels)} · ${env}`;
}

function contextRecordsOf(t: LoadedTarget): ContextRecord[] {
  if (t.kind === 'run') return [{ context: guestRamContext(t.record), record: t.record }];
  return t.runs.map((r) => ({ context: nightlyContext(r.job.kernel, r.job.config, r.job.guestRam), record: r.record }));
}

export function renderCompareReport(input: {
  a: LoadedTarget;
  b: LoadedTarget;
  labels: [string, string];
  comparison: Comparison;
  generatedAt: string;
}): string {
  const { a, b, comparison } = input;
  const [la, lb] = input.labels;
  const perKernel = a.kind === 'nightly' && b.kind === 'nightly' && kernelNames(a).join() === kernelNames(b).join();
  const sa = slots(a, perKernel);
  const sb = slots(b, perKernel);
  const backings = b.kind === 'nightly' ? b.record.plan.backings : [];
  const groups = [...new Map([...sb, ...sa].map((s) => [s.slot, s.title]))].map(([slot, title]) => {
    const side = (label: string, runs: SlotRun[]): Side => ({
      label,
      cases: casesById(
        latencyCases(
          runs.filter((r) => r.slot === slot).map((r) => r.record),
          backings,
        ),
      ),
    });
    return { key: slot, title, sides: [side(la, sa), side(lb, sb)] };
  });
  const opts = { alpha: comparison.options.alpha, threshold: comparison.options.threshold };
  return [
    pageHead(`faultline compare ${la} → ${lb}`),
    `<h1>faultline compare: ${escapeMarkup(la)} → ${escapeMarkup(lb)}</h1>`,
    `<p>A (before): ${describe(a)}<br>B (after): ${describe(b)}</p>`,
    '<p><a href="#latency">latency</a> · <a href="#distributions">distributions</a> · <a href="#regressions">changes</a></p>',
    '<section id="latency"><h2>Latency, A against B</h2>',
    '<p class="muted">Per-fault userfaultfd round trip of each uffd-lat case on both sides; the change is B against A.</p>',
    renderSideBySide(groups, opts),
    '</section><section id="distributions"><h2>Latency distributions</h2>',
    `<p class="muted">Per-fault log2 histograms merged over each side's repetitions: ${escapeMarkup(lb)} filled, ${escapeMarkup(la)} outlined.</p>`,
    renderDistributions(groups.map((g) => ({ key: g.key, title: g.title, series: [...g.sides].reverse() }))),
    '</section>',
    renderComparison(comparison, la, samplesBySubtest(contextRecordsOf(b))),
    `<p class="muted">generated ${escapeMarkup(input.generatedAt)} by faultline</p>`,
    '</body></html>',
    '',
  ].join('\n');
}
