import t from 'tap';
import { runEntry } from '../history/index.js';
import { SHIPPED_KNOWN_ISSUES, readKnownIssues } from '../results/known-issues.js';
import { mmRunAsNight } from '../testkit/real-runs.js';
import { formatKnownIssues, knownIssueTimeline, staleKnownIssues } from './known-issue-history.js';

// The real results.json of suite mm on hugetlb,shmem (Debian 6.12.118, TCG) as four nights of a
// plan: night 1 with memfd_test on hugetlbfs passing, night 4 with hugetlb-read-hwpoison passing
// (each the one edit the test makes), the shipped known issues applied as nightly applies them.
const issues = await readKnownIssues([SHIPPED_KNOWN_ISSUES]);
const night = (n: number, passing: string[]) =>
  runEntry(mmRunAsNight({ passing, startedAt: `2026-12-0${n}T23:00:00.000Z`, issues }), `nightly/n${n}/runs/mm`, {
    nightlyId: `nightly-n${n}`,
    planName: 'mm',
    kernelName: 'debian-6.12',
  });
const history = [
  night(1, ['memfd_test hugetlbfs']),
  night(2, []),
  night(3, []),
  night(4, ['hugetlb-read-hwpoison']),
  // Another plan's night is not this plan's history.
  { ...night(5, []), planName: 'other', nightlyId: 'nightly-other' },
];

t.test('since when each known issue occurs, night by night', async (t) => {
  t.same(
    history[0]?.known?.find(([id]) => id === 'debian-6.12-memfd-hugetlbfs-seal-exec'),
    ['debian-6.12-memfd-hugetlbfs-seal-exec', 'absent'],
  );
  const tl = knownIssueTimeline(history, 'mm');
  t.match(tl.get('debian-6.12-memfd-hugetlbfs-seal-exec'), {
    firstNight: 'nightly-n2',
    firstAt: '2026-12-02T23:00:00.000Z',
    lastNight: 'nightly-n4',
    nightsSince: 0,
  });
  t.match(tl.get('debian-6.12-hugetlb-read-hwpoison-sigbus'), {
    firstNight: 'nightly-n1',
    lastNight: 'nightly-n3',
    nightsSince: 1,
  });
  t.match(tl.get('debian-6.12-khugepaged-ksft-skip'), { firstNight: 'nightly-n1', nightsSince: 0 });
  t.equal(tl.get('uffd-unit-tests-events-anon-copy-enoent'), undefined, 'an issue no night saw has no timeline');
});

t.test('stale: matched nothing on the last N nights; nothing is stale before N nights exist', async (t) => {
  const ids = issues.map((i) => i.id);
  const stale = (n: number) => staleKnownIssues(history, 'mm', ids, n).map((s) => s.id);
  t.same(stale(5), [], 'four nights of history: too few to call anything stale over five');
  t.notOk(stale(2).includes('debian-6.12-hugetlb-read-hwpoison-sigbus'), 'absent tonight, present the night before');
  t.ok(stale(1).includes('debian-6.12-hugetlb-read-hwpoison-sigbus'), 'over the last night alone it matched nothing');
  t.ok(stale(4).includes('uffd-unit-tests-events-anon-copy-enoent'), 'an mm plan never runs the uffd flakes');
  t.notOk(stale(4).includes('debian-6.12-khugepaged-ksft-skip'), 'present every night');
  t.same(
    staleKnownIssues(history, 'mm', ['uffd-unit-tests-events-anon-copy-enoent'], 4),
    [{ id: 'uffd-unit-tests-events-anon-copy-enoent', nightsSince: 4 }],
    'never seen: all four nights',
  );
});

t.test("the night's text summary: present issues with where and since, fixed? ones, stale ones", async (t) => {
  const tonight = mmRunAsNight({ passing: ['hugetlb-read-hwpoison'], startedAt: '2026-12-04T23:00:00.000Z', issues });
  const lines = formatKnownIssues([tonight], history, 'mm');
  t.match(lines[0], /^known issues \(\d+ present\):$/);
  t.match(
    lines.slice(1),
    [/^ {2}KNOWN debian-6\.12-khugepaged-ksft-skip \(test\): .* <.+>: .*khugepaged.*; since nightly-n1$/],
    'the first present issue, its culprit kind, link, where and first night',
  );
  t.ok(
    lines.some((l) =>
      /^ {2}FIXED\? debian-6\.12-hugetlb-read-hwpoison-sigbus: passed: .*hugetlb-read-hwpoison/.test(l),
    ),
    'the issue whose test passed tonight',
  );
  t.same(formatKnownIssues([], history, 'mm'), [], 'no run with a known issue and nothing stale: no block');
  t.same(formatKnownIssues([], history, 'other'), [], 'a plan with one night: too few nights to call anything stale');
});
