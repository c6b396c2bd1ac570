/**
 * Bisected culprits as known issues, on the three nights captured from a real run of
 * harness/e2e/nightly-culprit.e2e.test.ts (fixtures/culprit/): night 2 bisected zeropage/anon's
 * failure to its culprit; night 3, on the same commit, must see that failure as known, and
 * night 1 (which passed it) as absent.
 */
import t, { type Test } from 'tap';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  culpritIssuesFile,
  culpritKnownIssues,
  earlierCulpritIssues,
  writeCulpritKnownIssues,
} from './culprit-known-issues.js';
import { applyKnownIssues, readKnownIssues } from '../results/known-issues.js';
import { loadNightlyRuns, readNightlyRecord, type NightlyBisect } from '../results/nightly.js';
import type { RunRecord } from '../results/types.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'culprit');
const ZEROPAGE = 'uffd-unit-tests/zeropage/anon';

async function runOf(night: string): Promise<RunRecord> {
  const dir = join(fixtures, night);
  const [run] = await loadNightlyRuns(dir, await readNightlyRecord(dir));
  if (!run) throw new Error(`${night} has no run`);
  return run.record;
}

/** A copy of night 2's nightly.json in a scratch night directory (the issue files are written beside it). */
async function night2Copy(t: Test): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'faultline-culprit-issues-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, 'night-2');
  await mkdir(dir);
  await copyFile(join(fixtures, 'night-2', 'nightly.json'), join(dir, 'nightly.json'));
  return dir;
}

t.test("night 2's culprit becomes a known issue of its kernel and config", async (t) => {
  const dir = await night2Copy(t);
  const record = await readNightlyRecord(dir);
  const hash = record.bisects?.[0]?.culprit?.hash.slice(0, 12) ?? 'none';
  const files = await writeCulpritKnownIssues(dir, record);
  t.same(files, [culpritIssuesFile(dir, 'mm', 'default')]);
  t.equal(files[0], join(dir, 'known-issues', 'mm.default.yaml'));
  const issues = await readKnownIssues(files);
  t.match(issues, [
    {
      id: `culprit-${hash}-default-tests`,
      culprit: 'code',
      // The mail is not among the fixtures: the culprit's subject stands in for its Subject.
      report: '[faultline] userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly',
      match: { tests: [ZEROPAGE], statuses: ['fail', 'error'] },
    },
  ]);
  t.match(
    issues[0]?.title,
    /broken by [0-9a-f]{12} \("userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly", faultline test <test@faultline\.invalid>\), bisected by nightly night-2$/,
  );

  const n3 = await runOf('night-3');
  applyKnownIssues(n3, issues);
  t.equal(n3.subtests.find((s) => s.id === ZEROPAGE)?.known, issues[0]?.id, "night 3's failure is known");
  t.match(n3.knownIssues, [{ state: 'present', where: [ZEROPAGE] }]);
  const n1 = await runOf('night-1');
  applyKnownIssues(n1, issues);
  t.match(n1.knownIssues, [{ state: 'absent', where: [ZEROPAGE] }], 'where it passes: fixed?');
  t.notOk(n1.subtests.some((s) => s.known !== undefined));
});

t.test('later nights get the files of their kernel and config only, each id once', async (t) => {
  const dir = await night2Copy(t);
  const [file] = await writeCulpritKnownIssues(dir, await readNightlyRecord(dir));
  const again = await night2Copy(t);
  await writeCulpritKnownIssues(again, await readNightlyRecord(again));
  const filesFor = await earlierCulpritIssues([{ dir }, { dir: again }]);
  t.same(filesFor({ kernel: 'mm', config: 'default' }), [file], 'the same culprit written twice is given once');
  t.same(filesFor({ kernel: 'mm', config: 'kasan' }), []);
  t.same(filesFor({ kernel: 'other', config: 'default' }), []);
  t.same(
    await earlierCulpritIssues([{ dir: join(fixtures, 'night-1') }]).then((f) =>
      f({ kernel: 'mm', config: 'default' }),
    ),
    [],
  );
});

t.test("a splat culprit's issue matches the same WARNING with another pid; no culprit, no issue", async (t) => {
  const dir = await night2Copy(t);
  const b = (await readNightlyRecord(dir)).bisects?.[0] as NightlyBisect;
  const title = 'WARNING: CPU: 1 PID: 80 at fs/userfaultfd.c:1655 userfaultfd_ioctl+0x485/0xd16';
  const splat: NightlyBisect = { ...b, signal: { kind: 'splat', id: title }, signals: [{ kind: 'splat', id: title }] };
  const [issue, ...more] = await culpritKnownIssues(dir, 'night-2', splat);
  t.same(more, []);
  t.match(issue?.id, /-default-splats$/);
  const re = new RegExp(issue?.match.splat ?? 'none');
  t.ok(re.test('WARNING: CPU: 1 PID: 82 at fs/userfaultfd.c:1655 userfaultfd_ioctl+0x485/0xd16'), 'another pid');
  t.notOk(re.test('WARNING: CPU: 1 PID: 82 at mm/hugetlb.c:1655 hugetlb_fault+0x485/0xd16'), 'another WARN');
  t.same(await culpritKnownIssues(dir, 'night-2', { ...b, outcome: 'inconclusive' }), []);
  t.same(await culpritKnownIssues(dir, 'night-2', { ...b, outcome: 'known', since: 'night-1' }), []);
});
