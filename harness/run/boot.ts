import { errorMessage, FaultlineError } from '../util/errors.js';
import { SshSession } from '../ssh/transport.js';
import { freePort, Guest } from '../vm/guest.js';
import type { QemuConfig } from '../vm/qemu-args.js';
import type { Splat } from '../results/types.js';

/** What images/init.sh prints once sshd is listening (the rest of its setup overlaps the handshake). */
const INIT_SSHD_UP = /faultline-init: (sshd-up|ready)/;

/** The guest never became ready; `splats` are what its console showed (a panic at boot is the kernel's failure). */
export class BootFailure extends FaultlineError {
  constructor(
    message: string,
    consoleTail: string,
    readonly splats: readonly Splat[],
  ) {
    super(message, { detail: consoleTail });
    this.name = 'BootFailure';
  }
}

export interface BootedGuest {
  guest: Guest;
  ssh: SshSession;
  port: number;
  /** QEMU start to "ready for tests" (sshd answered and init finished its setup). */
  bootMs: number;
}

/**
 * Boot a guest and wait until it can run tests: sshd answers and init has finished
 * (/run/faultline-ready). Retried once when QEMU loses the free-port race. On failure
 * QEMU is stopped and the error carries the last 30 console lines.
 */
export async function bootGuest(
  config: Omit<QemuConfig, 'sshPort'>,
  opts: {
    consolePath: string;
    bootTimeoutSec: number;
    keys: { clientPrivate: string; hostPublic: string };
    lifetimeMs?: number;
    appendConsole?: boolean;
  },
): Promise<BootedGuest> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const guest = await Guest.start(
      { ...config, sshPort: port },
      {
        consolePath: opts.consolePath,
        lifetimeMs: opts.lifetimeMs ?? 6 * 3600_000,
        appendConsole: opts.appendConsole ?? false,
      },
    );
    const started = guest.startedAt;
    const deadline = started + opts.bootTimeoutSec * 1000;
    try {
      // Connect only once init says sshd is up: a SYN sent before the guest network
      // exists is lost, and TCP's retransmit backoff then costs seconds after sshd listens.
      const ready = await Promise.race([
        guest.console.waitFor(INIT_SSHD_UP, Math.max(0, deadline - Date.now())),
        guest.exited.then(() => undefined),
      ]);
      if (!ready && !guest.running)
        throw new FaultlineError(`QEMU exited during boot (exit ${String(guest.exitInfo?.exitCode)})`);
      const ssh = await SshSession.connect(
        {
          host: '127.0.0.1',
          port,
          username: 'root',
          privateKey: opts.keys.clientPrivate,
          hostPublicKey: opts.keys.hostPublic,
        },
        Math.max(deadline, Date.now() + 1000),
        () => (guest.running ? undefined : `QEMU exited during boot (exit ${String(guest.exitInfo?.exitCode)})`),
      );
      // sshd starts before init has reserved hugepages: ready means init is done too.
      await ssh.check(
        'i=0; while [ ! -e /run/faultline-ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /run/faultline-ready',
        90_000,
      );
      return { guest, ssh, port, bootMs: Date.now() - started };
    } catch (e) {
      await guest.stop();
      if (attempt < 2 && /Could not set up host forwarding rule/.test(guest.console.all)) continue;
      guest.console.detector.close();
      throw new BootFailure(
        `${errorMessage(e)}; guest console (last 30 lines) follows`,
        guest.console.lastLines(30),
        guest.console.detector.splats,
      );
    }
  }
}
