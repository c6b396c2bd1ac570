import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBisectRecord, readBisectState } from './record.js';

/**
 * Records of real bisects (the kernel-series e2e test): a culprit found and verified, its state
 * file when done, one refused at the endpoints, and a state interrupted before the first step.
 */
const fixture = (name: string): string => join(import.meta.dirname, 'fixtures', name);
const FOUND = fixture('kernel-bisect-results.json');
const REFUSED = fixture('kernel-bisect-refused.json');
const DONE = fixture('kernel-bisect-state.json');
const STARTED = fixture('kernel-bisect-state-endpoints.json');

type Json = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): Json =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], o) as Json;

t.test('the records and state files of real bisects are valid', async (t) => {
  const found = await readBisectRecord(FOUND);
  t.equal(found.outcome, 'found');
  t.ok(found.culprit && found.verification?.verified);
  const refused = await readBisectRecord(REFUSED);
  t.equal(refused.outcome, 'refused');
  t.match(refused.refusal, /cannot be tested/);
  const done = await readBisectState(DONE);
  t.equal(done.phase, 'done');
  t.equal(done.found?.kind, 'culprit');
  const started = await readBisectState(STARTED);
  t.equal(started.phase, 'endpoints');
  t.same(started.steps, []);
});

/** `file` with one change, written to a scratch dir and read back with `read`: the error message, or ''. */
async function readChanged(
  t: { teardown(fn: () => unknown): void },
  file: string,
  read: (path: string) => Promise<unknown>,
  change: (r: Json) => void,
): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'faultline-bisect-record-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  const r = JSON.parse(await readFile(file, 'utf8')) as Json;
  change(r);
  const path = join(d, 'x.json');
  await writeFile(path, JSON.stringify(r));
  return read(path).then(
    () => '',
    (e: unknown) => (e as Error).message.replace(path, 'x.json'),
  );
}

t.test('a bisect record is checked as strictly as its type, in one line naming the path', async (t) => {
  const refused = async (what: string, change: (r: Json) => void, path: RegExp): Promise<void> => {
    const message = await readChanged(t, FOUND, readBisectRecord, change);
    t.match(message, /^x\.json is not a faultline bisect results\.json: /, `${what}: refused`);
    t.match(message, path, `${what}: names the path`);
    t.notOk(message.includes('\n'), `${what}: one line`);
  };
  await refused(
    'an outcome the bisect never has',
    (r) => {
      r['outcome'] = 'maybe';
    },
    /: \/outcome must be equal to one of the allowed values$/,
  );
  await refused(
    'a step role that does not exist',
    (r) => {
      at(r, 'steps', 0)['role'] = 'middle';
    },
    /: \/steps\/0\/role must be equal to one of the allowed values$/,
  );
  await refused(
    'a revert verdict that is not a verdict',
    (r) => {
      at(r, 'verification')['revert'] = { verdict: 'reverted' };
    },
    /: \/verification\/revert\/verdict must be equal to one of the allowed values$/,
  );
  await refused(
    'a run that neither passed nor failed',
    (r) => {
      at(r, 'steps', 0, 'runs', 0)['result'] = 'skip';
    },
    /: \/steps\/0\/runs\/0\/result must be equal to one of the allowed values$/,
  );
  await refused(
    'stats without the run count',
    (r) => {
      delete at(r, 'stats')['runs'];
    },
    /: \/stats must have required property 'runs'$/,
  );
  await refused(
    'a culprit without its confidence',
    (r) => {
      delete at(r, 'culprit')['confidence'];
    },
    /: \/culprit must have required property 'confidence'$/,
  );
  await refused(
    'a record without its bisect log',
    (r) => {
      delete r['bisectLog'];
    },
    /: \/ must have required property 'bisectLog'$/,
  );
  await refused(
    'null where the refusal may only be absent',
    (r) => {
      r['refusal'] = null;
    },
    /: \/refusal must be string$/,
  );
  await refused(
    'null where the culprit may only be absent',
    (r) => {
      r['culprit'] = null;
    },
    /: \/culprit must be object$/,
  );
  await refused(
    'null in an optional field of a step',
    (r) => {
      at(r, 'steps', 0)['buildMs'] = null;
    },
    /: \/steps\/0\/buildMs must be number$/,
  );
});

t.test('a bisect state file is checked as strictly as its type, in one line naming the path', async (t) => {
  const refused = async (what: string, change: (r: Json) => void, path: RegExp): Promise<void> => {
    const message = await readChanged(t, DONE, readBisectState, change);
    t.match(message, /^x\.json is not a faultline bisect state file: /, `${what}: refused`);
    t.match(message, path, `${what}: names the path`);
    t.notOk(message.includes('\n'), `${what}: one line`);
  };
  await refused(
    'a phase the bisect never enters',
    (r) => {
      r['phase'] = 'paused';
    },
    /: \/phase must be equal to one of the allowed values$/,
  );
  await refused(
    'a policy mode that does not exist',
    (r) => {
      at(r, 'policy')['mode'] = 'eager';
    },
    /: \/policy\/mode must be equal to one of the allowed values$/,
  );
  await refused(
    'a culprit found without its revision',
    (r) => {
      r['found'] = { kind: 'culprit' };
    },
    /: \/found must have required property 'rev'$/,
  );
  await refused(
    'pending runs without their role',
    (r) => {
      r['pending'] = { rev: r['bad'], runs: [], infraErrors: [], startedAt: 'now', durationMs: 0 };
    },
    /: \/pending must have required property 'role'$/,
  );
  await refused(
    'a state without its worktree',
    (r) => {
      delete r['worktree'];
    },
    /: \/ must have required property 'worktree'$/,
  );
  await refused(
    'null where pending runs may only be absent',
    (r) => {
      r['pending'] = null;
    },
    /: \/pending must be object$/,
  );
  await refused(
    'null where the pass threshold may only be absent',
    (r) => {
      r['passThreshold'] = null;
    },
    /: \/passThreshold must be integer$/,
  );

  const accepted = async (what: string, change: (r: Json) => void): Promise<void> => {
    t.equal(await readChanged(t, DONE, readBisectState, change), '', what);
  };
  await accepted('an ambiguous end with its candidates', (r) => {
    r['found'] = { kind: 'ambiguous', candidates: [r['good'], r['bad']] };
  });
  await accepted('a step in progress', (r) => {
    r['pending'] = {
      role: 'bisect',
      rev: r['bad'],
      runs: [{ result: 'fail', durationMs: 1 }],
      infraErrors: [],
      startedAt: 'now',
      durationMs: 1,
    };
  });
});

t.test('the command line a bisect keeps for its culprit mail is typed: cwd and a non-empty argv', async (t) => {
  const command = { cwd: '/work', argv: ['faultline', 'bisect', '--kernel-src', 'linux'] };
  const ok = await readChanged(t, FOUND, readBisectRecord, (r) => {
    r['command'] = command;
  });
  t.equal(ok, '', 'a record with its command line is valid');
  const stateOk = await readChanged(t, DONE, readBisectState, (r) => {
    r['command'] = command;
  });
  t.equal(stateOk, '', 'and so is a state file');
  const empty = await readChanged(t, FOUND, readBisectRecord, (r) => {
    r['command'] = { cwd: '/work', argv: [] };
  });
  t.match(empty, /: \/command\/argv must NOT have fewer than 1 items$/);
  const text = await readChanged(t, FOUND, readBisectRecord, (r) => {
    r['command'] = 'faultline bisect';
  });
  t.match(text, /: \/command must be object$/);
});
