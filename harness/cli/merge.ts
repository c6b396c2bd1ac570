import type { CommandModule } from 'yargs';
import { setVerbose } from '../util/log.js';
import { mergeNightlies } from '../nightly/merge.js';
import { checkPaths, type PathFlag } from './paths.js';
import { NIGHTLY_VIEWS } from '../report/views.js';

interface MergeArgs {
  dirs: string[];
  out?: string;
  results: string;
  'nightly-id'?: string;
  baseline?: string;
  compare: boolean;
  verbose: boolean;
}

/** The shard directories it reads, the merged nightly and the results root it writes, the baseline. */
function mergePaths(a: MergeArgs): PathFlag[] {
  return [
    ...a.dirs.map((path) => ({
      flag: 'merge',
      path,
      role: 'read-dir' as const,
      wants: 'the shard nightly directories (each with nightly.json)',
    })),
    { flag: '--out', path: a.out, role: 'write-dir', wants: 'a writable merged nightly directory (made when missing)' },
    {
      flag: '--results',
      path: a.results,
      role: 'write-dir',
      wants: 'a writable results root for the history index (made when missing)',
    },
    { flag: '--baseline', path: a.baseline, role: 'read-dir', wants: 'the nightly directory to compare with' },
  ];
}

export const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge <dirs..>',
  describe: 'combine the shard directories of one nightly into one nightly (index, compare, report)',
  builder: (y) =>
    y
      .positional('dirs', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'shard nightly directories (each with nightly.json)',
      })
      .option('out', { type: 'string', describe: 'merged nightly directory (default results/nightly/<id>-merged)' })
      .option('results', { type: 'string', default: 'results', describe: 'results root holding the history index' })
      .option('nightly-id', {
        type: 'string',
        describe: "id of the merged nightly (default: --out's directory name, else <first shard>-merged)",
      })
      .option('baseline', {
        type: 'string',
        describe: 'nightly directory to compare with (default: the previous night of the plan)',
      })
      .option('compare', { type: 'boolean', default: true, describe: 'compare with the baseline night' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false }),
  handler: async (a) => {
    if (a.verbose) setVerbose(true);
    await checkPaths(mergePaths(a));
    const out = await mergeNightlies(a.dirs, {
      views: NIGHTLY_VIEWS,
      resultsRoot: a.results,
      ...(a.out !== undefined ? { outDir: a.out } : {}),
      ...(a['nightly-id'] !== undefined ? { nightlyId: a['nightly-id'] } : {}),
      ...(a.baseline !== undefined ? { baseline: a.baseline } : {}),
      compare: a.compare,
    });
    process.exit(out.exitCode);
  },
};
