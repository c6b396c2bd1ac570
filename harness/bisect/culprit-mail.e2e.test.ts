import t from 'tap';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureKernelTestRepo, type KernelTestRepo } from '../testkit/kernel-repo.js';
import { ensureMinimalKernel } from '../testkit/minimal-kernel.js';
import { Git } from '../vcs/git.js';
import { run } from '../util/proc.js';
import { DEFAULT_REPORT_FROM, culpritMail, writeCulpritMail } from './culprit-mail.js';
import { readBisectRecord } from './record.js';
import type { RunRecord } from '../results/types.js';
import type { BisectCommand, BisectRecord } from './types.js';
import { parseAddress, type MailAddress } from '../util/rfc5322.js';

// Measured: 13 s here (two decoded call traces, get_maintainer.pl on the real tree); the deadline is above the slowest figure.
t.setTimeout(10 * 60_000);

/**
 * The culprit mail of two real bisects (the kernel-series e2e test's --splat and --test bisects,
 * results.json and the culprit's run record as they wrote them) on the real git history of
 * Debian's 6.12 tree they ran on: its MAINTAINERS and get_maintainer.pl name the recipients.
 */

const FIXTURES = join(import.meta.dirname, 'fixtures', 'culprit');
const FROM = parseAddress(DEFAULT_REPORT_FROM) as MailAddress;

let repo: KernelTestRepo;
let scratch: string;
let bzImage: string;
t.before(async () => {
  repo = await ensureKernelTestRepo();
  // The fixtures' kernel recipe (tinyconfig + minimal + uffd), built here once and cached.
  bzImage = (await ensureMinimalKernel({ selftests: false })).bzImage;
  scratch = await mkdtemp(join(tmpdir(), 'faultline-culprit-test-'));
});
t.teardown(() => rm(scratch, { recursive: true, force: true }));

/**
 * A fixture bisect moved onto this machine: its run records into the scratch folder (their
 * kernel, when given, this machine's build of the same recipe) and its commits onto the test
 * repository's (same subjects; the hashes follow Debian's point release).
 */
async function fixtureRecord(
  name: string,
  o: { bzImage?: string; command?: BisectCommand } = {},
): Promise<BisectRecord> {
  let text = await readFile(join(FIXTURES, name, 'results.json'), 'utf8');
  const r = JSON.parse(text) as BisectRecord;
  const git = new Git(repo.repo);
  const bySubject = new Map((await git.log(`${repo.base}..${repo.tip}`)).map((c) => [c.subject, c.hash]));
  bySubject.set((await git.commit(repo.base)).subject, repo.base);
  for (const s of r.steps) {
    const now = bySubject.get(s.subject);
    if (now) text = text.replaceAll(s.rev, now);
  }
  const runs = join(scratch, name, 'runs');
  for (const d of await readdir(join(FIXTURES, name, 'runs'))) {
    const run = JSON.parse(await readFile(join(FIXTURES, name, 'runs', d, 'results.json'), 'utf8')) as RunRecord;
    if (o.bzImage) run.kernel.path = o.bzImage;
    await mkdir(join(runs, d), { recursive: true });
    await writeFile(join(runs, d, 'results.json'), JSON.stringify(run));
    await copyFile(join(FIXTURES, name, 'runs', d, 'console.log'), join(runs, d, 'console.log'));
  }
  text = text.replace(/"\/tmp\/faultline-e2e-kseries-[^/]+\/[^/]+\/runs\//g, `"${runs}/`);
  const out = join(scratch, name, 'results.json');
  await writeFile(
    out,
    JSON.stringify({ ...(JSON.parse(text) as BisectRecord), ...(o.command ? { command: o.command } : {}) }),
  );
  return readBisectRecord(out);
}

function withCulprit(r: BisectRecord): BisectRecord & { culprit: NonNullable<BisectRecord['culprit']> } {
  if (!r.culprit) throw new Error('fixture has no culprit');
  return { ...r, culprit: r.culprit };
}

/** Headers and body as Python's email package (a real RFC 5322/2047 parser) reads them. */
async function parsed(mail: string): Promise<{ headers: Record<string, string>; body: string; defects: string[] }> {
  const py = [
    'import email, email.policy, json, sys',
    'm = email.message_from_binary_file(sys.stdin.buffer, policy=email.policy.default)',
    'print(json.dumps({"headers": {k: str(v) for k, v in m.items()}, "body": m.get_content(),',
    '  "defects": [repr(d) for d in m.defects] + [repr(d) for v in m.values() for d in getattr(v, "defects", [])]}))',
  ].join('\n');
  const r = await run('python3', ['-c', py], { input: mail, timeoutMs: 30_000 });
  return JSON.parse(r.stdout) as { headers: Record<string, string>; body: string; defects: string[] };
}

function headerLines(mail: string): string[] {
  return mail.slice(0, mail.indexOf('\n\n')).split('\n');
}

t.test('a --splat culprit: WARNING in the subject, fs maintainers from get_maintainer.pl, raw trace', async (t) => {
  const record = withCulprit(await fixtureRecord('splat', { bzImage }));
  t.equal(record.culprit.hash, repo.commits.splat, 'the fixture culprit is the test repo splat commit');
  const mail = await culpritMail({ record, git: new Git(repo.repo), tree: repo.repo, reportFrom: FROM });
  const m = await parsed(mail);
  t.same(m.defects, [], 'no parser defects');
  t.equal(
    m.headers.Subject,
    '[faultline] userfaultfd: catch UFFDIO_ZEROPAGE on a released context: WARNING in userfaultfd_ioctl',
  );
  t.equal(m.headers.To, 'faultline test <test@faultline.invalid>');
  t.equal(m.headers.From, 'faultline <faultline@localhost>');
  // fs/userfaultfd.c: VFS (Viro, Brauner, Kara, linux-fsdevel) and THE REST (linux-kernel), per 6.12's MAINTAINERS.
  for (const who of ['viro@zeniv.linux.org.uk', 'brauner@kernel.org', 'jack@suse.cz', 'linux-fsdevel@vger.kernel.org'])
    t.match(m.headers.Cc, who, `Cc ${who}`);
  t.notMatch(m.headers.Cc, 'test@faultline.invalid', 'the author (also the committer) is not on Cc');
  t.match(m.body, /result: warning: WARNING: CPU: \d PID: \d+ at fs\/userfaultfd\.c:1655 userfaultfd_ioctl/);
  t.match(
    m.body,
    /^Kernel report: WARNING: CPU: 1 PID: 82 at fs\/userfaultfd\.c:1655 userfaultfd_ioctl\+0x485\/0xd16\n\(\S+\/verify-culprit-d003ea0381c2-run1\/console\.log, line 256\)$/m,
  );
  t.match(
    m.body,
    /^Not decoded: vmlinux has no debug info: build with CONFIG_DEBUG_INFO for file:line\.\n\n {2}-+\[ cut here \]-+\n(.*\n)* {2}Call Trace:\n(.*\n)* {3}\? vfs_ioctl\+0x16\/0x23$/m,
  );
  t.match(
    m.body,
    /^Confidence 0\.\d{3} = P\(parent good\) x P\(culprit bad\); parent \w{12} good, culprit bad, the revert on \w{12} good: verified\.$/m,
  );
  t.match(m.body, /^steps \(\d+ revisions tested: .*\n( {2}.*\n)*\s+\d+\. verify-culprit +\w{12} bad {2}conf /m);
  t.match(
    m.body,
    /^Reproduce .*\n {2}faultline bisect --kernel-src \S+ --good \w{40} --bad \w{40} --splat '\^WARNING: \.\* userfaultfd_\(ioctl\|zeropage\)\\\+'$/m,
  );
  t.match(m.body, /^Reported-by: faultline <faultline@localhost>$/m);
  t.notMatch(m.body, /^Closes:/m, 'no Closes: without a report URL');
  for (const l of headerLines(mail)) t.ok(l.length <= 78, `header line within 78 characters: ${l}`);
});

t.test('a --test culprit: the subtest in the subject, fs maintainers, the command and kernel recorded', async (t) => {
  const command = {
    cwd: '/work/a dir',
    argv: ['faultline', 'bisect', '--kernel-src', 'linux', '--test', 'uffd-unit-tests:zeropage/anon'],
  };
  const record = withCulprit(await fixtureRecord('subtest', { bzImage, command }));
  const out = join(scratch, 'results-subtest');
  await mkdir(out);
  const path = await writeCulpritMail(
    { record, git: new Git(repo.repo), tree: repo.repo, reportFrom: FROM, reportUrl: 'https://ci.example.org/r/1' },
    out,
  );
  const mail = await readFile(path, 'utf8');
  const m = await parsed(mail);
  t.same(m.defects, []);
  t.equal(
    m.headers.Subject,
    '[faultline] userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly: uffd-unit-tests zeropage/anon fails',
  );
  // The culprit changes fs/userfaultfd.c: the VFS maintainers and list, and no mm people.
  t.match(m.headers.Cc, /brauner@kernel\.org.*linux-fsdevel@vger\.kernel\.org/);
  t.notMatch(m.headers.Cc, 'linux-mm@kvack.org');
  t.match(m.body, /result: error: crashed: ERROR: UFFDIO_ZEROPAGE error: 0 \(errno=22, @uffd-unit-tests\.c:917\)/);
  t.match(
    m.body,
    `Reproduce\n  cd '/work/a dir' && faultline bisect --kernel-src linux --test uffd-unit-tests:zeropage/anon\n`,
  );
  t.match(
    m.body,
    /^ {2}config: +tinyconfig \+ minimal\.config \+ uffd\.config \(faultline kconfigs\/; \.config sha256 [0-9a-f]{16}\)$/m,
  );
  t.match(m.body, /^ {2}compiler: gcc /m);
  t.match(m.body, /^Closes: https:\/\/ci\.example\.org\/r\/1$/m);
  const info = await run('git', ['mailinfo', join(scratch, 'msg'), join(scratch, 'patch')], {
    input: mail,
    timeoutMs: 30_000,
  });
  t.equal(info.exitCode, 0, 'git mailinfo accepts it');
  t.match(info.stdout, /^Subject: userfaultfd: reject unknown UFFDIO_ZEROPAGE modes explicitly: uffd-unit-tests/m);
  t.match(info.stdout, /^Email: faultline@localhost$/m);
});

/**
 * A culprit with review tags and a non-ASCII author: the same change committed again in a
 * scratch repository that borrows the test repository's objects (git alternates).
 */
async function taggedCulprit(): Promise<{ git: Git; hash: string }> {
  const dir = join(scratch, 'tagged');
  await run('git', ['init', '-q', dir], { timeoutMs: 30_000 });
  await writeFile(join(dir, '.git', 'objects', 'info', 'alternates'), `${join(repo.repo, '.git', 'objects')}\n`);
  const message = [
    'mm/userfaultfd: note why mfill retries',
    '',
    'Test patch of the culprit mail test.',
    '',
    'Signed-off-by: Zoë Ångström <zoe@example.org>',
    'Reviewed-by: "Doe, Jane" <jane@example.org>',
    'Acked-by: Zoe Angstrom <ZOE@EXAMPLE.ORG>',
    'Tested-by: Committer Person <committer@example.org>',
    'Signed-off-by: Committer Person <committer@example.org>',
  ].join('\n');
  const env = {
    GIT_AUTHOR_NAME: 'Zoë Ångström',
    GIT_AUTHOR_EMAIL: 'zoe@example.org',
    GIT_AUTHOR_DATE: '2026-01-02T00:00:00Z',
    GIT_COMMITTER_NAME: 'Committer Person',
    GIT_COMMITTER_EMAIL: 'committer@example.org',
    GIT_COMMITTER_DATE: '2026-01-02T00:00:00Z',
  };
  const c = repo.commits.comment;
  const r = await run('git', ['-C', dir, 'commit-tree', `${c}^{tree}`, '-p', `${c}~1`, '-m', message], {
    env,
    timeoutMs: 60_000,
  });
  return { git: new Git(dir), hash: r.stdout.trim() };
}

t.test('tags on Cc once each, RFC 2047 names, a tree without get_maintainer.pl said in the notes', async (t) => {
  const { git, hash } = await taggedCulprit();
  const base = withCulprit(await fixtureRecord('subtest'));
  const culprit = { ...base.culprit, hash, authorName: 'Zoë Ångström', authorEmail: 'zoe@example.org' };
  const record = { ...base, culprit };
  const noScripts = join(scratch, 'not-a-kernel-tree');
  await mkdir(noScripts, { recursive: true });
  const without = await culpritMail({ record, git, tree: noScripts, reportFrom: FROM });
  t.match(
    without,
    /^Notes\n {2}\S+ has no scripts\/get_maintainer\.pl and MAINTAINERS: maintainers and lists not added$/m,
  );
  const mail = await culpritMail({
    record,
    git,
    tree: repo.repo,
    reportFrom: { name: 'Ärger CI', addr: 'ci@example.org' },
  });
  for (const l of headerLines(mail)) {
    t.ok(l.length <= 78, `header line within 78 characters: ${l}`);
    t.ok(/^[\x20-\x7e]*$/.test(l), `header line is ASCII: ${l}`);
  }
  t.match(mail, /^To: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?= <zoe@example\.org>$/m, 'the author name is an encoded word');
  const m = await parsed(mail);
  t.same(m.defects, []);
  t.equal(m.headers.To, 'Zoë Ångström <zoe@example.org>');
  t.equal(m.headers.From, 'Ärger CI <ci@example.org>');
  const cc = m.headers.Cc ?? '';
  t.match(
    cc,
    /^Committer Person <committer@example\.org>, "Doe, Jane" <jane@example\.org>, /,
    'committer, then the tags in order',
  );
  t.equal(cc.match(/committer@example\.org/gi)?.length, 1, 'committer, Tested-by and Signed-off-by once');
  t.notMatch(cc, /zoe@example\.org/i, 'the author (To) is not Cc, in any case');
  t.match(cc, 'akpm@linux-foundation.org', 'get_maintainer.pl on the commit-tree copy of the mm/ patch');
  t.match(m.body, /^Reported-by: Ärger CI <ci@example\.org>$/m);
  const info = await run('git', ['mailinfo', join(scratch, 'msg2'), join(scratch, 'patch2')], {
    input: mail,
    timeoutMs: 30_000,
  });
  t.match(info.stdout, /^Author: Ärger CI$/m, 'git mailinfo decodes the RFC 2047 From');
});
