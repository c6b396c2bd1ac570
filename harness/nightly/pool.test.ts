import t from 'tap';
import { runPool } from './pool.js';

/** A worker whose jobs finish when the test says; it records when each was called and let go. */
function controlled() {
  const called: number[] = [];
  const turned: number[] = [];
  const finish = new Map<number, (ok: boolean) => void>();
  const worker = async (item: number, _slot: number, turn: Promise<void>): Promise<number> => {
    called.push(item);
    await turn;
    turned.push(item);
    const ok = await new Promise<boolean>((r) => finish.set(item, r));
    if (!ok) throw new Error(`job ${item} failed`);
    return item * 10;
  };
  const settle = () => new Promise((r) => setTimeout(r, 10));
  return { called, turned, finish, worker, settle };
}

t.test('without ahead, a lane calls its next job only once the last is done', async (t) => {
  const c = controlled();
  const done = runPool([0, 1, 2], 1, c.worker);
  await c.settle();
  t.same(c.called, [0]);
  c.finish.get(0)?.(true);
  await c.settle();
  t.same(c.called, [0, 1]);
  c.finish.get(1)?.(false);
  await c.settle();
  c.finish.get(2)?.(true);
  const out = await done;
  t.same(
    out.map((o) => [o.item, o.result, o.error instanceof Error ? o.error.message : undefined]),
    [
      [0, 0, undefined],
      [1, undefined, 'job 1 failed'],
      [2, 20, undefined],
    ],
    'every outcome, a failure among them',
  );
});

t.test('with ahead, the next job starts while the lane is busy and gets its turn when the last is done', async (t) => {
  const c = controlled();
  const done = runPool([0, 1, 2], 1, c.worker, undefined, true);
  await c.settle();
  t.same(c.called, [0, 1], 'job 1 is called while job 0 runs');
  t.same(c.turned, [0], 'but its turn has not come');
  c.finish.get(0)?.(true);
  await c.settle();
  t.same(c.turned, [0, 1], 'job 0 done: job 1 goes');
  t.same(c.called, [0, 1, 2], 'and job 2 is called ahead in turn');
  c.finish.get(1)?.(false);
  await c.settle();
  t.same(c.turned, [0, 1, 2], 'a failed job still hands the lane on');
  c.finish.get(2)?.(true);
  t.same(
    (await done).map((o) => o.item),
    [0, 1, 2],
  );
});

t.test('with ahead, a lane takes no job ahead when the other lanes would go without one', async (t) => {
  const c = controlled();
  const done = runPool([0, 1, 2], 2, c.worker, undefined, true);
  await c.settle();
  t.same(c.called, [0, 1], 'two lanes, one job each: the third is not held by a busy lane');
  c.finish.get(1)?.(true);
  await c.settle();
  t.same(c.called, [0, 1, 2], 'the first lane free takes it');
  t.same(c.turned, [0, 1, 2], 'at once');
  c.finish.get(0)?.(true);
  c.finish.get(2)?.(true);
  await done;
});

t.test('an abort hands out no more jobs; those started finish', async (t) => {
  const c = controlled();
  const ac = new AbortController();
  const done = runPool([0, 1, 2, 3], 1, c.worker, ac.signal, true);
  await c.settle();
  ac.abort();
  c.finish.get(0)?.(true);
  await c.settle();
  c.finish.get(1)?.(true);
  const out = await done;
  t.same(c.called, [0, 1], 'nothing after the abort');
  t.same(
    out.map((o) => o.item),
    [0, 1],
  );
});
