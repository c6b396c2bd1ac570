/**
 * Time to first test of a warm `faultline run` (issue 25): `run --quick --backing shmem
 * --filter register-ioctls` on Debian's kernel with every cache warm (kernel, selftests,
 * initramfs, snapshot), the kernel resolution answered by apt (--refresh: what every run paid
 * before the resolution record) vs by the cached record, rounds alternating the two so load on
 * the machine hits them alike. Time to first test runs from spawning bin/faultline.js to the
 * line announcing its first test program; the breakdown comes from each run's run.log:
 * resolve (acquireKernel), selftests + initramfs, guest up (restore, then the guest's hashes of
 * the binaries it was saved with, and a push of any that differ).
 * Usage: node dist/bench/first-test.js [--rounds N]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../harness/util/project.js';
import { run } from '../harness/util/proc.js';
import { median } from '../harness/stats/descriptive.js';

const argv = process.argv.slice(2);
const rounds = Number(argv[argv.indexOf('--rounds') + 1] ?? 3) || 3;
const COMMAND = ['run', '--quick', '--backing', 'shmem', '--filter', 'register-ioctls'];
const FIRST_TEST = /^\[\s*[\d.]+s\] \[[\w-]+\] /;

interface Sample {
  firstTestMs: number;
  resolveMs: number;
  prepareMs: number;
  guestMs: number;
  /** Of guestMs: QEMU start to the restored guest checked. */
  restoreMs: number;
  /** Of guestMs: the guest's hashes of the binaries, and any push. */
  stageMs: number;
}

/** Seconds since the log started, of the first run.log line matching `re`. */
function stamp(log: string, re: RegExp, what: string): number {
  const line = log.split('\n').find((l) => re.test(l));
  const s = line ? /^\[\s*([\d.]+)s\]/.exec(line)?.[1] : undefined;
  if (s === undefined) throw new Error(`run.log has no ${what} line`);
  return Number(s) * 1000;
}

async function oneRun(results: string, mode: 'apt' | 'record', round: number): Promise<Sample> {
  const runId = `${mode}-${round}`;
  const started = Date.now();
  let firstTestMs = NaN;
  await run(
    'node',
    [join(PROJECT_ROOT, 'bin', 'faultline.js'), ...COMMAND, '--results', results, '--run-id', runId].concat(
      mode === 'apt' ? ['--refresh'] : [],
    ),
    {
      timeoutMs: 10 * 60_000,
      onLine: (l) => {
        if (Number.isNaN(firstTestMs) && FIRST_TEST.test(l)) firstTestMs = Date.now() - started;
      },
    },
  );
  const log = await readFile(join(results, runId, 'run.log'), 'utf8');
  const resolveMs = Number(/acquired in (\d+) ms/.exec(log)?.[1] ?? NaN);
  const acquired = stamp(log, /acquired in \d+ ms/, 'kernel acquired');
  const booting = stamp(log, /\] booting /, 'booting');
  const restoreMs = Number(/guest restored from snapshot \w+ in ([\d.]+) s/.exec(log)?.[1] ?? NaN) * 1000;
  const stageMs = Number(/test binaries: .* in ([\d.]+) s/.exec(log)?.[1] ?? NaN) * 1000;
  return {
    firstTestMs,
    resolveMs,
    prepareMs: booting - acquired,
    guestMs: stamp(log, FIRST_TEST, 'test') - booting,
    restoreMs,
    stageMs,
  };
}

const sec = (ms: number): string => (ms / 1000).toFixed(2).padStart(6);

const results = await mkdtemp(join(tmpdir(), 'bench-first-test-'));
try {
  // One run first fills whatever is cold (snapshot, selftests, the record): not timed.
  await oneRun(results, 'record', 0);
  const samples = { apt: [] as Sample[], record: [] as Sample[] };
  for (let i = 1; i <= rounds; i++) {
    samples.apt.push(await oneRun(results, 'apt', i));
    samples.record.push(await oneRun(results, 'record', i));
  }
  console.log(`faultline ${COMMAND.join(' ')}: medians of ${rounds} rounds (s)`);
  console.log(
    'kernel resolved by        first test  resolve  selftests+initramfs  guest up (restore, binaries checked)',
  );
  for (const [mode, what] of [
    ['apt', 'apt (--refresh) '],
    ['record', 'the cached record'],
  ] as const) {
    const s = samples[mode];
    const m = (k: keyof Sample) => sec(median(s.map((x) => x[k])));
    console.log(
      `${what}        ${m('firstTestMs')}   ${m('resolveMs')}       ${m('prepareMs')}         ${m('guestMs')} (${m('restoreMs').trim()}, ${m('stageMs').trim()})`,
    );
  }
} finally {
  await rm(results, { recursive: true, force: true });
}
