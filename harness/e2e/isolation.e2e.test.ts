import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGuestRunRecord } from '../results/record.js';
import { PROJECT_ROOT } from '../util/project.js';
import { PROGRAM_OUTPUT_LIMIT_BYTES } from '../run/program.js';
import { CONSOLE_LOG_LIMIT_BYTES } from '../vm/guest.js';

/**
 * The guest is isolated and bounded, on a real guest (Debian 6.12, real QEMU, TCG here), in
 * one run of three programs: one that tries to reach listeners this test opens on the host
 * (through 10.0.2.2, slirp's DNS alias 10.0.2.3 and the host's own addresses) and must not,
 * one that floods its output and one that floods the console, each cut off at its bound
 * with a verdict that says so.
 * Without restrict=on the first program reaches both listeners (checked by hand with the
 * netdev's restrict=on removed: "reached host service 10.0.2.2:PORT" and the host address).
 */
// Time: 180 s for this file (boot 20 s, output flood 20 s, console flood ~140 s at TCG's
// ~75 KB/s serial port) at load average 2-3; 12 min leaves room for a loaded machine.
t.setTimeout(12 * 60_000);

const cli = join(PROJECT_ROOT, 'bin', 'faultline.js');
const work = mkdtempSync(join(tmpdir(), 'faultline-e2e-isolation-'));
// The floods leave 24 MiB behind.
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const repro = (name: string): string => join(PROJECT_ROOT, 'harness', 'e2e', 'repro', name);

/** A listener that answers one line and counts who connected. */
async function listener(host: string): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((s) => {
    hits.push(`${s.remoteAddress ?? '?'} -> ${host}`);
    s.end('faultline-host-listener\n');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0, hits };
}

/** The host's own IPv4 addresses besides loopback: without restrict=on the guest reaches them directly. */
const hostAddresses = (): string[] =>
  Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i && i.family === 'IPv4' && !i.internal ? [i.address] : []));

t.test('a guest reaches nothing on the host, and its floods are cut off at their bounds', async (t) => {
  const loop = await listener('127.0.0.1');
  const others = await Promise.all(hostAddresses().map(listener));
  t.teardown(() => [loop, ...others].forEach((l) => l.server.close()));
  const targets = [
    `10.0.2.2:${loop.port}`,
    `10.0.2.3:${loop.port}`,
    ...others.map((l, i) => `${hostAddresses()[i] ?? ''}:${l.port}`),
  ];
  // The program's targets are these listeners' ports, chosen now.
  const reach = join(work, 'host-reach.c');
  const source = readFileSync(repro('host-reach.c'), 'utf8');
  writeFileSync(reach, source.replace(/^#define TARGETS .*$/m, `#define TARGETS "${targets.join(' ')}"`));
  const r = await execa(
    'node',
    [
      cli,
      'run',
      ...['--program', reach, '--program', repro('flood-stdout.c'), '--program', repro('flood-console.c')],
      ...['--backing', 'anon', '--retries', '0', '--timeout', '400', '--results', work, '--run-id', 'iso'],
    ],
    { reject: false, all: true, timeout: 11 * 60_000, env: { FAULTLINE_VERBOSE: '0' } },
  );
  const out = String(r.all).slice(-2000);
  t.equal(r.exitCode, 1, `exit 1: the floods fail (${out})`);
  const dir = join(work, 'iso');
  const rec = await readGuestRunRecord(join(dir, 'results.json'));
  const status = (id: string): string => {
    const s = rec.subtests.find((x) => x.id === id);
    return s ? `${s.status}${s.reason ? `: ${s.reason}` : ''}` : 'absent';
  };

  for (const target of targets)
    t.equal(
      status(`host-reach/guest-cannot-reach-${target.split(':')[0] ?? ''}/anon`),
      'pass',
      `${target} unreachable`,
    );
  t.same([...loop.hits, ...others.flatMap((l) => l.hits)], [], 'no listener saw a connection');
  t.ok(
    rec.qemu.command.some((a) => /^user,.*restrict=on/.test(a)),
    'the recorded command line restricts the network',
  );

  const outputMiB = PROGRAM_OUTPUT_LIMIT_BYTES / 2 ** 20;
  t.match(status('flood-stdout/anon'), new RegExp(`^fail: output flood: .* bound of ${outputMiB} MiB`));
  const outputFile = join(dir, 'output', 'flood-stdout.anon.txt');
  t.equal(statSync(outputFile).size, PROGRAM_OUTPUT_LIMIT_BYTES, 'the output kept is the bound, no more');

  const consoleMiB = CONSOLE_LOG_LIMIT_BYTES / 2 ** 20;
  t.match(status('flood-console/anon'), new RegExp(`^fail: console flood: .* bound of ${consoleMiB} MiB`));
  const consoleLog = join(dir, 'console.log');
  const size = statSync(consoleLog).size;
  t.ok(size > CONSOLE_LOG_LIMIT_BYTES && size < CONSOLE_LOG_LIMIT_BYTES + 4096, `console.log at its bound (${size})`);
  t.match(
    readFileSync(consoleLog, 'utf8').slice(-300),
    new RegExp(`console\\.log cut off at its bound of ${consoleMiB} MiB`),
  );
  t.equal(rec.verdict, 'fail');
});
