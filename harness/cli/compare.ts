import type { CommandModule } from 'yargs';
import { UsageError } from '../util/errors.js';
import { ExitCode } from '../util/errors.js';
import { compareRuns, formatComparison } from '../analysis/compare.js';
import type { RunRecord } from '../results/types.js';
import { loadTarget, recordsOf, type LoadedTarget } from '../report/export.js';
import { contextMap } from '../nightly/finalize.js';
import { readHistory } from '../history/index.js';
import { knownFlakyKeys } from '../analysis/flaky.js';
import { renderCompareReport } from '../report/compare-html.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { resolve } from 'node:path';
import { guestRamContext } from '../results/record.js';
import { checkPaths } from './paths.js';

interface CompareArgs {
  a: string;
  b: string;
  results: string;
  alpha: number;
  threshold: number;
  test: string;
  json: boolean;
  html: boolean;
  out: string;
}

function kernelsOf(t: LoadedTarget): string {
  return [...new Set(recordsOf(t).map((r) => r.kernel.release ?? r.kernel.path))].join(', ');
}

/** Kernel releases when they tell the sides apart, else the night or run ids. */
function sideLabels(a: LoadedTarget, b: LoadedTarget): [string, string] {
  const ka = kernelsOf(a);
  const kb = kernelsOf(b);
  if (ka !== kb && !ka.includes(',') && !kb.includes(',')) return [ka, kb];
  const id = (t: LoadedTarget): string => (t.kind === 'nightly' ? t.record.nightlyId : t.record.runId);
  return [`A ${id(a)}`, `B ${id(b)}`];
}

function contexts(t: LoadedTarget): Map<string, string> {
  return t.kind === 'nightly' ? contextMap(t.runs) : new Map<string, string>();
}

export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare <a> <b>',
  describe:
    'compare two runs or nightlies (A = before, B = after): pass->fail, new splats, flaky tests, latency beyond noise',
  builder: (y) =>
    y
      .positional('a', {
        type: 'string',
        demandOption: true,
        describe: 'baseline: run dir, nightly dir, results.json, or run id under --results',
      })
      .positional('b', { type: 'string', demandOption: true, describe: 'the run or nightly to judge' })
      .option('results', {
        type: 'string',
        default: 'results',
        describe: 'results root (run ids, history for known-flaky tests)',
      })
      .option('alpha', { type: 'number', default: 0.05, describe: 'significance level of the metric test' })
      .option('threshold', {
        type: 'number',
        default: 0.05,
        describe: 'relative median change a significant metric must exceed to be flagged',
      })
      .option('test', { type: 'string', default: 'mann-whitney', describe: 'mann-whitney or welch' })
      .option('json', { type: 'boolean', default: false, describe: 'print the comparison as JSON' })
      .option('html', {
        type: 'boolean',
        default: false,
        describe:
          'also write the latency view of the two sides (percentiles, change with CI and p, distributions) as HTML',
      })
      .option('out', { alias: 'o', type: 'string', default: 'compare.html', describe: 'file --html writes' }),
  handler: async (a) => {
    if (!(a.alpha > 0 && a.alpha < 1)) throw new UsageError(`--alpha must be in (0, 1), got ${a.alpha}`);
    if (!(a.threshold >= 0 && a.threshold < 10))
      throw new UsageError(`--threshold must be >= 0 (0.05 = 5%), got ${a.threshold}`);
    if (a.test !== 'mann-whitney' && a.test !== 'welch')
      throw new UsageError(`--test must be mann-whitney or welch, got '${a.test}'`);
    await checkPaths([
      { flag: '--results', path: a.results, role: 'read-dir-or-none', wants: 'the results root' },
      ...(a.html
        ? [{ flag: '--out', path: a.out, role: 'write-file' as const, wants: 'a file name in a writable directory' }]
        : []),
    ]);
    const base = await loadTarget(a.a, a.results);
    const head = await loadTarget(a.b, a.results);
    const both = base.kind === 'nightly' && head.kind === 'nightly';
    const ctx = new Map([...contexts(base), ...contexts(head)]);
    const c = compareRuns(recordsOf(base), recordsOf(head), {
      alpha: a.alpha,
      threshold: a.threshold,
      test: a.test,
      ...(both ? { contextOf: (r: RunRecord) => ctx.get(r.runId) ?? guestRamContext(r) } : {}),
      ...(both && head.kind === 'nightly'
        ? {
            knownFlaky: knownFlakyKeys(await readHistory(a.results), {
              planName: head.record.planName,
              lastNights: 14,
            }),
          }
        : {}),
    });
    process.stdout.write(a.json ? JSON.stringify(c, null, 2) + '\n' : formatComparison(c) + '\n');
    if (a.html) {
      const page = renderCompareReport({
        a: base,
        b: head,
        labels: sideLabels(base, head),
        comparison: c,
        generatedAt: new Date().toISOString(),
      });
      await writeFileAtomic(a.out, page);
      process.stderr.write(`compare report: ${resolve(a.out)}\n`);
    }
    process.exitCode = c.regressed ? ExitCode.testFailure : ExitCode.ok;
  },
};
