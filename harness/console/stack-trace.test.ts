/**
 * Call traces: a real WARNING's excerpt (captured by a real bisect, harness/bisect/fixtures) has
 * one; the decoder says why it cannot run where a tree has no decode_stacktrace.sh.
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeStackTrace, hasCallTrace } from './stack-trace.js';
import { warningRun } from '../testkit/real-runs.js';

const run = warningRun();
const excerpt = run.splats[0]?.excerpt ?? '';

t.test("a real WARNING's excerpt has a call trace; its title alone has none", async (t) => {
  t.ok(hasCallTrace(excerpt));
  t.notOk(hasCallTrace(run.splats[0]?.title ?? 'none'));
});

t.test('a tree without scripts/decode_stacktrace.sh: why, naming the tree', async (t) => {
  const tree = await mkdtemp(join(tmpdir(), 'faultline-no-scripts-'));
  t.teardown(() => rm(tree, { recursive: true, force: true }));
  t.same(await decodeStackTrace(excerpt, { tree, vmlinux: join(tree, 'vmlinux') }), {
    why: `${tree} has no scripts/decode_stacktrace.sh`,
  });
});
