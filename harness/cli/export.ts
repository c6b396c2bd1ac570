import type { CommandModule } from 'yargs';
import { resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fsutil.js';
import { log } from '../util/log.js';
import { toKcidb, validateKcidb } from '../report/kcidb.js';
import { kcidbInputs, loadTarget } from '../report/export.js';
import { toMultiRunJunit, toNightlyJunit } from '../report/junit.js';
import { generateReport } from '../report/generate.js';
import { readHistory } from '../history/index.js';

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
  describe: 'export a run or nightly: --kcidb (KCIDB v4 JSON, schema-validated), --junit, --html (regenerate the report)',
  builder: (y) =>
    y
      .positional('target', { type: 'string', demandOption: true, describe: 'run dir, nightly dir, results.json, or run id under --results' })
      .option('kcidb', { type: 'boolean', default: false, describe: 'KCIDB JSON (checkouts, builds, tests with paths and numbers)' })
      .option('junit', { type: 'boolean', default: false, describe: 'junit.xml of all runs' })
      .option('html', { type: 'boolean', default: false, describe: 'regenerate the HTML report of a nightly' })
      .option('origin', { type: 'string', default: 'faultline', describe: 'KCIDB origin (your CI system\'s name, [a-z0-9_]+)' })
      .option('out', { alias: 'o', type: 'string', describe: 'output file (KCIDB/junit; default stdout) or directory (html)' })
      .option('results', { type: 'string', default: 'results', describe: 'results root' }),
  handler: async (a) => {
    const n = Number(a.kcidb) + Number(a.junit) + Number(a.html);
    if (n !== 1) throw new UsageError('export: choose exactly one of --kcidb, --junit, --html');
    const t = await loadTarget(a.target, a.results);
    let text: string;
    if (a.kcidb) {
      const data = toKcidb(kcidbInputs(t), { origin: a.origin });
      validateKcidb(data);
      log.info(`KCIDB v${data.version.major}.${data.version.minor}: ${data.checkouts.length} checkout(s), ${data.builds.length} build(s), ${data.tests.length} test(s); schema-valid`);
      if (a.out) {
        await writeJsonAtomic(a.out, data);
        return;
      }
      text = JSON.stringify(data, null, 2) + '\n';
    } else if (a.junit) {
      text = t.kind === 'nightly' ? toNightlyJunit(t.record, t.runs) : toMultiRunJunit([{ name: t.record.runId, classPrefix: 'faultline', record: t.record }]);
    } else {
      if (t.kind !== 'nightly') throw new UsageError('export --html needs a nightly directory (a single run has results.tap/junit.xml)');
      const path = await generateReport({ dir: t.dir, record: t.record, runs: t.runs, history: await readHistory(a.results), ...(a.out ? { outDir: resolve(a.out) } : {}) });
      process.stdout.write(`${path}\n`);
      return;
    }
    if (a.out) await writeFileAtomic(a.out, text);
    else process.stdout.write(text);
  },
};
