/**
 * A kernel build's progress: the steps and the make lines as they come, and the count of
 * compiled units (the next build's percentage). Here as plain log lines, or nothing; a terminal
 * display (one updating line) is the CLI's: it hands in a factory of its own subclass.
 */
import { secs } from '../util/format.js';
import { log } from '../util/log.js';

export class Progress {
  protected step = '';
  protected stepStart = Date.now();
  protected last = '';
  private units = 0;
  private lastPlain = Date.now();

  constructor(
    /** 'plain' logs the steps and, every 30 s, where make is; 'off' only counts. */
    private readonly mode: 'plain' | 'off',
    protected readonly expectedUnits: number,
  ) {}

  begin(step: string): void {
    this.end();
    this.step = step;
    this.stepStart = Date.now();
    this.last = '';
    if (this.mode === 'plain') log.info(`build: ${step}`);
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

  /** "42% (1234/~2900 CC)" against the last build's count, or the count alone. */
  protected count(): string {
    if (this.units === 0) return '';
    return this.expectedUnits > 0
      ? `${Math.min(99, Math.floor((100 * this.units) / this.expectedUnits))}% (${this.units}/~${this.expectedUnits} CC)`
      : `${this.units} CC`;
  }

  end(): void {
    if (this.mode === 'plain' && this.step)
      log.info(`build: ${this.step} done in ${secs(Date.now() - this.stepStart)}`);
    this.step = '';
  }

  get compiled(): number {
    return this.units;
  }
}

/** A progress display of the caller's (the CLI's terminal line), made per build with the expected unit count. */
export type ProgressFactory = (expectedUnits: number) => Progress;

/** How a build shows its progress: plain log lines (the default), nothing, or the caller's display. */
export type ProgressMode = 'plain' | 'off' | ProgressFactory;

export function progressOf(mode: ProgressMode | undefined, expectedUnits: number): Progress {
  return typeof mode === 'function' ? mode(expectedUnits) : new Progress(mode ?? 'plain', expectedUnits);
}
