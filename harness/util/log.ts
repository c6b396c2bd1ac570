import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * Human progress goes to stderr so stdout stays clean for summaries and machine output.
 * An optional log file receives everything (including what quiet mode hides).
 */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
  /** Attach a file that receives every line from now on. */
  attachFile(path: string): void;
  close(): Promise<void>;
}

class StderrLogger implements Logger {
  private file: WriteStream | undefined;
  private readonly start = Date.now();
  constructor(private readonly verbose: boolean) {}

  private stamp(): string {
    return `[${((Date.now() - this.start) / 1000).toFixed(1).padStart(6)}s]`;
  }
  private write(level: string, msg: string, toStderr: boolean): void {
    const line = `${this.stamp()} ${level}${msg}`;
    if (toStderr) process.stderr.write(line + '\n');
    this.file?.write(line + '\n');
  }
  info(msg: string): void {
    this.write('', msg, true);
  }
  warn(msg: string): void {
    this.write('warning: ', msg, true);
  }
  debug(msg: string): void {
    this.write('debug: ', msg, this.verbose);
  }
  attachFile(path: string): void {
    this.file?.end();
    this.file = createWriteStream(path, { flags: 'a' });
  }
  close(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    if (!f) return Promise.resolve();
    return new Promise((resolve) => f.end(resolve));
  }
}

export let log: Logger = new StderrLogger(process.env['FAULTLINE_VERBOSE'] === '1');

export function setVerbose(verbose: boolean): void {
  log = new StderrLogger(verbose);
}
