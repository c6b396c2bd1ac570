import type { Splat, SplatKind } from '../results/types.js';

/**
 * Kernel complaint detection on the serial console. The trigger lines are the
 * kernel's own report headers (lib/bug.c, mm/kasan/report.c, kernel/watchdog.c,
 * kernel/hung_task.c, kernel/rcu/tree_stall.h, kernel/panic.c, arch/x86/mm/fault.c).
 * One report usually prints several headers (BUG: ... then Oops:, or a WARNING
 * then a panic under panic_on_warn): headers inside an open report join it.
 */
const TRIGGERS: { kind: SplatKind; re: RegExp }[] = [
  { kind: 'kasan', re: /^BUG: KASAN: / },
  { kind: 'kfence', re: /^BUG: KFENCE: / },
  { kind: 'ubsan', re: /^UBSAN: / },
  { kind: 'soft-lockup', re: /^watchdog: BUG: soft lockup/ },
  { kind: 'hard-lockup', re: /[Ww]atchdog detected hard LOCKUP/ },
  { kind: 'hung-task', re: /^INFO: task .+ blocked for more than \d+ seconds/ },
  { kind: 'rcu-stall', re: /^rcu: INFO: \S+ (detected stalls|self-detected stall)/ },
  { kind: 'bug', re: /^kernel BUG at / },
  { kind: 'oops', re: /^BUG: (unable to handle|kernel NULL pointer dereference)/ },
  { kind: 'oops', re: /^Oops: / },
  { kind: 'oops', re: /^(general protection fault|stack segment|double fault)\b/ },
  { kind: 'bug', re: /^BUG: / },
  { kind: 'warning', re: /^WARNING: / },
  { kind: 'panic', re: /^Kernel panic - not syncing/ },
];

/** Lines that end a report (the report's own footer). */
const FOOTER = /^(---\[ end (trace|Kernel panic)|={20,}$)/;
const MAX_REPORT_LINES = 80;
const TIMESTAMP = /^\[\s*\d+\.\d+\]\s?/;
/** Markers the harness writes to /dev/kmsg around each test program. */
const MARK_BEGIN = /^faultline: begin (\S+)/;
const MARK_END = /^faultline: end (\S+)/;

export function stripConsolePrefix(line: string): string {
  return line.replace(/\r$/, '').replace(TIMESTAMP, '');
}

/** Incremental splat detector; feed it console lines as they arrive. */
export class SplatDetector {
  readonly splats: Splat[] = [];
  private open: { splat: Splat; lines: string[]; sawHeaderSeparator: boolean } | undefined;
  private currentTest: string | undefined;
  private lineNo = 0;

  /** The test program running (from the kmsg markers), if any. */
  get runningTest(): string | undefined {
    return this.currentTest;
  }

  push(rawLine: string): void {
    this.lineNo++;
    const line = stripConsolePrefix(rawLine);
    let m: RegExpExecArray | null;
    if ((m = MARK_BEGIN.exec(line))) {
      this.close();
      this.currentTest = m[1];
      return;
    }
    if ((m = MARK_END.exec(line))) {
      this.close();
      this.currentTest = undefined;
      return;
    }
    const trigger = TRIGGERS.find((t) => t.re.test(line));
    if (this.open) {
      this.open.lines.push(line);
      // A panic that follows a report is part of it, but upgrades its kind.
      if (trigger?.kind === 'panic') this.open.splat.kind = this.open.splat.kind === 'warning' ? 'panic' : this.open.splat.kind;
      if (FOOTER.test(line)) {
        // KASAN reports are framed by two ==== lines: the first opens, the second closes.
        if (/^=+$/.test(line) && !this.open.sawHeaderSeparator) this.open.sawHeaderSeparator = true;
        else return this.close();
      }
      if (this.open.lines.length >= MAX_REPORT_LINES) this.close();
      return;
    }
    if (!trigger) return;
    const splat: Splat = { kind: trigger.kind, title: line.trim(), excerpt: '', line: this.lineNo };
    if (this.currentTest !== undefined) splat.test = this.currentTest;
    this.splats.push(splat);
    // KASAN's header follows its first ==== line, so the separator was already seen.
    this.open = { splat, lines: [line], sawHeaderSeparator: trigger.kind === 'kasan' || trigger.kind === 'kfence' };
    if (trigger.kind === 'panic') this.close();
  }

  /** Finish an open report (end of input or a marker). */
  close(): void {
    if (!this.open) return;
    this.open.splat.excerpt = this.open.lines.join('\n');
    this.open = undefined;
  }
}

export function detectSplats(consoleText: string): Splat[] {
  const d = new SplatDetector();
  for (const l of consoleText.split('\n')) d.push(l);
  d.close();
  return d.splats;
}
