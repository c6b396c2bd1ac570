import t from 'tap';
import type { SuiteContext } from './types.js';
import { postcopySuite } from './postcopy.js';
import { uffdContractSuite } from './uffd-contract.js';
import { uffdLatSuite } from './uffd-lat.js';

const ctx = (over: Partial<SuiteContext> = {}): SuiteContext => ({
  backings: ['hugetlb', 'shmem', 'hugetlb-private'],
  smp: 2,
  memMiB: 1024,
  hugepages2m: 64,
  quick: false,
  programs: [],
  ...over,
});

t.test('uffd-lat plans one command per supported backing', (t) => {
  const full = uffdLatSuite.plan(ctx());
  t.same(
    full.map((c) => [c.label, c.backing, c.args]),
    [
      ['uffd-lat-hugetlb', 'hugetlb', ['-b', 'hugetlb']],
      ['uffd-lat-shmem', 'shmem', ['-b', 'shmem']],
    ],
  );
  const quick = uffdLatSuite.plan(ctx({ quick: true, filter: 'minor' }));
  t.same(quick[0]?.args, ['-b', 'hugetlb', '-c', 'minor-continue', '-n', '50', '-w', '5']);
  t.same(uffdLatSuite.plan(ctx({ filter: 'nothing-matches' })), []);
  t.end();
});

t.test('uffd-contract and postcopy plans', (t) => {
  t.same(
    uffdContractSuite.plan(ctx({ backings: ['anon'] })).map((c) => c.args),
    [['-b', 'anon']],
  );
  t.same(
    postcopySuite.plan(ctx({ quick: true })).map((c) => c.args),
    [
      ['-b', 'hugetlb', '-m', 'both', '-s', '16'],
      ['-b', 'shmem', '-m', 'both', '-s', '4'],
    ],
  );
  t.same(postcopySuite.plan(ctx({ filter: 'copy' }))[0]?.args, ['-b', 'hugetlb', '-m', 'copy']);
  t.end();
});

t.test('parse goes through the suite with the command backing', (t) => {
  const cmd = uffdContractSuite.plan(ctx({ backings: ['shmem'] }))[0];
  t.ok(cmd);
  if (!cmd) return t.end();
  const out = {
    output:
      'TAP version 13\n1..1\nok 1 einval/register-mode-zero/shmem\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n',
    exitCode: 0,
    timedOut: false,
    durationMs: 1,
  };
  const p = uffdContractSuite.parse(cmd, out, ctx());
  t.equal(p.status, 'pass');
  t.equal(p.subtests[0]?.backing, 'shmem');
  t.equal(p.subtests[0]?.suite, 'uffd-contract');
  t.end();
});
