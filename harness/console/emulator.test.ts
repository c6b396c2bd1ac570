import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tcgStaleInt3 } from './emulator.js';
import { detectSplats } from './splats.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', `${name}.console.txt`), 'utf8');

t.test("a boot killed by TCG's stale int3 (a real console) is the emulator's", async (t) => {
  const splats = detectSplats(fixture('tcg-stale-int3-boot'));
  t.same(
    splats.map((s) => s.title),
    ['Oops: int3: 0000 [#1] PREEMPT SMP NOPTI', 'Oops: int3: 0000 [#2] PREEMPT SMP NOPTI'],
    'both CPUs trapped',
  );
  t.ok(tcgStaleInt3(splats), 'no int3 before RIP in the Code: bytes: not the kernel');
});

t.test('an int3 that is in memory, or any other report, is the kernel’s', async (t) => {
  const [first, ...rest] = detectSplats(fixture('tcg-stale-int3-boot'));
  if (!first) throw new Error('the fixture lost its report');
  // The same report, as it reads when the trapping byte still holds the int3.
  const inMemory = { ...first, excerpt: first.excerpt.replace('55 53 66 <90>', '55 53 cc <90>') };
  t.not(inMemory.excerpt, first.excerpt, 'the Code: line was edited');
  t.notOk(tcgStaleInt3([inMemory, ...rest]), 'an int3 in memory: a real trap');
  t.notOk(tcgStaleInt3([{ ...first, excerpt: '' }]), 'no Code: bytes at all: cannot tell, so the kernel’s');
  for (const name of ['oops', 'bug', 'panic-sysrq', 'lkdtm-exception', 'warning'])
    t.notOk(tcgStaleInt3(detectSplats(fixture(name))), `${name}: the kernel's`);
  t.notOk(tcgStaleInt3([]), 'no report: nothing to excuse');
});
