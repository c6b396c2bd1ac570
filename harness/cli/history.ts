import type { CommandModule } from 'yargs';
import { UsageError } from '../util/errors.js';
import { log } from '../util/log.js';
import {
  nightlyEntries,
  readHistory,
  rebuildHistory,
  testHistory,
  type HistoryNightlyEntry,
} from '../history/index.js';
import { positiveInt } from './options.js';
import { checkPaths } from './paths.js';

interface HistoryArgs {
  test?: string;
  kernel?: string;
  limit: number;
  results: string;
  json: boolean;
  rebuild: boolean;
}

/** A night's culprits after its counts: each commit once, with the signals it broke. */
function culpritsLine(n: HistoryNightlyEntry): string {
  const byHash = new Map<string, string[]>();
  for (const c of n.culprits ?? []) byHash.set(c.hash, [...(byHash.get(c.hash) ?? []), c.signal]);
  return [...byHash].map(([hash, signals]) => `  culprit ${hash.slice(0, 12)}: ${signals.join(', ')}`).join('');
}

export const historyCommand: CommandModule<object, HistoryArgs> = {
  command: 'history',
  describe: "query the results index: a test's status and metrics over time (--test), or the list of nightlies",
  builder: (y) =>
    y
      .option('test', {
        alias: 't',
        type: 'string',
        describe: 'test id (e.g. uffd-unit-tests/minor/hugetlb) or a part of it',
      })
      .option('kernel', { type: 'string', describe: 'only runs of this plan kernel name or kernel release' })
      .option('limit', { type: 'number', default: 50, describe: 'newest N rows' })
      .option('results', { type: 'string', default: 'results', describe: 'results root holding index.jsonl' })
      .option('json', { type: 'boolean', default: false, describe: 'JSON lines instead of a table' })
      .option('rebuild', {
        type: 'boolean',
        default: false,
        describe: 'regenerate index.jsonl from the run and nightly directories first',
      }),
  handler: async (a) => {
    const limit = positiveInt('--limit', a.limit, 1, 1_000_000);
    // A results root that is not there yet has no history; --rebuild writes its index.
    await checkPaths([
      {
        flag: '--results',
        path: a.results,
        role: a.rebuild ? 'write-dir' : 'read-dir-or-none',
        wants: a.rebuild ? 'a writable results root' : 'the results root holding index.jsonl',
      },
    ]);
    if (a.rebuild) {
      const r = await rebuildHistory(a.results);
      log.info(
        `index rebuilt: ${r.runs} run(s), ${r.nightlies} nightly(ies)${r.skipped ? `, ${r.skipped} unreadable skipped` : ''}`,
      );
    }
    const entries = await readHistory(a.results);
    if (a.test === undefined) {
      const nights = nightlyEntries(entries).slice(-limit);
      if (a.json) for (const n of nights) process.stdout.write(JSON.stringify(n) + '\n');
      else
        for (const n of nights)
          process.stdout.write(
            `${n.startedAt}  ${n.nightlyId}  ${n.planName}${n.shard ? ` shard ${n.shard}` : ''}  ${n.complete ? '' : '(incomplete) '}jobs ${n.jobs}: ${n.verdicts.pass} pass ${n.verdicts.fail} fail ${n.verdicts.error} error  tests ${n.tests.pass}/${n.tests.pass + n.tests.fail + n.tests.error + n.tests.skip} pass${culpritsLine(n)}\n`,
          );
      if (!a.json && nights.length === 0) process.stdout.write(`no nightlies in ${a.results}/index.jsonl\n`);
      return;
    }
    const rows = testHistory(entries, a.test, { ...(a.kernel !== undefined ? { kernel: a.kernel } : {}), limit });
    if (rows.length === 0)
      throw new UsageError(
        `no results for test '${a.test}' in ${a.results}/index.jsonl (try a part of the id, or --rebuild)`,
      );
    if (a.json) {
      for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
      return;
    }
    const w = Math.max(...rows.map((r) => r.context.length));
    for (const r of rows) {
      const m = r.metrics.map(([n, v, u]) => `${n}=${v}${u}`).join(' ');
      const culprit = r.culprit
        ? `  culprit ${r.culprit.hash.slice(0, 12)} ("${r.culprit.subject}", bisected by ${r.culprit.since})`
        : '';
      process.stdout.write(
        `${r.startedAt.slice(0, 16).replace('T', ' ')}  ${r.context.padEnd(w)}  ${r.status.toUpperCase().padEnd(5)}  ${r.id}${m ? `  ${m}` : ''}  (${r.nightlyId ?? r.runId})${culprit}\n`,
      );
    }
  },
};
