import { execa } from 'execa';
import { which } from '../util/proc.js';

/**
 * Every QEMU faultline starts dies with it. Two mechanisms, because either alone leaves
 * a gap: PR_SET_PDEATHSIG (via setpriv) covers a SIGKILLed faultline, where no JS runs;
 * the exit hooks cover Ctrl-C, SIGTERM and normal exits, where pdeathsig would fire only
 * after node is gone.
 */
interface Killable {
  killNow(): void;
}

const live = new Set<Killable>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const k of live) k.killNow();
  });
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      if (live.size) process.stderr.write(`\nfaultline: ${sig}: stopping ${live.size} QEMU process(es)\n`);
      for (const k of live) k.killNow();
      process.exit(code);
    });
  }
}

/** argv wrapped so the kernel SIGKILLs the process when faultline dies (no wrapper where setpriv is missing). */
export async function boundToParent(argv: readonly string[]): Promise<string[]> {
  const setpriv = await which('setpriv');
  return setpriv ? [setpriv, '--pdeathsig', 'SIGKILL', ...argv] : [...argv];
}

/**
 * Start a process that must not outlive faultline: bound by pdeathsig (argv from
 * boundToParent), killed by the exit hooks while it runs, and killed at `lifetimeMs`
 * whatever happens. Its output streams (buffer: false); stdout and stderr stay apart.
 */
export function spawnBound(argv: readonly string[], lifetimeMs: number) {
  installExitHooks();
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('spawnBound: empty argv');
  const proc = execa(cmd, args, {
    timeout: lifetimeMs,
    killSignal: 'SIGKILL',
    reject: false,
    stdin: 'ignore',
    buffer: false,
  });
  const entry: Killable = { killNow: () => proc.kill('SIGKILL') };
  live.add(entry);
  const forget = (): void => {
    live.delete(entry);
  };
  proc.then(forget, forget);
  return proc;
}
