import t from 'tap';
import { readFile, rm } from 'node:fs/promises';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { withLock } from './lock.js';

const dir = mkdtempSync(join(tmpdir(), 'faultline-lock-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
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
  // Either may take the lock first (the two opens race); neither enters before the other left.
  const first = events[0]?.startsWith('a') ? 'a' : 'b';
  const second = first === 'a' ? 'b' : 'a';
  t.same(events, [`${first} in`, `${first} out`, `${second} in`, `${second} out`], 'never both inside');
  t.notOk(existsSync(path));
});

/** A lock file at `name` whose owner was a real process that has exited. */
async function deadOwnersLock(name: string): Promise<string> {
  const child = execa('true');
  const pid = child.pid;
  await child;
  const path = join(dir, name);
  writeFileSync(path, `${String(pid)}\n`);
  return path;
}

t.test("a dead owner's lock is taken over", async (t) => {
  const path = await deadOwnersLock('dead');
  t.equal(await withLock(path, 'the test entry', 5_000, async () => 'ran'), 'ran');
});

t.test("many waiters on a dead owner's lock: one at a time", async (t) => {
  const path = await deadOwnersLock('dead-many');
  let inside = 0;
  let most = 0;
  const holder = () =>
    withLock(path, 'the test entry', 20_000, async () => {
      most = Math.max(most, ++inside);
      await pause(100);
      inside--;
    });
  await Promise.all(Array.from({ length: 6 }, holder));
  t.equal(most, 1, 'never two inside');
  t.same(
    readdirSync(dir).filter((f) => f.startsWith('dead-many')),
    [],
    'no lock and nothing moved aside is left',
  );
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

t.test('two processes needing one uncached entry: filled once, both get the complete entry', async (t) => {
  const work = join(dir, 'two-processes');
  mkdirSync(work);
  const filler = join(import.meta.dirname, 'fixtures', 'lock-filler.ts');
  // process.execArgv carries the TypeScript loader tap runs this file with.
  const child = (name: string) =>
    execa(process.execPath, [...process.execArgv, filler, work, name], {
      env: { FAULTLINE_CACHE: join(work, 'cache') },
      timeout: 120_000,
    });
  const outs = await Promise.all([child('a'), child('b')]);
  const got = outs.map((o) => JSON.parse(o.stdout) as { name: string; got: string });
  const fills = (await readFile(join(work, 'fills'), 'utf8')).split('\n').filter(Boolean);
  t.equal(fills.length, 1, `filled once (fills: ${fills.join(', ')})`);
  const filler1 = fills[0] ?? '';
  const complete = `filled by ${filler1}: ${filler1}${filler1}`;
  t.equal(await readFile(join(work, 'entry', 'complete'), 'utf8'), complete, 'both parts from the one fill');
  t.same(
    got,
    [
      { name: 'a', got: complete },
      { name: 'b', got: complete },
    ],
    'both processes got the complete entry',
  );
  t.same(readdirSync(join(work, 'cache', 'locks')), [], 'the lock is gone after');
});
