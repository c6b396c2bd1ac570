import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parsePostcopy } from './postcopy.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const read = (n: string) => readFileSync(join(fixtures, n), 'utf8');

t.test('host run (kernel 6.18): minor and copy on shmem/hugetlb/anon', (t) => {
  // ./postcopy -b shmem,hugetlb,anon -s 8
  const p = parsePostcopy(
    { output: read('postcopy.host-6.18.txt'), exitCode: 0, timedOut: false, durationMs: 2000 },
    { suite: 'postcopy' },
  );
  t.equal(p.status, 'pass');
  t.same(
    p.subtests.map((s) => s.name),
    ['minor/shmem', 'minor/hugetlb', 'copy/shmem', 'copy/hugetlb', 'copy/anon'],
  );
  for (const s of p.subtests) {
    const m = (n: string) => s.metrics?.find((x) => x.name === n)?.value;
    t.equal(s.status, 'pass', s.name);
    t.equal(m('bad_pages'), 0);
    t.equal(m('stale_reads'), 0);
    t.equal(m('pages'), (8 * 1024 * 1024) / (m('page_size') ?? 1), `${s.name}: 8 MiB of pages`);
    t.ok((m('pages_per_s') ?? 0) > 0);
    t.ok((m('blocktime_all') ?? -1) <= (m('blocktime_sum') ?? -1));
  }
  t.equal(p.subtests[1]?.backing, 'hugetlb');
  t.equal(p.subtests[4]?.id, 'postcopy/copy/anon');
  t.end();
});

t.test('killed mid-run: error', (t) => {
  const p = parsePostcopy(
    { output: read('postcopy.host-6.18.killed.txt'), exitCode: null, timedOut: false, durationMs: 600 },
    { suite: 'postcopy', backing: 'shmem' },
  );
  t.equal(p.status, 'error');
  t.equal(p.subtests.length, 0);
  t.end();
});

t.test('integrity errors on a passing line are a failure', (t) => {
  const text = read('postcopy.host-6.18.txt').replace('# metric bad_pages=0 count', '# metric bad_pages=3 count');
  const p = parsePostcopy({ output: text, exitCode: 0, timedOut: false, durationMs: 2000 }, { suite: 'postcopy' });
  t.equal(p.status, 'fail');
  t.equal(p.subtests[0]?.status, 'fail');
  t.match(p.subtests[0]?.reason ?? '', /bad_pages=3/);
  t.end();
});
