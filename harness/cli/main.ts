import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode, FaultlineError } from '../util/errors.js';
import { runCommand } from './run.js';
import { nightlyCommand } from './nightly.js';
import { mergeCommand } from './merge.js';
import { historyCommand } from './history.js';
import { compareCommand } from './compare.js';
import { exportCommand } from './export.js';
import { serveCommand } from './serve.js';
import { buildCommand } from './build.js';
import { bisectCommand } from './bisect.js';
import { seriesCommand } from './series.js';
// Each command lives in its own module; register new ones here.

function fail(e: unknown): never {
  if (e instanceof FaultlineError) {
    process.stderr.write(`faultline: ${e.message}\n`);
    if (e.detail) process.stderr.write(`${e.detail}\n`);
    process.exit(e.exitCode);
  }
  process.stderr.write(`faultline: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(ExitCode.infra);
}

process.on('unhandledRejection', fail);

await yargs(hideBin(process.argv))
  .scriptName('faultline')
  .usage('$0 <command> [options]\n\nBoots QEMU guests and runs userfaultfd / hugetlb / shmem tests on chosen kernels.')
  .command(runCommand)
  .command(nightlyCommand)
  .command(mergeCommand)
  .command(historyCommand)
  .command(compareCommand)
  .command(exportCommand)
  .command(serveCommand)
  .command(buildCommand)
  .command(bisectCommand)
  .command(seriesCommand)
  .demandCommand(1, 'name a command: faultline run (see --help)')
  .strict()
  .recommendCommands()
  .fail((msg, err) => {
    if (err) fail(err);
    process.stderr.write(`faultline: ${msg}\n(see faultline --help)\n`);
    process.exit(ExitCode.infra);
  })
  .help()
  .wrap(Math.min(110, process.stdout.columns || 100))
  .parseAsync()
  .catch(fail);
