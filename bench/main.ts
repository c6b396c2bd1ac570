/**
 * `npm run bench -- NAME [ARGS...]`: runs the benchmark bench/NAME.ts (built into dist/bench/)
 * with ARGS, as `node dist/bench/NAME.js ARGS` would. Without a known NAME it lists them and
 * exits 2: most boot QEMU guests or build kernels for many minutes, so none runs unasked.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ExitCode } from '../harness/util/errors.js';
import { PROJECT_ROOT } from '../harness/util/project.js';

interface Bench {
  name: string;
  what: string;
  usage: string;
}

/** The benchmarks in bench/, each described by the first line and the usage line of its doc comment. */
async function benchmarks(): Promise<Bench[]> {
  const dir = join(PROJECT_ROOT, 'bench');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts') && f !== 'main.ts').sort();
  return Promise.all(
    files.map(async (f) => {
      const name = f.slice(0, -'.ts'.length);
      const doc = /\/\*\*([\s\S]*?)\*\//.exec(await readFile(join(dir, f), 'utf8'))?.[1] ?? '';
      const lines = doc
        .split('\n')
        .map((l) => l.replace(/^\s*\*\s?/, '').trim())
        .filter((l) => l !== '');
      const usage =
        lines.find((l) => l.includes(`dist/bench/${name}.js`))?.replace(/^Usage:\s*/, '') ??
        `node dist/bench/${name}.js`;
      return { name, what: ((lines[0] ?? '').split(': ')[0] ?? '').replace(/:$/, ''), usage };
    }),
  );
}

const [name, ...args] = process.argv.slice(2);
const all = await benchmarks();
const bench = all.find((b) => b.name === name);
if (!bench) {
  const width = Math.max(...all.map((b) => b.name.length));
  console.error(
    `${name === undefined ? 'name a benchmark' : `no benchmark '${name}'`}: npm run bench -- NAME [ARGS...], NAME one of` +
      ' (each runs for minutes to hours; README "Performance" has the figures):\n' +
      all.map((b) => `  ${b.name.padEnd(width)}  ${b.what}\n  ${' '.repeat(width)}  ${b.usage}`).join('\n'),
  );
  process.exitCode = ExitCode.infra;
} else {
  // The benchmark reads its flags from process.argv, as when node runs it directly.
  const file = join(dirname(fileURLToPath(import.meta.url)), `${bench.name}.js`);
  process.argv = [process.argv[0] ?? 'node', file, ...args];
  await import(pathToFileURL(file).href);
}
