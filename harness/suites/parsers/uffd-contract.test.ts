import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseUffdContract } from './uffd-contract.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const output = readFileSync(join(fixtures, 'uffd-contract.host-6.18.txt'), 'utf8');

t.test('host run (kernel 6.18): all contracts parsed', (t) => {
  const p = parseUffdContract({ output, exitCode: 0, timedOut: false, durationMs: 200 }, { suite: 'uffd-contract' });
  t.equal(p.status, 'pass');
  t.equal(p.subtests.length, 41);
  t.ok(p.subtests.every((s) => s.status === 'pass'));
  const copy = p.subtests.find((s) => s.id === 'uffd-contract/copy-on-minor/hugetlb');
  t.equal(copy?.backing, 'hugetlb');
  const wp = p.subtests.find((s) => s.name === 'continue-mode-wp/shmem');
  t.match(wp?.reason ?? '', /^behaviour: kernel 6\.18.* >= 6\.4/, 'version-dependent behaviour surfaces as the reason');
  t.end();
});

t.test('a mismatch becomes a failed subtest with expected vs seen', (t) => {
  // The host capture with one result turned into the mismatch the program prints.
  const broken = output
    .replace(
      '# UFFDIO_COPY on a minor fault: expected EEXIST, saw EEXIST\nok 3 copy-on-minor/shmem',
      '# UFFDIO_COPY on a minor fault: expected EEXIST, saw EINVAL\nnot ok 3 copy-on-minor/shmem # UFFDIO_COPY on a minor fault: expected EEXIST, saw EINVAL',
    )
    .replace('pass:41 fail:0', 'pass:40 fail:1');
  t.not(broken, output);
  const p = parseUffdContract(
    { output: broken, exitCode: 1, timedOut: false, durationMs: 200 },
    { suite: 'uffd-contract' },
  );
  t.equal(p.status, 'fail');
  const s = p.subtests.find((x) => x.name === 'copy-on-minor/shmem');
  t.equal(s?.status, 'fail');
  t.equal(s?.reason, 'UFFDIO_COPY on a minor fault: expected EEXIST, saw EINVAL');
  t.end();
});

t.test('truncated output (crash after a few results) is an error', (t) => {
  const cut = output.split('\n').slice(0, 20).join('\n');
  const p = parseUffdContract(
    { output: cut, exitCode: null, timedOut: false, durationMs: 50 },
    { suite: 'uffd-contract' },
  );
  t.equal(p.status, 'error');
  t.ok(p.subtests.length > 0 && p.subtests.length < 41);
  t.end();
});
