/**
 * One nightly job in its own process: reads the RunRequest the nightly wrote, runs it with
 * runTests and leaves results.json in the run directory. Isolation is the point: a crash in one
 * job's harness code (an unhandled socket error, a stuck promise) or its log file handling cannot
 * disturb the other guests; the parent reports it as that job's infrastructure error.
 *
 *   node job-child.js REQUEST.json [GO_FILE]
 *
 * With GO_FILE the job was started ahead of its turn: it prepares, loads its guest paused, and
 * waits for the nightly to write `go` (or `stop`) there.
 */
import { runTests } from '../run/run.js';
import { errorMessage } from '../util/errors.js';
import { readJobRequest, waitForGo } from './job-request.js';

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: job-child REQUEST.json [GO_FILE]\n');
  process.exit(2);
}
// The nightly died (kill -9): stop rather than run on unobserved. Exiting lets the guest's own
// cleanup (and QEMU's lifetime limit) take the VM down.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(143);
}, 2000).unref();

try {
  const req = await readJobRequest(path);
  const goFile = process.argv[3];
  // The nightly kills a job that overruns; this deadline only bounds a wait nobody ends.
  const out = await runTests(req, goFile ? { startGate: () => waitForGo(goFile, 24 * 3600_000) } : {});
  process.stdout.write(`faultline-job: ${out.dir} ${out.record.verdict}\n`);
  process.exit(0);
} catch (e) {
  process.stderr.write(`faultline-job: ${errorMessage(e)}\n${e instanceof Error && e.stack ? e.stack : ''}\n`);
  process.exit(2);
}
