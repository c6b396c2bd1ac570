import t from 'tap';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { parsePlan, planHash, readPlan } from './plan.js';
import { expandJobs } from './jobs.js';
import { FaultlineError } from '../util/errors.js';

const dir = join(import.meta.dirname, 'fixtures', 'plans');

/** Problems reported for a bad plan, as "LINE:COL: message" lines. */
async function problems(file: string): Promise<{ message: string; lines: string[] }> {
  try {
    await readPlan(join(dir, file));
  } catch (e) {
    if (!(e instanceof FaultlineError)) throw e;
    return {
      message: e.message,
      lines: (e.detail ?? '').split('\n').map((l) => l.slice(l.indexOf(file) + file.length + 1)),
    };
  }
  throw new Error(`${file} was accepted`);
}

t.test('a full plan parses and expands', async (t) => {
  const p = await readPlan(join(dir, 'good.yaml'));
  t.equal(p.name, 'uffd-nightly');
  t.same(p.kernels[0], { kind: 'debian', name: 'debian-6.12', series: '6.12' });
  t.same(p.kernels[1], {
    kind: 'tree',
    name: 'mm-unstable',
    tree: '/src/linux',
    ref: 'mm-unstable',
    kconfig: ['base', 'uffd'],
  });
  t.same(p.backings, ['anon', 'shmem', 'hugetlb']);
  t.same(p.guestRam, ['anon', 'hugetlb']);
  t.equal(p.repeat, 3);
  t.equal(p.timeouts['uffd'], 900);
  const jobs = expandJobs(p);
  // debian: 1 config; tree: 2 configs -> 3 builds x 2 guest RAM x 3 backings x 1 suite x 3 reps
  t.equal(jobs.length, 3 * 2 * 3 * 1 * 3);
  t.equal(new Set(jobs.map((j) => j.id)).size, jobs.length, 'job ids are unique');
  t.equal(new Set(jobs.map((j) => j.buildKey)).size, 3, 'three distinct kernel builds');
  t.equal(jobs[0]?.id, 'debian-6.12+debian+anon+anon+uffd+r1');
  t.ok(jobs.every((j) => j.timeoutSec === 900));
});

t.test('JSON plans work and keep "6.10" as written', async (t) => {
  const p = await readPlan(join(dir, 'good.json'));
  t.same(p.kernels[0], { kind: 'debian', name: 'debian-6.10', series: '6.10' });
  t.equal(p.repeat, 2);
  t.same(p.guestRam, ['anon'], 'guest_ram defaults to anon');
  t.equal(p.memMiB, 1024, 'defaults match faultline run');
});

t.test('an unquoted series keeps its trailing zero', async (t) => {
  const p = parsePlan('kernels:\n  - name: k\n    debian: 6.10\nbackings: [anon]\nsuites: [uffd]\n', 'inline.yaml');
  t.same(p.kernels[0], { kind: 'debian', name: 'k', series: '6.10' });
});

t.test('bad backing: error names line and column of the entry', async (t) => {
  const { message, lines } = await problems('bad-backing.yaml');
  t.match(message, /bad-backing\.yaml: invalid plan \(1 problem\); first: line 7/);
  t.match(
    lines[0] ?? '',
    /^7:5: backings\[1\]: 'hugetlbfs' is not one of anon, shmem, .* \(did you mean 'hugetlb'\?\)/,
  );
});

t.test('every problem of a plan is reported, each with its line', async (t) => {
  const { lines } = await problems('bad-many.yaml');
  const text = lines.join('\n');
  t.match(text, /^5:5: kernels\[0\]\.ref: 'ref' applies to source-built kernels/m);
  t.match(text, /^6:5: kernels\[1\]\.name: kernel name 'k1' is used twice/m);
  t.match(text, /^8:5: kernels\[2\]\.name: a kernel needs a name/m);
  t.match(text, /^10:1: suits: unknown key 'suits' \(did you mean 'suites'\?\)/m);
  t.match(text, /^11:9: repeat: 0 is out of range: expected 1\.\.100/m);
  t.match(text, /^14:6: mem: expected an integer/m);
  t.match(text, /suites: the plan needs suites/m);
  // Sorted by line.
  const nums = lines.map((l) => Number(l.split(':')[0]));
  t.same(
    nums,
    [...nums].sort((a, b) => a - b),
  );
});

t.test('YAML syntax errors carry their position', async (t) => {
  const { message, lines } = await problems('bad-syntax.yaml');
  t.match(message, /invalid plan/);
  t.match(lines[0] ?? '', /^\d+:\d+: /);
  t.ok(Number(lines[0]?.split(':')[0]) >= 5, 'points at or after the unterminated flow sequence');
});

t.test('kernel entries: both, neither, bad series; configs without source kernels', async (t) => {
  const { lines } = await problems('bad-kernel.yaml');
  const text = lines.join('\n');
  t.match(text, /^5:5: kernels\[0\]: a kernel is either 'debian: SERIES' or 'tree: PATH', not both/m);
  t.match(text, /^6:5: kernels\[1\]: a kernel needs 'debian: SERIES'/m);
  t.match(text, /^8:13: kernels\[2\]\.debian: 'six' is not a Debian kernel series like "6\.12"/m);
});

t.test('plan hash is stable and sensitive to content', async (t) => {
  const text = await readFile(join(dir, 'good.yaml'), 'utf8');
  const a = parsePlan(text, 'a.yaml');
  const b = parsePlan(text.replace(/^#.*\n/m, ''), 'a.yaml');
  t.equal(planHash(a), planHash(b), 'comments do not change the hash');
  const c = parsePlan(text.replace('repeat: 3', 'repeat: 2'), 'a.yaml');
  t.not(planHash(a), planHash(c));
});

t.test('a URL tree is refused with its line', async (t) => {
  let err: unknown;
  try {
    parsePlan(
      'kernels:\n  - name: mm\n    tree: https://example.org/linux.git\nbackings: [anon]\nsuites: [uffd]\n',
      'u.yaml',
    );
  } catch (e) {
    err = e;
  }
  t.match(err, { detail: /u\.yaml:3:11: kernels\[0\]\.tree: .* is a URL/ });
});

t.test('hugetlb-1g needs hugepages_1g', async (t) => {
  t.throws(
    () => parsePlan('kernels: [{name: k, debian: "6.12"}]\nbackings: [hugetlb-1g]\nsuites: [uffd]\n', 'x.yaml'),
    /hugepages_1g/,
  );
  // One 1 GiB page needs 4 GiB of guest RAM (measured): the plan says so, with the line of mem.
  t.throws(
    () =>
      parsePlan(
        'kernels: [{name: k, debian: "6.12"}]\nbackings: [hugetlb-1g]\nsuites: [uffd-lat]\nhugepages_1g: 1\nmem: 2048\n',
        'x.yaml',
      ),
    /line 5: mem: hugepages_1g 1 needs mem 4096 or more/,
  );
  t.equal(
    parsePlan(
      'kernels: [{name: k, debian: "6.12"}]\nbackings: [hugetlb-1g]\nsuites: [uffd-lat]\nhugepages_1g: 1\nmem: 4096\n',
      'x.yaml',
    ).memMiB,
    4096,
  );
});

t.test('programs: your own C files, resolved against the plan, one more job per backing', async (t) => {
  const file = join(import.meta.dirname, '..', 'e2e', 'plan.yaml');
  const text = [
    'kernels: [{name: deb, debian: "6.12"}]',
    'backings: [anon, shmem]',
    'programs: [repro/zeropage-wake.c, repro/zeropage-ktap.c]',
  ].join('\n');
  const p = parsePlan(text, file);
  const repro = join(import.meta.dirname, '..', 'e2e', 'repro');
  t.same(p.programs, [join(repro, 'zeropage-wake.c'), join(repro, 'zeropage-ktap.c')]);
  t.same(p.suites, [], 'suites: may be left out when programs: are given');
  t.same(
    expandJobs(p).map((j) => j.id),
    ['deb+debian+anon+anon+program+r1', 'deb+debian+anon+shmem+program+r1'],
  );
  const withSuite = parsePlan(`${text}\nsuites: [uffd]`, file);
  t.same(
    expandJobs(withSuite).map((j) => j.suite),
    ['uffd', 'program', 'uffd', 'program'],
  );
  const detail = (plan: string): string => {
    try {
      parsePlan(plan, file);
    } catch (e) {
      if (e instanceof FaultlineError) return e.detail ?? '';
      throw e;
    }
    return 'accepted';
  };
  t.match(
    detail(text.replace('zeropage-wake.c', 'missing.c')),
    /plan\.yaml:3:\d+: programs\[0\]: no such file .*repro\/missing\.c/,
  );
  t.match(detail(text.replace('zeropage-wake.c', 'zeropage-wake.txt')), /programs\[0\]: .*C source file/);
  t.match(detail('kernels: [{name: deb, debian: "6.12"}]\nbackings: [anon]'), /the plan needs suites: .* or programs:/);
});

t.test('known_issues: files resolved against the plan, checked when the plan is read', async (t) => {
  const file = join(import.meta.dirname, '..', '..', 'plans', 'known.yaml');
  const text = ['kernels: [{name: deb, debian: "6.12"}]', 'backings: [anon]', 'suites: [uffd]'].join('\n');
  const p = parsePlan(`${text}\nknown_issues: [../known-issues/debian.yaml]`, file);
  t.same(p.knownIssues, [join(import.meta.dirname, '..', '..', 'known-issues', 'debian.yaml')]);
  t.equal(parsePlan(text, file).knownIssues, undefined, 'none: the shipped list alone');
  let detail = 'accepted';
  try {
    parsePlan(`${text}\nknown_issues: [../known-issues/missing.yaml]`, file);
  } catch (e) {
    if (!(e instanceof FaultlineError)) throw e;
    detail = e.detail ?? '';
  }
  t.match(detail, /known\.yaml:4:\d+: known_issues\[0\]: no such file .*known-issues\/missing\.yaml/);
  // A file whose contents are bad is refused by readPlan, naming the known-issues file's line.
  const bad = join(dir, 'bad-known-issues.yaml');
  await t.rejects(readPlan(bad), /known-issues-bad\.yaml:5:14: invalid known-issues file: \/issues\/0\/culprit /);
});

t.test('bisect: and config_base: parse; absent bisect: is off', async (t) => {
  const text = [
    'kernels:',
    '  - name: mm',
    '    tree: /src/linux',
    '    ref: mm-unstable',
    '    kconfig: [minimal, uffd]',
    '    config_base: tinyconfig',
    'backings: [anon]',
    'suites: [uffd]',
    'bisect:',
    '  max_minutes: 30',
    '  runs: 2',
    '',
  ].join('\n');
  const p = parsePlan(text, 'b.yaml');
  t.same(p.bisect, { maxMinutes: 30, runs: 2 });
  t.match(p.kernels[0], { kind: 'tree', configBase: 'tinyconfig' });
  t.same(parsePlan(text.replace(/^bisect:[^]*$/m, ''), 'b.yaml').bisect, undefined, 'no bisect: block, no bisects');
  t.same(parsePlan(text.replace('  runs: 2\n', ''), 'b.yaml').bisect, { maxMinutes: 30, runs: 1 }, 'runs: 1 default');
});

t.test('bisect: unknown keys and bad values are FILE:LINE:COL errors', async (t) => {
  const text = [
    'kernels:',
    '  - name: mm',
    '    debian: "6.12"',
    '    config_base: tinyconfig',
    'backings: [anon]',
    'suites: [uffd]',
    'bisect:',
    '  max_minutes: 0',
    '  run: 2',
    '',
  ].join('\n');
  try {
    parsePlan(text, 'b.yaml');
    t.fail('accepted');
  } catch (e) {
    if (!(e instanceof FaultlineError)) throw e;
    const lines = (e.detail ?? '').split('\n');
    t.match(lines[0], /^b\.yaml:4:5: kernels\[0\]\.config_base: 'config_base' applies to source-built kernels/);
    t.match(lines[1], /^b\.yaml:8:16: bisect\.max_minutes: 0 is out of range: expected 1\.\.1440$/);
    t.match(
      lines[2],
      /^b\.yaml:9:3: bisect\.run: unknown key 'run' \(did you mean 'runs'\?\); known keys: max_minutes, runs$/,
    );
    t.equal(lines.length, 3);
  }
});
