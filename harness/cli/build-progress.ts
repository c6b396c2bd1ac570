/**
 * The kernel build's terminal display: one line on stderr, redrawn every half second, with the
 * step, its time, the compiled units against the last build's count, and make's last line.
 */
import { Progress, type ProgressMode } from '../kernel/build-progress.js';
import { secs } from '../util/format.js';
import { log } from '../util/log.js';

class TerminalProgress extends Progress {
  private readonly start = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(expectedUnits: number) {
    super('off', expectedUnits);
  }

  override begin(step: string): void {
    super.begin(step);
    this.draw();
    this.timer = setInterval(() => this.draw(), 500);
    this.timer.unref();
  }

  private draw(): void {
    const cols = process.stderr.columns ?? 100;
    const text = [
      `[build ${secs(Date.now() - this.start)}]`,
      this.step,
      secs(Date.now() - this.stepStart),
      this.count(),
      this.last,
    ]
      .filter((x) => x !== '')
      .join(' ');
    process.stderr.write(`\r\x1b[K${text.slice(0, Math.max(20, cols - 1))}`);
  }

  override end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.step) {
      process.stderr.write(`\r\x1b[K`);
      log.info(`build: ${this.step} done in ${secs(Date.now() - this.stepStart)}`);
    }
    super.end();
  }
}

/** --progress as the build takes it: auto is the terminal line on a TTY, plain lines otherwise. */
export function buildProgress(flag: 'auto' | 'plain' | 'tty' | 'off' = 'auto'): ProgressMode {
  const tty = flag === 'tty' || (flag === 'auto' && process.stderr.isTTY);
  return tty ? (n: number) => new TerminalProgress(n) : flag === 'off' ? 'off' : 'plain';
}
