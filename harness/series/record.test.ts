import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareRuns } from '../analysis/compare.js';
import { newRunRecord } from '../results/record.js';
import type { RunRecord } from '../results/types.js';
import { readSeriesRecord, validateSeriesRecord } from './record.js';

/** A series results.json from a real run (the kernel-series e2e test: 7 patches, mbox input, a regression). */
const CAPTURED = join(import.meta.dirname, 'fixtures', 'kernel-series-results.json');

async function captured(
  change: (r: Record<string, unknown>) => void = () => undefined,
): Promise<Record<string, unknown>> {
  const r = JSON.parse(await readFile(CAPTURED, 'utf8')) as Record<string, unknown>;
  change(r);
  return r;
}

const at = (o: unknown, ...path: (string | number)[]): Record<string, unknown> =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], o) as Record<string, unknown>;

t.test('the results.json of a real series run is a valid series record', async (t) => {
  const r = await readSeriesRecord(CAPTURED);
  t.equal(r.patches.length, 7);
  t.equal(r.source.kind, 'mbox');
  t.equal(r.comparison?.regressions.length, 1);
  t.equal(r.verdict, 'regressed');
});

/** Refused with one line that names the path of what is wrong. */
async function refused(
  t: Test,
  what: string,
  change: (r: Record<string, unknown>) => void,
  path: RegExp,
): Promise<void> {
  const v = await captured(change);
  let message = '';
  try {
    validateSeriesRecord(v, 'x.json');
  } catch (err) {
    message = (err as Error).message;
  }
  t.match(message, /^x\.json is not a faultline series results\.json: /, `${what}: refused`);
  t.match(message, path, `${what}: names the path`);
  t.notOk(message.includes('\n'), `${what}: one line`);
}

/** Changes to a real record that its type does not allow, and the path each message names. */
const REFUSED: [what: string, change: (r: Record<string, unknown>) => void, path: RegExp][] = [
  [
    'a verdict the series never gives',
    (r) => {
      r['verdict'] = 'dirty';
    },
    /: \/verdict must be equal to one of the allowed values$/,
  ],
  [
    'a run verdict that is not a run verdict',
    (r) => {
      at(r, 'baseTests')['verdicts'] = ['skip'];
    },
    /: \/baseTests\/verdicts\/0 must be equal to one of the allowed values$/,
  ],
  [
    'a compiler diagnostic of unknown severity',
    (r) => {
      at(r, 'patches', 0, 'build')['newWarnings'] = [
        { file: 'a.c', line: 1, severity: 'note', message: 'm', text: 'a.c:1: note: m' },
      ];
    },
    /: \/patches\/0\/build\/newWarnings\/0\/severity must be equal to one of the allowed values$/,
  ],
  [
    'a source that is neither mbox nor range',
    (r) => {
      at(r, 'source')['kind'] = 'git';
    },
    /: \/source\/kind /,
  ],
  [
    'an mbox source without its file',
    (r) => {
      delete at(r, 'source')['file'];
    },
    /: \/source must have required property 'file'$/,
  ],
  [
    'a record without its patchset hash',
    (r) => {
      delete r['patchsetHash'];
    },
    /: \/ must have required property 'patchsetHash'$/,
  ],
  [
    'test counts without flaky',
    (r) => {
      delete at(r, 'baseTests', 'counts')['flaky'];
    },
    /: \/baseTests\/counts must have required property 'flaky'$/,
  ],
  [
    'a comparison without its status changes',
    (r) => {
      delete at(r, 'comparison')['regressions'];
    },
    /: \/comparison must have required property 'regressions'$/,
  ],
  [
    'null where the tip may only be absent',
    (r) => {
      r['tip'] = null;
    },
    /: \/tip must be string$/,
  ],
  [
    'null where a patch build may only be absent',
    (r) => {
      at(r, 'patches', 0)['build'] = null;
    },
    /: \/patches\/0\/build must be object$/,
  ],
  [
    'null in an optional field of a status change',
    (r) => {
      at(r, 'comparison', 'regressions', 0)['reason'] = null;
    },
    /: \/comparison\/regressions\/0\/reason must be string$/,
  ],
];

t.test('a series record is checked as strictly as its type, in one line naming the path', async (t) => {
  for (const [what, change, path] of REFUSED) await refused(t, what, change, path);
});

t.test('a range source is a series record too', async (t) => {
  const v = await captured((r) => {
    r['source'] = { kind: 'range', range: 'v6.12..topic' };
  });
  t.equal(validateSeriesRecord(v, 'x.json').source.kind, 'range');
  const mixed = await captured((r) => {
    r['source'] = { kind: 'range', file: 'series.mbox' };
  });
  t.throws(() => validateSeriesRecord(mixed, 'x.json'), /is not a faultline series results\.json: \/source/);
});

function runWith(runId: string, value: number): RunRecord {
  return newRunRecord({
    runId,
    startedAt: '2026-12-02T00:00:00.000Z',
    kernel: { source: 'build', path: runId },
    selftests: { source: 'command' },
    suites: ['cmd'],
    backings: [],
    subtests: [
      {
        id: 'cmd/t',
        suite: 'cmd',
        program: 'cmd',
        name: 't',
        status: 'pass',
        metrics: [{ name: 'faults', value, unit: 'count' }],
      },
    ],
  });
}

t.test('non-finite metric figures (written as null by JSON) read back as NaN, nowhere else', async (t) => {
  // A zero base median: the ratio is infinite and no bootstrap resample has a finite ratio.
  const comparison = compareRuns([runWith('b1', 0), runWith('b2', 0)], [runWith('h1', 3), runWith('h2', 4)]);
  const m = comparison.metrics[0];
  t.equal(m?.ratio, Infinity);
  t.ok(Number.isNaN(m?.ci.low), 'the CI has no finite bounds');
  const onDisk = JSON.parse(JSON.stringify({ ...(await captured()), comparison })) as unknown;
  t.equal(at(onDisk, 'comparison', 'metrics', 0)['ratio'], null, 'JSON writes Infinity as null');
  const back = validateSeriesRecord(onDisk, 'x.json');
  t.ok(Number.isNaN(back.comparison?.metrics[0]?.ratio), 'read back as NaN');
  t.ok(Number.isNaN(back.comparison?.metrics[0]?.ci.high));
  t.equal(back.comparison?.metrics[0]?.medianHead, 3.5);

  const elsewhere = JSON.parse(JSON.stringify({ ...(await captured()), comparison })) as Record<string, unknown>;
  at(elsewhere, 'comparison', 'options')['alpha'] = null;
  t.throws(() => validateSeriesRecord(elsewhere, 'x.json'), /: \/comparison\/options\/alpha must be number$/);
  const unit = JSON.parse(JSON.stringify({ ...(await captured()), comparison })) as Record<string, unknown>;
  at(unit, 'comparison', 'metrics', 0)['unit'] = null;
  t.throws(() => validateSeriesRecord(unit, 'x.json'), /: \/comparison\/metrics\/0\/unit must be string$/);
});
