/**
 * The series report's metric lines on real captured runs (harness/report/fixtures/): a change
 * between guests on different clocksources is printed as invalid, not as a percentage.
 */
import t from 'tap';
import { compareRuns } from '../analysis/compare.js';
import { FIXTURE_RESULTS, loadNight, NIGHTS } from '../report/fixtures/nights.js';
import { metricLine } from './report.js';

t.test('a metric line across clocksources says it is invalid', async (t) => {
  const night = await loadNight(FIXTURE_RESULTS, NIGHTS.kernels);
  const shmemLat = (kernel: string): (typeof night.runs)[number]['record'][] =>
    night.runs
      .filter((r) => r.job.kernel === kernel && r.job.suite === 'uffd-lat' && r.job.backing === 'shmem')
      .map((r) => r.record);
  const across = compareRuns(shmemLat('debian-6.1'), shmemLat('debian-6.12'));
  const key = (c: typeof across): string =>
    metricLine(
      c.metrics.find((m) => m.id === 'uffd-lat/missing-copy/shmem/blocking' && m.metric === 'total_p50') ??
        c.metrics[0]!,
    );
  t.equal(
    key(across),
    'uffd-lat/missing-copy/shmem/blocking total_p50: 1.121e+7 -> 9.260e+6 ns (invalid: guests on different clocksources (hpet → tsc))',
  );
  const [r1, r2] = shmemLat('debian-6.1');
  t.match(
    key(compareRuns([r1!], [r2!])),
    /total_p50: 1\.116e\+7 -> 1\.126e\+7 ns \(median \+0\.9%, .*p=1\.0, n=1\/1\)$/,
  );
});
