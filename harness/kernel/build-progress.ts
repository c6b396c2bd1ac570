/** A kernel build's progress: one updating line on a TTY, plain log lines otherwise. */
import { secs } from '../util/format.js';
import { log } from '../util/log.js';

/** 'auto' (TTY: one updating line; else plain lines), 'plain', 'tty', 'off'. */
export type ProgressMode = 'auto' | 'plain' | 'tty' | 'off';

export class Progress {
  private step = '';
  private stepStart = Date.now();
  private readonly start = Date.now();
  private last = '';
  private units = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastPlain = Date.now();
  private readonly mode: 'tty' | 'plain' | 'off';

  constructor(
    mode: ProgressMode | undefined,
    private readonly expectedUnits: number,
  ) {
    const m = mode ?? 'auto';
    this.mode = m === 'auto' ? (process.stderr.isTTY ? 'tty' : 'plain') : m;
  }

  begin(step: string): void {
    this.end();
    this.step = step;
    this.stepStart = Date.now();
    this.last = '';
    if (this.mode === 'plain') log.info(`build: ${step}`);
    if (this.mode === 'tty') {
      this.draw();
      this.timer = setInterval(() => this.draw(), 500);
      this.timer.unref();
    }
  }

  /** A line of make output: "  CC      mm/userfaultfd.o". */
  line(l: string): void {
    const m = /^\s{2}([A-Z][A-Z0-9_]*(?: \[[A-Z]\])?)\s+(\S.*)$/.exec(l);
    if (!m) return;
    if (m[1] === 'CC') this.units++;
    this.last = `${m[1]} ${m[2]}`;
    if (this.mode === 'plain' && Date.now() - this.lastPlain >= 30_000) {
      this.lastPlain = Date.now();
      log.info(
        ['build:', `${this.step}:`, secs(Date.now() - this.stepStart), this.count(), `(${this.last})`]
          .filter((x) => x !== '')
          .join(' '),
      );
    }
  }

  private count(): string {
    if (this.units === 0) return '';
    return this.expectedUnits > 0
      ? `${Math.min(99, Math.floor((100 * this.units) / this.expectedUnits))}% (${this.units}/~${this.expectedUnits} CC)`
      : `${this.units} CC`;
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

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'tty' && this.step) process.stderr.write(`\r\x1b[K`);
    if (this.mode !== 'off' && this.step) {
      const msg = `build: ${this.step} done in ${secs(Date.now() - this.stepStart)}`;
      if (this.mode === 'plain' || this.mode === 'tty') log.info(msg);
    }
    this.step = '';
  }

  get compiled(): number {
    return this.units;
  }
}
