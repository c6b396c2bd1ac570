import { run, type RunResult } from '../util/proc.js';

/**
 * git's own mail tools, which `git am` runs: a series is split and decoded exactly as it will be
 * applied. Neither needs a repository. The caller reads the exit code (a mail git cannot read is
 * the input's fault, not faultline's).
 */
const MAIL_ENV = { LC_ALL: 'C' };

/** `git mailsplit -b`: one numbered file per mail of `mbox` in `outDir`. */
export function splitMbox(mbox: string, outDir: string): Promise<RunResult> {
  return run('git', ['mailsplit', '-b', `-o${outDir}`, mbox], { timeoutMs: 60_000, allowFailure: true, env: MAIL_ENV });
}

/** `git mailinfo`: the decoded message to `msgFile`, the patch to `patchFile`, the headers on stdout. */
export function mailInfo(mail: string, msgFile: string, patchFile: string): Promise<RunResult> {
  return run('git', ['mailinfo', msgFile, patchFile], {
    inputFile: mail,
    timeoutMs: 60_000,
    allowFailure: true,
    env: MAIL_ENV,
  });
}
