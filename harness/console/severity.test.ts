import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateRecord, parseSplatSpec } from '../bisect/spec.js';
import { readRunRecord } from '../results/record.js';
import { FIXTURE_RUNS } from '../report/fixtures/nights.js';
import { explainsDeadGuest, isFatalSplat, splatSeverity } from './severity.js';
import { detectSplats } from './splats.js';

/*
 * The severity rule is one table, and its consumers agree on it. Fed the real consoles of
 * fixtures/ (lkdtm reports provoked on real guests, see fixtures/README.md).
 */
const fixtures = join(import.meta.dirname, 'fixtures');
const splatsOf = (name: string) => detectSplats(readFileSync(join(fixtures, `${name}.console.txt`), 'utf8'));

t.test(
  'one severity table: fatal and stalls stop the run; any report but a WARN may explain a dead guest',
  async (t) => {
    const cases: [string, string][] = [
      ['lkdtm-warning', 'warning'],
      ['lkdtm-bug', 'fatal'],
      ['lkdtm-panic', 'fatal'],
      ['lkdtm-soft-lockup', 'stall'],
      ['lkdtm-hung-task', 'stall'],
      ['lkdtm-kfence', 'memory'],
      ['kasan', 'memory'],
      ['ubsan', 'memory'],
    ];
    for (const [fixture, severity] of cases) {
      const first = splatsOf(fixture)[0];
      if (first === undefined) throw new Error(`${fixture}: no splat detected`);
      t.equal(splatSeverity(first.kind), severity, `${fixture}: ${first.kind} is ${severity}`);
      t.equal(isFatalSplat(first), severity === 'fatal' || severity === 'stall', `${fixture}: stops the run or not`);
      t.equal(explainsDeadGuest(first), severity !== 'warning', `${fixture}: may explain a dead guest unless a WARN`);
    }
  },
);

t.test('a WARN bisect cannot call a kernel good when it locked up before the WARN could fire', async (t) => {
  // Finished, passing tests beside the lockup (a real run's): without the one rule, bisect counted
  // only panic, oops and BUG as fatal and called this run "no matching splat": good.
  const real = await readRunRecord(join(FIXTURE_RUNS.flaky, 'results.json'));
  const passed = real.subtests.filter((s) => s.status === 'pass');
  t.ok(passed.length > 0, 'the captured run has passing subtests');
  const spec = parseSplatSpec('WARNING');
  for (const fixture of ['lkdtm-soft-lockup', 'lkdtm-hung-task']) {
    const ev = evaluateRecord(spec, { subtests: passed, splats: splatsOf(fixture) });
    t.equal(ev.kind, 'untestable', `${fixture}: the run cannot say good (${ev.detail})`);
  }
  // A sanitizer report lets the run go on: it can still show the WARN, so its absence counts.
  t.equal(evaluateRecord(spec, { subtests: passed, splats: splatsOf('lkdtm-kfence') }).kind, 'pass');
  const warned = evaluateRecord(spec, { subtests: passed, splats: splatsOf('lkdtm-warning') });
  t.equal(warned.kind, 'fail', 'and a WARNING is what it looks for');
});
