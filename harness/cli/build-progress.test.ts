/**
 * The build's progress display: the CLI's terminal line, fed the make output of a real build
 * (harness/kernel/fixtures/build-broken.log), and the plain and off modes the kernel keeps.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { progressOf } from '../kernel/build-progress.js';
import { buildProgress } from './build-progress.js';

const makeLines = (await readFile(join(import.meta.dirname, '..', 'kernel', 'fixtures', 'build-broken.log'), 'utf8'))
  .split('\n')
  .filter(Boolean);

t.test(
  '--progress tty: one line on stderr, redrawn, with the step and make’s last line; cleared at the end',
  async (t) => {
    const mode = buildProgress('tty');
    t.type(mode, 'function', 'a display of the CLI’s own');
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string) => {
      written.push(String(chunk));
      return true;
    };
    try {
      const p = progressOf(mode, 0);
      p.begin('kernel');
      for (const l of makeLines) p.line(l);
      await new Promise((r) => setTimeout(r, 600));
      p.end();
    } finally {
      process.stderr.write = write;
    }
    const CLEAR = '\r\x1b[K';
    const lines = written.filter((w) => w.startsWith(`${CLEAR}[build `));
    t.ok(lines.length >= 2, `drawn at begin and redrawn (${lines.length} times)`);
    // The fixture's last make line is "  HOSTCC  scripts/kconfig/expr.o".
    t.ok(lines.at(-1)?.includes(' kernel '), 'with the step');
    t.ok(lines.at(-1)?.endsWith('HOSTCC scripts/kconfig/expr.o'), `and make's last line (${lines.at(-1) ?? ''})`);
    t.equal(written.filter((w) => w === CLEAR).length, 1, 'the line cleared once, at the end');
  },
);

t.test('plain and off stay the kernel’s; auto without a terminal is plain', async (t) => {
  t.equal(buildProgress('plain'), 'plain');
  t.equal(buildProgress('off'), 'off');
  t.equal(buildProgress('auto'), process.stderr.isTTY ? buildProgress('auto') : 'plain');
  const p = progressOf('off', 0);
  for (const l of makeLines) p.line(l);
  t.equal(p.compiled, 0, 'HOSTCC and GEN are not compiled units');
  const cc = progressOf('off', 10);
  cc.line('  CC      mm/userfaultfd.o');
  cc.line('  CC [M]  fs/fuse/dev.o');
  t.equal(cc.compiled, 1, 'CC lines are');
});
