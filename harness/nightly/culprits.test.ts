/**
 * The culprit loop's budget (plan `bisect: max_minutes:`): no step starts once it is spent, and a
 * step that ends past it gives no verdict. The inner tester here stands for the revision tester
 * (build + guest run, whose own timeouts testerOf cuts to the deadline); only the wrapper is under test.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { budgeted } from './culprits.js';
import type { StepOutcome, StepTester } from '../bisect/types.js';

const PASS: StepOutcome = { kind: 'runs', runs: [{ result: 'pass', durationMs: 1 }] };

/** A step that takes `ms`, counting its calls. */
function stepTaking(ms: number): StepTester & { calls: number } {
  const tester = {
    calls: 0,
    describe: () => 'a step of ' + String(ms) + ' ms',
    test: async (): Promise<StepOutcome> => {
      tester.calls++;
      await sleep(ms);
      return PASS;
    },
  };
  return tester;
}

t.test('a step that ends inside the budget gives its verdict', async (t) => {
  const inner = stepTaking(5);
  const out = await budgeted(inner, Date.now() + 60_000, 1).test('abc', '/nonexistent', { runs: 1, label: 'step 1' });
  t.same(out, PASS);
  t.equal(inner.calls, 1);
});

t.test('a step that ends past the budget gives no verdict', async (t) => {
  const inner = stepTaking(50);
  await t.rejects(budgeted(inner, Date.now() + 10, 1).test('abc', '/nonexistent', { runs: 1, label: 'step 3' }), {
    message: 'the bisect budget of 1 min (bisect: max_minutes) ran out during step 3',
  });
  t.equal(inner.calls, 1, 'it ran, and its outcome was dropped');
});

t.test('no step starts once the budget is spent', async (t) => {
  const inner = stepTaking(1);
  await t.rejects(budgeted(inner, Date.now() - 1, 5).test('abc', '/nonexistent', { runs: 1, label: 'good endpoint' }), {
    message: 'the bisect budget of 5 min (bisect: max_minutes) ran out before good endpoint',
  });
  t.equal(inner.calls, 0);
});
