import { errorMessage, FaultlineError } from '../util/errors.js';
import { SshSession } from '../ssh/transport.js';
import { freePort, Guest } from '../vm/guest.js';
import type { QemuConfig } from '../vm/qemu-args.js';

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
  opts: { consolePath: string; bootTimeoutSec: number; keys: { clientPrivate: string; hostPublic: string }; lifetimeMs?: number },
): Promise<BootedGuest> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const guest = await Guest.start({ ...config, sshPort: port }, { consolePath: opts.consolePath, lifetimeMs: opts.lifetimeMs ?? 6 * 3600_000 });
    const started = guest.startedAt;
    try {
      const ssh = await SshSession.connect(
        { host: '127.0.0.1', port, username: 'root', privateKey: opts.keys.clientPrivate, hostPublicKey: opts.keys.hostPublic },
        started + opts.bootTimeoutSec * 1000,
        () => (guest.running ? undefined : `QEMU exited during boot (exit ${String(guest.exitInfo?.exitCode)})`),
      );
      // sshd starts before init has reserved hugepages: ready means init is done too.
      await ssh.check('i=0; while [ ! -e /run/faultline-ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /run/faultline-ready', 90_000);
      return { guest, ssh, port, bootMs: Date.now() - started };
    } catch (e) {
      await guest.stop();
      if (attempt < 2 && /Could not set up host forwarding rule/.test(guest.console.all)) continue;
      throw new FaultlineError(`${errorMessage(e)}; guest console (last 30 lines) follows`, { detail: guest.console.lastLines(30) });
    }
  }
}
