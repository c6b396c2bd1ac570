import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bisectCommand } from './bisect.js';
import { cli } from '../bisect/fixtures/cli.js';
import { readBisectRecord } from '../bisect/record.js';
import { createToyRepo } from '../bisect/fixtures/toy-repo.js';

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
  ]);
  t.equal(r.exitCode, 0, r.out);
  t.match(r.out, `first bad commit: ${repo.hashes[6]}`);
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
    cli(bisectCommand, [...base, '--test', 'uffd-unit-tests:minor/hugetlb']),
    /\/nonexistent is not a git checkout/,
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
    /\/nonexistent is not a git checkout/,
    '--splat with --filter passes validation',
  );
});
