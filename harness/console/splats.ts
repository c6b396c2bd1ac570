import type { Splat, SplatKind } from '../results/types.js';

/**
 * Kernel complaint detection on the serial console. The trigger lines are the
 * kernel's own report headers (lib/bug.c, mm/kasan/report.c, kernel/watchdog.c,
 * kernel/hung_task.c, kernel/rcu/tree_stall.h, kernel/panic.c, arch/x86/mm/fault.c).
 * One report can print several headers (BUG: ... then Oops:, or a WARNING then
 * a panic under panic_on_warn): an Oops header joins an open BUG/oops report and
 * a panic joins whatever report is open; any other header starts a new report.
 * `stackEnd`: the report has no footer of its own (dump_stack() style) and ends
 * with its stack dump, so it is closed at the trace's closing </TASK>.
 */
const TRIGGERS: { kind: SplatKind; re: RegExp; stackEnd?: true }[] = [
  { kind: 'kasan', re: /^BUG: KASAN: / },
  { kind: 'kfence', re: /^BUG: KFENCE: / },
  { kind: 'ubsan', re: /^UBSAN: / },
  { kind: 'soft-lockup', re: /^watchdog: BUG: soft lockup/, stackEnd: true },
  { kind: 'hard-lockup', re: /[Ww]atchdog detected hard LOCKUP/, stackEnd: true },
  { kind: 'hung-task', re: /^INFO: task .+ blocked for more than \d+ seconds/, stackEnd: true },
  { kind: 'rcu-stall', re: /^rcu: INFO: \S+ (detected stalls|self-detected stall)/, stackEnd: true },
  { kind: 'bug', re: /^kernel BUG at / },
  { kind: 'oops', re: /^BUG: (unable to handle|kernel NULL pointer dereference)/ },
  { kind: 'oops', re: /^Oops: / },
  { kind: 'oops', re: /^(general protection fault|stack segment|double fault)\b/ },
  { kind: 'bug', re: /^BUG: /, stackEnd: true },
  { kind: 'warning', re: /^WARNING: / },
  { kind: 'panic', re: /^Kernel panic - not syncing/ },
];

/** Lines that end a report (the report's own footer). */
const FOOTER = /^(---\[ end (trace|Kernel panic)|={20,}$)/;
/** Bound on an excerpt whose end never comes; a generic KASAN report alone runs to ~90 lines. */
const MAX_REPORT_LINES = 200;
/** End of a stack dump: the last line of a footer-less report. */
const STACK_END = /^\s*<\/TASK>$/;
/** WARN/BUG/UBSAN print this just before their header (and the WARN message): the report starts here. */
const CUT_HERE = /^-+\[ cut here \]-+$/;
const MAX_CUT_HERE_LEAD = 10;
/**
 * A panic this soon after a report's end is that report's consequence (panic_on_oops:
 * x86 reprints the registers after "end trace", then panics; softlockup_panic, hung_task_panic).
 */
const MAX_PANIC_LAG = 20;
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
  private open: { splat: Splat; lines: string[]; sawHeaderSeparator: boolean; stackEnd: boolean } | undefined;
  /** Lines since the last "cut here" outside a report, which lead into the next header. */
  private cutHere: string[] | undefined;
  /** The report that just ended (footer or stack end) and the lines since: a panic right after joins it. */
  private ended: { splat: Splat; lines: string[]; lag: number } | undefined;
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
    if (MARK_END.test(line)) {
      this.close();
      this.currentTest = undefined;
      return;
    }
    const trigger = TRIGGERS.find((t) => t.re.test(line));
    if (this.open && trigger && !this.continues(trigger.kind)) this.close();
    if (this.open) {
      this.open.lines.push(line);
      // A panic that follows a report is part of it, but upgrades its kind.
      if (trigger?.kind === 'panic')
        this.open.splat.kind = this.open.splat.kind === 'warning' ? 'panic' : this.open.splat.kind;
      if (FOOTER.test(line)) {
        // KASAN reports are framed by two ==== lines: the first opens, the second closes.
        if (/^=+$/.test(line) && !this.open.sawHeaderSeparator) this.open.sawHeaderSeparator = true;
        else return this.end();
      }
      if (this.open.stackEnd && STACK_END.test(line)) return this.end();
      if (this.open.lines.length >= MAX_REPORT_LINES) this.close();
      return;
    }
    const ended = this.ended;
    this.ended = undefined;
    if (ended && trigger?.kind === 'panic') {
      // Reopen the report the panic belongs to (kind upgraded as for a panic inside it).
      if (ended.splat.kind === 'warning') ended.splat.kind = 'panic';
      ended.lines.push(line);
      this.open = { splat: ended.splat, lines: ended.lines, sawHeaderSeparator: true, stackEnd: false };
      return;
    }
    if (!trigger) {
      if (ended && ended.lag < MAX_PANIC_LAG) {
        ended.lines.push(line);
        this.ended = { ...ended, lag: ended.lag + 1 };
      }
      if (CUT_HERE.test(line)) this.cutHere = [line];
      else if (this.cutHere)
        this.cutHere = this.cutHere.length < MAX_CUT_HERE_LEAD ? [...this.cutHere, line] : undefined;
      return;
    }
    const splat: Splat = { kind: trigger.kind, title: line.trim(), excerpt: '', line: this.lineNo };
    if (this.currentTest !== undefined) splat.test = this.currentTest;
    this.splats.push(splat);
    const lead = this.cutHere ?? [];
    this.cutHere = undefined;
    this.open = {
      splat,
      lines: [...lead, line],
      // KASAN's header follows its first ==== line, so the separator was already seen.
      sawHeaderSeparator: trigger.kind === 'kasan' || trigger.kind === 'kfence',
      stackEnd: trigger.stackEnd === true,
    };
  }

  /** Whether a header of `kind` belongs to the open report rather than starting a new one. */
  private continues(kind: SplatKind): boolean {
    if (kind === 'panic') return true;
    // BUG: unable to handle ... / kernel BUG at ... are followed by their Oops: line.
    const openKind = this.open?.splat.kind;
    return kind === 'oops' && (openKind === 'oops' || openKind === 'bug') && !this.open?.stackEnd;
  }

  /** The open report reached its last line. */
  private end(): void {
    const open = this.open;
    this.close();
    if (open) this.ended = { splat: open.splat, lines: open.lines, lag: 0 };
  }

  /** Finish an open report (end of input or a marker). */
  close(): void {
    this.cutHere = undefined;
    this.ended = undefined;
    if (!this.open) return;
    this.open.splat.excerpt = this.open.lines.join('\n');
    this.open = undefined;
  }
}

export function detectSplats(consoleText: string): Splat[] {
  const d = new SplatDetector();
  const lines = consoleText.split('\n');
  // A final newline ends the last line; it does not start an empty one.
  if (lines.at(-1) === '') lines.pop();
  for (const l of lines) d.push(l);
  d.close();
  return d.splats;
}
