import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exists } from '../util/fsutil.js';
import { gitReason, treeWithGitDir, type Git } from '../vcs/git.js';
import { tail } from '../util/proc.js';
import { runMaybeSandboxed, treeSandbox } from '../util/sandbox.js';
import { addressKey, parseAddress, type MailAddress } from '../util/rfc5322.js';

/**
 * Who a culprit report goes to, as KernelCI derives it: the author, then the committer, the
 * people in the commit's tags, and the maintainers and lists the tree's own get_maintainer.pl
 * names for the patch.
 */

export interface Recipients {
  to: MailAddress;
  cc: MailAddress[];
  /** What could not be asked (no get_maintainer.pl, it failed): said in the mail's notes. */
  notes: string[];
}

/** The tags whose people take part in a patch's review and so hear about its regression. */
const TAGS = /^\s*(Signed-off-by|Reviewed-by|Acked-by|Tested-by):\s*(.+?)\s*$/gim;

const GET_MAINTAINER_TIMEOUT_MS = 120_000;

/** The committer and every tagged person of a commit, in the order the commit names them. */
async function commitPeople(git: Git, rev: string): Promise<MailAddress[]> {
  const out = (await git.exec(['show', '-s', '--format=%cn <%ce>%x00%B', rev])).stdout;
  const [committer = '', body = ''] = out.split('\0');
  const people = [committer, ...[...body.matchAll(TAGS)].map((m) => m[2] ?? '')];
  return people.map(parseAddress).filter((a): a is MailAddress => a !== undefined);
}

/**
 * The addresses get_maintainer.pl names for the culprit's patch. Offline and without history:
 * --no-git/--no-git-fallback keep it from reading the log for "recent committers", and the
 * MAINTAINERS and .mailmap it reads are the tree's own files.
 */
async function maintainersOf(git: Git, tree: string, rev: string): Promise<{ people: MailAddress[]; note?: string }> {
  const script = join(tree, 'scripts', 'get_maintainer.pl');
  if (!(await exists(script)) || !(await exists(join(tree, 'MAINTAINERS'))))
    return {
      people: [],
      note: `${tree} has no scripts/get_maintainer.pl and MAINTAINERS: maintainers and lists not added`,
    };
  const patch = await git.exec(['format-patch', '-1', '--stdout', rev], { allowFailure: true });
  if (patch.exitCode !== 0)
    return { people: [], note: `git format-patch -1 ${rev} failed (${gitReason(patch)}): maintainers not added` };
  const dir = await mkdtemp(join(tmpdir(), 'faultline-culprit-'));
  try {
    const file = join(dir, 'culprit.patch');
    await writeFile(file, patch.stdout);
    // One address per line (its default output); no roles, so every line is an address. The
    // script is the bisected tree's own code: in the build sandbox (issue 24).
    const r = await runMaybeSandboxed(
      'perl',
      [script, '--no-git', '--no-git-fallback', '--no-rolestats', file],
      { cwd: tree, timeoutMs: GET_MAINTAINER_TIMEOUT_MS, allowFailure: true },
      treeSandbox(await treeWithGitDir(tree), [], [file]),
    );
    if (r.exitCode !== 0 || r.timedOut) {
      const why = r.timedOut ? `timed out after ${GET_MAINTAINER_TIMEOUT_MS / 1000} s` : `exit ${r.exitCode}`;
      return { people: [], note: `scripts/get_maintainer.pl failed (${why}: ${tail(r.stderr, 2).trim()})` };
    }
    const people = r.stdout.split('\n').map(parseAddress);
    return { people: people.filter((a): a is MailAddress => a !== undefined) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** To the author; Cc everyone else once (by address, case-insensitively), the author never twice. */
export async function culpritRecipients(
  git: Git,
  tree: string,
  culprit: { hash: string; authorName: string; authorEmail: string },
): Promise<Recipients> {
  const to: MailAddress = { name: culprit.authorName, addr: culprit.authorEmail };
  const maint = await maintainersOf(git, tree, culprit.hash);
  const seen = new Set([addressKey(to)]);
  const cc: MailAddress[] = [];
  for (const a of [...(await commitPeople(git, culprit.hash)), ...maint.people]) {
    if (seen.has(addressKey(a))) continue;
    seen.add(addressKey(a));
    cc.push(a);
  }
  return { to, cc, notes: maint.note ? [maint.note] : [] };
}
