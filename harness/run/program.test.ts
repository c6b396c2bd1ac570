import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sysctlSteps } from './program.js';

// The steps run here under the host's sh, on plain files standing in for /proc/sys entries.
t.test('sysctl steps set each value and the restore script puts every one back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'faultline-sysctl-'));
  const file = (name: string, value: string) => {
    writeFileSync(join(dir, name), value + '\n');
    return join(dir, name);
  };
  const hugepages = file('nr_hugepages', '64');
  const shmmax = file('shm max', '100');
  const enough = file('already', '500');
  const restore = join(dir, 'restore');
  const steps = sysctlSteps(
    [
      { path: hugepages, value: 128, atLeast: true },
      { path: shmmax, value: 268435456 },
      { path: enough, value: 128, atLeast: true },
    ],
    restore,
  );
  await execa('sh', ['-c', steps.join('; ')], { timeout: 10_000 });
  const read = (p: string) => readFileSync(p, 'utf8').trim();
  t.equal(read(hugepages), '128', 'raised to at least 128');
  t.equal(read(shmmax), '268435456', 'a path with a space is quoted');
  t.equal(read(enough), '500', 'at-least leaves a larger value alone');
  await execa('sh', [restore], { timeout: 10_000 });
  t.same([read(hugepages), read(shmmax), read(enough)], ['64', '100', '500'], 'all put back');
});
