import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { fillCacheEntry, withLock } from './lock.js';

const dir = mkdtempSync(join(tmpdir(), 'faultline-lock-'));
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('two holders of one lock take turns; the lock is gone after', async (t) => {
  const path = join(dir, 'turns');
  const events: string[] = [];
  const holder = (name: string) =>
    withLock(path, 'the test entry', 10_000, async () => {
      events.push(`${name} in`);
      await pause(300);
      events.push(`${name} out`);
      return name;
    });
  t.same(await Promise.all([holder('a'), holder('b')]), ['a', 'b']);
  t.same(events, ['a in', 'a out', 'b in', 'b out'], 'never both inside');
  t.notOk(existsSync(path));
});

t.test("a dead owner's lock is taken over", async (t) => {
  const child = execa('true');
  const pid = child.pid;
  await child;
  const path = join(dir, 'dead');
  writeFileSync(path, `${String(pid)}\n`);
  t.equal(await withLock(path, 'the test entry', 5_000, async () => 'ran'), 'ran');
});

t.test('a live owner that holds on past the deadline: one line naming it', async (t) => {
  const path = join(dir, 'live');
  writeFileSync(path, `${process.pid}\n`);
  await t.rejects(
    withLock(path, 'the test entry', 1_000, async () => 'ran'),
    new RegExp(`the test entry is locked by pid ${process.pid} \\(.*live\\) for too long`),
  );
  t.ok(existsSync(path), "the live owner's lock is left alone");
});

t.test('two processes needing one uncached entry: filled once, both get it', async (t) => {
  process.env['FAULTLINE_CACHE'] = join(dir, 'cache');
  const file = join(dir, 'entry');
  let fills = 0;
  const entry = {
    cached: () => readFile(file, 'utf8').catch(() => undefined),
    fill: async () => {
      fills++;
      await pause(300);
      await writeFile(file, 'built');
      return 'built';
    },
  };
  const got = await Promise.all([
    fillCacheEntry('entry', 'the test entry', entry),
    fillCacheEntry('entry', 'the test entry', entry),
  ]);
  t.same(got, ['built', 'built']);
  t.equal(fills, 1, 'the second waited and found the entry filled');
});
