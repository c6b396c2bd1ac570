import t from 'tap';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunRequest } from '../run/request.js';
import { readJobRequest, writeJobRequest } from './job-request.js';

const req: RunRequest = {
  kernel: { kind: 'path', bzImage: '/k/bzImage', release: '6.12.117' },
  suites: ['uffd'],
  backings: ['anon', 'hugetlb'],
  memMiB: 1024,
  smp: 2,
  accel: 'auto',
  guestRam: 'anon',
  timeoutSec: 600,
  bootTimeoutSec: 300,
  resultsRoot: '/r',
  runId: 'n1.job+r1.try1',
  quick: false,
  keepVm: false,
  hugepages2m: 64,
  hugepages1g: 0,
  retries: 2,
};

t.test('the job request round-trips, and a damaged one is refused with its path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-job-request-'));
  const path = join(dir, 'nightly-request.json');
  await writeJobRequest(path, req);
  t.same(await readJobRequest(path), req);
  await writeFile(path, JSON.stringify({ ...req, kernel: { kind: 'path' } }));
  await t.rejects(readJobRequest(path), {
    message: new RegExp(`^${path} is not a faultline nightly job request: /kernel`),
  });
  await writeFile(path, JSON.stringify({ ...req, backings: ['tmpfs'] }));
  await t.rejects(readJobRequest(path), { message: /\/backings\/0/ });
});
