/** The guest's OOM killer on the console: which process it killed, in the kernel's own line. */

/** "Out of memory: Killed process 123 (uffd-stress) total-vm:...": comm is cut to 15 characters. */
const OOM_KILL = /Out of memory: Killed process \d+ \(([^)]*)\)[^\n]*/;

export interface OomKill {
  /** The victim's comm, as the kernel printed it (at most 15 characters). */
  comm: string;
  /** The kernel's line. */
  line: string;
}

/** The first OOM kill in `consoleText`, if the OOM killer ran. */
export function oomKill(consoleText: string): OomKill | undefined {
  const m = OOM_KILL.exec(consoleText);
  return m ? { comm: m[1] ?? '', line: m[0].trim() } : undefined;
}

/** Whether an OOM kill's victim is `program` (the kernel cuts comm to 15 characters). */
export function killedProgram(kill: OomKill, program: string): boolean {
  return kill.comm === program.slice(0, 15);
}
