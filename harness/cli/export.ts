import type { CommandModule } from 'yargs';
import { join, resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { toKcidb, validateKcidb } from '../report/kcidb.js';
import { kcidbInputs, loadTarget, type LoadedTarget } from '../report/export.js';
import { toMultiRunJunit, toNightlyJunit } from '../report/junit.js';
import { generateReport } from '../report/generate.js';
import { previousNightly, readHistory } from '../history/index.js';
import { withOwnCulpritIssues } from '../nightly/culprit-known-issues.js';
import { compareNightlies } from '../nightly/finalize.js';
import { readNightlyRecord } from '../results/nightly.js';
import type { Comparison } from '../analysis/compare.js';
import { checkPaths } from './paths.js';

/** The nightly's report as `faultline nightly` writes it: compared with the night before it, drawn next to it. */
async function exportHtml(
  t: Extract<LoadedTarget, { kind: 'nightly' }>,
  results: string,
  out: string | undefined,
): Promise<string> {
  const history = await readHistory(results);
  const prev = previousNightly(history, t.record.planName, t.record.startedAt, t.record.nightlyId);
  let comparison: Comparison | undefined;
  let baselineDir: string | undefined;
  if (prev) {
    baselineDir = join(results, prev.dir);
    const base = await readNightlyRecord(baselineDir);
    comparison = await compareNightlies(
      { dir: baselineDir, record: base },
      { runs: t.runs },
      history,
      t.record.planName,
      t.record.nightlyId,
    );
    comparison.base.runs = [base.nightlyId];
  }
  return generateReport({
    dir: t.dir,
    record: t.record,
    runs: t.runs,
    history,
    resultsRoot: results,
    ...(comparison ? { comparison } : {}),
    ...(baselineDir !== undefined ? { baselineDir } : {}),
    ...(out ? { outDir: resolve(out) } : {}),
  });
}

interface ExportArgs {
  target: string;
  kcidb: boolean;
  junit: boolean;
  html: boolean;
  origin: string;
  out?: string;
  results: string;
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export <target>',
  describe:
    'export a run or nightly: --kcidb (KCIDB v4 JSON, schema-validated), --junit, --html (regenerate the report)',
  builder: (y) =>
    y
      .positional('target', {
        type: 'string',
        demandOption: true,
        describe: 'run dir, nightly dir, results.json, or run id under --results',
      })
      .option('kcidb', {
        type: 'boolean',
        default: false,
        describe: 'KCIDB JSON (checkouts, builds, tests with paths and numbers)',
      })
      .option('junit', { type: 'boolean', default: false, describe: 'junit.xml of all runs' })
      .option('html', { type: 'boolean', default: false, describe: 'regenerate the HTML report of a nightly' })
      .option('origin', {
        type: 'string',
        default: 'faultline',
        describe: "KCIDB origin (your CI system's name, [a-z0-9_]+)",
      })
      .option('out', {
        alias: 'o',
        type: 'string',
        describe: 'output file (KCIDB/junit; default stdout) or directory (html)',
      })
      .option('results', { type: 'string', default: 'results', describe: 'results root' }),
  handler: async (a) => {
    const n = Number(a.kcidb) + Number(a.junit) + Number(a.html);
    if (n !== 1) throw new UsageError('export: choose exactly one of --kcidb, --junit, --html');
    await checkPaths([
      { flag: '--results', path: a.results, role: 'read-dir-or-none', wants: 'the results root' },
      a.html
        ? { flag: '--out', path: a.out, role: 'write-dir', wants: 'a writable directory for the report' }
        : { flag: '--out', path: a.out, role: 'write-file', wants: 'a file name in a writable directory' },
    ]);
    const t = await loadTarget(a.target, a.results);
    let text: string;
    if (a.kcidb) {
      // A nightly's own culprits are issues too, with incidents on the tests they broke (through
      // their known issues) or the metrics they slowed (from nightly.json's bisects).
      const withCulprits = t.kind === 'nightly' ? { ...t, runs: await withOwnCulpritIssues(t.dir, t.runs) } : t;
      const night =
        t.kind === 'nightly' ? { night: { nightlyId: t.record.nightlyId, bisects: t.record.bisects ?? [] } } : {};
      const data = toKcidb(kcidbInputs(withCulprits), { origin: a.origin, ...night });
      validateKcidb(data);
      log.info(
        `KCIDB v${data.version.major}.${data.version.minor}: ${data.checkouts.length} checkout(s), ${data.builds.length} build(s), ${data.tests.length} test(s); schema-valid`,
      );
      if (a.out) {
        await writeJsonAtomic(a.out, data);
        return;
      }
      text = JSON.stringify(data, null, 2) + '\n';
    } else if (a.junit) {
      text =
        t.kind === 'nightly'
          ? toNightlyJunit(t.record, t.runs)
          : toMultiRunJunit([{ name: t.record.runId, classPrefix: 'faultline', record: t.record }]);
    } else {
      if (t.kind !== 'nightly')
        throw new UsageError(
          'export --html needs a nightly directory (a single run has results.tap/junit.xml and latency.html; faultline compare A B --html compares two)',
        );
      process.stdout.write(`${await exportHtml(t, a.results, a.out)}\n`);
      return;
    }
    if (a.out) await writeFileAtomic(a.out, text);
    else process.stdout.write(text);
  },
};
