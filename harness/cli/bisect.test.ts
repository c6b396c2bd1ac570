import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bisectCommand, kernelTester, parseSpec } from './bisect.js';
import { endpointRefusal } from '../bisect/bisect.js';
import { cli, parsedArgs } from '../bisect/fixtures/cli.js';
import { readBisectRecord } from '../bisect/record.js';
import { createToyRepo } from '../testkit/toy-repo.js';

t.test('faultline bisect --build-cmd/--test-cmd on a real repository', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-cli-bisect-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  process.env['FAULTLINE_CACHE'] = join(root, 'cache');
  const repo = await createToyRepo(join(root, 'repo'), { commits: 8, culprit: 6, broken: [4] });
  const results = join(root, 'results');
  const r = await cli(bisectCommand, [
    'bisect',
    '--kernel-src',
    repo.dir,
    '--good',
    repo.hashes[0] ?? '',
    '--bad',
    'main',
    '--build-cmd',
    'gcc -o "$FAULTLINE_OUT/app" main.c',
    '--test-cmd',
    '"$FAULTLINE_OUT/app" "$FAULTLINE_RUN"',
    '--endpoint-runs',
    '1',
    '--results-dir',
    results,
    '--report-from',
    'CI Bot <ci@example.org>',
  ]);
  t.equal(r.exitCode, 0, r.out);
  t.match(r.out, `first bad commit: ${repo.hashes[6]}`);
  t.match(r.out, `culprit mail: ${results}/culprit.eml`);
  const mail = await readFile(join(results, 'culprit.eml'), 'utf8');
  t.match(mail, /^From: CI Bot <ci@example\.org>\nTo: Toy Author <toy@example\.org>\n/);
  t.match(mail, /^Reported-by: CI Bot <ci@example\.org>$/m);
  // A toy repository has no get_maintainer.pl: said in the notes, the mail still written.
  t.match(mail, /^Notes\n {2}\S+ has no scripts\/get_maintainer\.pl and MAINTAINERS/m);
  t.match(mail, `Reproduce\n  cd ${process.cwd()} && faultline bisect --kernel-src ${repo.dir} --good`);
  t.match(r.out, /subject: toy: generation 6 \(introduce the bug\)/);
  t.match(r.out, /author: {2}Toy Author <toy@example\.org>/);
  t.match(r.out, /VERIFIED/);
  t.equal((await readBisectRecord(join(results, 'results.json'))).culprit?.hash, repo.hashes[6]);
});

t.test('flag validation: one-line errors before anything runs', async (t) => {
  const base = ['bisect', '--kernel-src', '/nonexistent', '--good', 'a', '--bad', 'b'];
  await t.rejects(
    cli(bisectCommand, [
      ...base,
      '--metric',
      'uffd-lat:minor-continue/hugetlb/blocking/total_p50',
      '--above',
      '20 parsecs',
    ]),
    /--above '20 parsecs': unknown unit 'parsecs'/,
  );
  await t.rejects(
    cli(bisectCommand, [...base, '--metric', 'uffd-lat:minor-continue/hugetlb/blocking/total_p50']),
    /exactly one of --above or --below/,
  );
  await t.rejects(cli(bisectCommand, [...base, '--test', 'uffd-unit-tests']), /is not program:test\[\/backing\]/);
  await t.rejects(cli(bisectCommand, [...base, '--test', 'no-such-prog:x']), /no suite runs 'no-such-prog'/);
  await t.rejects(
    cli(bisectCommand, [...base, '--test', 'uffd-unit-tests:minor', '--runs', '2', '--fail-threshold', '3']),
    /--fail-threshold 3 exceeds --runs 2/,
  );
  await t.rejects(cli(bisectCommand, [...base]), /name what to test/);
  await t.rejects(
    cli(bisectCommand, [...base, '--test', 'uffd-unit-tests:minor/hugetlb', '--report-from', 'faultline']),
    /--report-from 'faultline' is not a mail address: pass "Name <user@example\.org>" or user@example\.org/,
  );
  await t.rejects(
    cli(bisectCommand, [...base, '--test', 'uffd-unit-tests:minor/hugetlb']),
    /--kernel-src \/nonexistent: no such directory/,
  );
  await t.rejects(
    cli(bisectCommand, [...base, '--test', 'uffd-unit-tests:minor', '--splat', 'any']),
    /give one of --test, --metric or --splat, not --test and --splat/,
  );
  await t.rejects(
    cli(bisectCommand, [...base, '--splat', 'userfaultfd_(ioctl']),
    /--splat 'userfaultfd_\(ioctl' is not a valid regular expression/,
  );
  await t.rejects(
    cli(bisectCommand, [...base, '--test', 'uffd-unit-tests:zeropage/anon', '--filter', 'zeropage']),
    /--filter goes with --splat/,
  );
  await t.rejects(cli(bisectCommand, [...base, '--splat', 'any', '--backing', 'pmem']), /unknown backing 'pmem'/);
  await t.rejects(cli(bisectCommand, [...base, '--splat', 'any', '--suite', 'ufd']), /unknown suite 'ufd'/);
  await t.rejects(cli(bisectCommand, [...base, '--splat', 'any', '--test-cmd', 'true']), /do not go with --test-cmd/);
  await t.rejects(
    cli(bisectCommand, [...base, '--splat', 'any', '--filter', 'zeropage']),
    /--kernel-src \/nonexistent: no such directory/,
    '--splat with --filter passes validation',
  );
});

t.test('--known-issues: a bad list is one line naming FILE:LINE:COL, before anything is built', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-cli-bisect-known-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const repo = await createToyRepo(join(root, 'repo'), { commits: 3, culprit: 2 });
  const bad = join(import.meta.dirname, '..', 'nightly', 'fixtures', 'plans', 'known-issues-bad.yaml');
  const results = join(root, 'results');
  const args = ['bisect', '--kernel-src', repo.dir, '--good', repo.hashes[0] ?? '', '--bad', 'main'];
  await t.rejects(
    cli(bisectCommand, [
      ...args,
      '--test',
      'uffd-unit-tests:events/anon',
      '--known-issues',
      bad,
      '--results-dir',
      results,
    ]),
    {
      exitCode: 2,
      message:
        /known-issues-bad\.yaml:5:14: invalid known-issues file: \/issues\/0\/culprit must be equal to one of the allowed values/,
    },
  );
  t.notOk(await readFile(join(results, 'results.json')).catch(() => undefined), 'nothing ran');
});

t.test("--splat runs on faultline run's backings; a refusal says what each run ran", async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'faultline-cli-bisect-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const repro = join(root, 'repro.c');
  await writeFile(repro, 'int main(void) { return 0; }\n');
  const base = ['bisect', '--kernel-src', root, '--good', 'a', '--bad', 'b'];
  const tester = async (...flags: string[]) => {
    const a = await parsedArgs(bisectCommand, [...base, ...flags]);
    const spec = parseSpec(a);
    if (!spec) throw new Error('no spec');
    return { spec, ran: kernelTester(a, spec, join(root, 'results')).describe() };
  };
  const splat = await tester('--splat', 'WARN');
  t.match(splat.ran, /\+ faultline run: suite uffd, all tests, backings hugetlb,shmem,anon, --quick$/);
  t.match(
    (await tester('--splat', 'WARN', '--filter', 'wp-fork', '--backing', 'shmem')).ran,
    /faultline run: suite uffd, tests matching 'wp-fork', backings shmem, --quick$/,
  );
  t.match(
    (await tester('--test', 'uffd-unit-tests:minor/hugetlb')).ran,
    /faultline run: suite uffd, tests matching 'minor', backings hugetlb, --quick$/,
    '--test keeps its own backing',
  );
  t.match(
    (await tester('--program', repro)).ran,
    /faultline run: no suite, programs repro\.c, all tests, backings hugetlb,shmem,anon, --quick$/,
  );
  // The message the user got after anon alone: now it names suite, filter, backings and runs.
  const refusal = endpointRefusal({
    expect: 'bad',
    step: { rev: 'c0ffee'.repeat(7), subject: 'mm: wp', verdict: 'good', reason: '0/3 runs failed' },
    spec: splat.spec.text,
    tester: splat.ran,
  });
  t.match(
    refusal,
    /^bad revision c0ffeec0ffee \("mm: wp"\) passes .*WARN.* \(0\/3 runs failed; each run: faultline build \(.*\) \+ faultline run: suite uffd, all tests, backings hugetlb,shmem,anon, --quick\): pick a newer --bad/,
  );
});
