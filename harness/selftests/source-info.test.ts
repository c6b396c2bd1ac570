import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stressBackingArgs, takesHugetlbfsFile, unitTestCases } from './source-info.js';
import { parseUffdUnitTests } from '../suites/parsers/uffd-unit.js';

// Real sources: Debian's linux-source-6.12 (6.12.117) and linux-source-6.1 (6.1.192),
// tools/testing/selftests/{mm,vm}/, copied unchanged (see fixtures/README.md).
const src = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const unitOutput = (name: string): string =>
  readFileSync(join(import.meta.dirname, '..', 'suites', 'fixtures', 'uffd', name), 'utf8');

const ALL = ['anon', 'shmem', 'shmem-private', 'hugetlb', 'hugetlb-private'];

t.test('uffd-unit-tests.c (6.12): every uffd_tests[] entry with its memory types, in source order', async (t) => {
  const cases = unitTestCases(src('uffd-unit-tests.6.12.117.c'));
  t.same(cases, [
    { test: 'register-ioctls', mems: ALL },
    { test: 'zeropage', mems: ALL },
    { test: 'move', mems: ['anon'] },
    { test: 'move-pmd', mems: ['anon'] },
    { test: 'move-pmd-split', mems: ['anon'] },
    { test: 'wp-fork', mems: ALL },
    { test: 'wp-fork-with-event', mems: ALL },
    { test: 'wp-fork-pin', mems: ALL },
    { test: 'wp-fork-pin-with-event', mems: ALL },
    { test: 'wp-unpopulated', mems: ['anon'] },
    { test: 'minor', mems: ['shmem', 'hugetlb'] },
    { test: 'minor-wp', mems: ['shmem', 'hugetlb'] },
    { test: 'minor-collapse', mems: ['shmem'] },
    { test: 'sigbus', mems: ALL },
    { test: 'sigbus-wp', mems: ALL },
    { test: 'events', mems: ALL },
    { test: 'events-wp', mems: ALL },
    { test: 'poison', mems: ALL },
  ]);
});

t.test('the cases are exactly what a full run of the same program printed (real 6.12 capture)', async (t) => {
  const planned = unitTestCases(src('uffd-unit-tests.6.12.117.c')).flatMap((c) => c.mems.map((m) => `${c.test}/${m}`));
  const ran = parseUffdUnitTests(unitOutput('uffd-unit-tests.full.6.12-tcg.txt'))
    .subtests.filter((s) => s.mem !== undefined)
    .map((s) => `${s.test}/${s.mem ?? ''}`);
  t.equal(planned.length, 64);
  t.same(planned, ran, 'same subtests, same order');
});

t.test('reading is robust to layout: field order, comments, another MEM_ALL spelling', async (t) => {
  const real = src('uffd-unit-tests.6.12.117.c');
  // The same declarations reshuffled: fields swapped, a comment with braces, MEM_ALL on one line.
  const reshuffled = real
    .replace(
      /#define\s+MEM_ALL\s+\(MEM_ANON[^)]*\)/,
      '#define MEM_ALL (MEM_ANON|MEM_SHMEM|MEM_SHMEM_PRIVATE|MEM_HUGETLB|MEM_HUGETLB_PRIVATE) /* { all } */',
    )
    .replace(
      '.name = "move",\n\t\t.uffd_fn = uffd_move_test,\n\t\t.mem_targets = MEM_ANON,',
      '.mem_targets = (MEM_ANON), /* anon only } */\n\t\t.uffd_fn = uffd_move_test,\n\t\t.name = "move",',
    );
  t.match(reshuffled, /MEM_HUGETLB_PRIVATE\) \/\* \{ all \} \*\//, 'MEM_ALL rewritten');
  t.match(
    reshuffled,
    /anon only \} \*\/\n\t\t\.uffd_fn = uffd_move_test,\n\t\t\.name = "move",/,
    'move entry reshuffled',
  );
  t.same(unitTestCases(reshuffled), unitTestCases(real));
  t.throws(
    () => unitTestCases(real.replace('MEM_SHMEM | MEM_HUGETLB,', 'MEM_SHMEM | MEM_BOGUS,')),
    /cannot resolve memory flag 'MEM_BOGUS'/,
  );
  t.throws(() => unitTestCases('int main(void) { return 0; }'), /no mem_types\[\] initializer/);
});

t.test("uffd-stress.c (6.12) takes faultline's backing names as they are", async (t) => {
  const s = src('uffd-stress.6.12.117.c');
  t.same(stressBackingArgs(s), {
    anon: 'anon',
    hugetlb: 'hugetlb',
    'hugetlb-private': 'hugetlb-private',
    shmem: 'shmem',
    'shmem-private': 'shmem-private',
  });
  t.equal(takesHugetlbfsFile(s), false);
});

t.test(
  'userfaultfd.c (6.1): "hugetlb" is private, shared hugetlb is "hugetlb_shared" on a file, no private shmem',
  async (t) => {
    const s = src('userfaultfd.6.1.192.c');
    t.same(stressBackingArgs(s), {
      anon: 'anon',
      'hugetlb-private': 'hugetlb',
      hugetlb: 'hugetlb_shared',
      shmem: 'shmem',
    });
    t.equal(takesHugetlbfsFile(s), true);
    t.throws(() => stressBackingArgs('int main(void) { return 0; }'), /no test type words/);
  },
);
