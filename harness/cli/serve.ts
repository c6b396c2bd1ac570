import type { CommandModule } from 'yargs';
import { readHistory } from '../history/index.js';
import { newestReport } from '../report/nights.js';
import { serveDirectory } from '../report/serve.js';
import { positiveInt } from './options.js';
import { checkPaths } from './paths.js';

interface ServeArgs {
  dir: string;
  port: number;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve [dir]',
  describe:
    'serve reports and run directories read-only on http://127.0.0.1:PORT/: / shows the newest nightly, its report links the nights before and after (reports also open from file://)',
  builder: (y) =>
    y.positional('dir', { type: 'string', default: 'results', describe: 'directory to serve' }).option('port', {
      alias: 'p',
      type: 'number',
      default: 8765,
      describe: 'TCP port on 127.0.0.1 (0 = any free port)',
    }),
  handler: async (a) => {
    const port = positiveInt('--port', a.port, 0, 65535);
    await checkPaths([{ flag: 'serve', path: a.dir, role: 'read-dir', wants: 'the results directory to serve' }]);
    const srv = await serveDirectory(a.dir, { port });
    const newest = await newestReport(await readHistory(a.dir), a.dir);
    process.stdout.write(
      `serving ${a.dir} on ${srv.url}${newest ? ` (newest night: ${newest})` : ''} (Ctrl-C to stop)\n`,
    );
    await new Promise<void>((resolveStop) => {
      const stop = (): void => {
        void srv.close().then(resolveStop);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
