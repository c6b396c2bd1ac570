import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readArtifacts } from '../kernel/build-metadata.js';
import { readRunRecord } from '../results/record.js';
import type { RunRecord, Splat } from '../results/types.js';
import { exists, sha256File, writeFileAtomic } from '../util/fsutil.js';
import type { Git } from '../vcs/git.js';
import { shellLine, shellQuote } from '../util/proc.js';
import { decodeStackTrace, hasCallTrace } from '../console/stack-trace.js';
import { addressHeader, textHeader, type MailAddress } from '../util/rfc5322.js';
import { culpritRecipients } from './recipients.js';
import { formatSteps } from './report.js';
import { specKindOf } from './spec.js';
import type { BisectRecord, RunObservation, StepRecord } from './types.js';

/**
 * The culprit report (culprit.eml), ready to send as 0-day and KernelCI send theirs: to the
 * culprit's author with the reviewers, maintainers and lists on Cc, saying what fails, how sure
 * the bisect is and how to reproduce it, with the tags the fix should carry. Written, never sent.
 */

export const CULPRIT_MAIL = 'culprit.eml';
export const DEFAULT_REPORT_FROM = 'faultline <faultline@localhost>';

export interface CulpritMailInput {
  record: BisectRecord & { culprit: NonNullable<BisectRecord['culprit']> };
  /** A repository holding the culprit commit (format-patch, its tags). */
  git: Git;
  /** The kernel tree whose scripts/get_maintainer.pl and decode_stacktrace.sh are used (the culprit's). */
  tree: string;
  /** From: and Reported-by: identity. */
  reportFrom: MailAddress;
  /** Where the report is published, when it is: Closes:/Link: trailers. */
  reportUrl?: string;
  date?: Date;
}

/** The culprit's failing run as verification saw it (a bisect-step run when verification reused one). */
function culpritFailure(r: CulpritMailInput['record']): { step?: StepRecord; run?: RunObservation } {
  const steps = r.steps.filter((s) => s.rev === r.culprit.hash);
  const step = steps.find((s) => s.role === 'verify-culprit') ?? steps[0];
  const failing = (s: StepRecord | undefined): RunObservation | undefined => s?.runs.find((x) => x.result === 'fail');
  const run = failing(step) ?? steps.map(failing).find((x) => x !== undefined);
  return { ...(step ? { step } : {}), ...(run ? { run } : {}) };
}

async function runRecordOf(o: RunObservation | undefined): Promise<RunRecord | undefined> {
  if (!o?.runDir || !(await exists(join(o.runDir, 'results.json')))) return undefined;
  return readRunRecord(join(o.runDir, 'results.json'));
}

/** The splat the verdict is about: the one the failing run's detail names, else the first unexplained one. */
function splatOf(rec: RunRecord | undefined, detail: string | undefined): Splat | undefined {
  const splats = (rec?.splats ?? []).filter((s) => s.known === undefined);
  return splats.find((s) => detail?.includes(s.title)) ?? splats[0];
}

/** "WARNING in userfaultfd_ioctl" for a WARN, else the title without addresses and offsets. */
function splatHeadline(title: string): string {
  const warn = /^WARNING: .* at \S+ ([\w.]+)\+0x[0-9a-f]+\/0x[0-9a-f]+/.exec(title);
  if (warn) return `WARNING in ${warn[1] ?? ''}`;
  return title.replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/g, '').replace(/, address: \S+$/, '');
}

/** What broke, for the subject: the splat, or the spec (its program, test and backing). */
function whatBroke(r: BisectRecord, splat: Splat | undefined): string {
  const kind = specKindOf(r.spec);
  if (splat && (kind === 'splat' || kind === 'program')) return splatHeadline(splat.title);
  if (kind === 'subtest') return `${r.spec.replace(':', ' ')} fails`;
  if (kind === 'metric') return r.spec.replace(':', ' ').replace(' --', ' ');
  if (kind === 'program') return `${r.spec.replace(/--program /g, '')} fails`;
  return `${r.spec} fails`;
}

const valuesOf = (s: StepRecord | undefined): string =>
  (s?.runs ?? [])
    .filter((x) => x.value !== undefined)
    .map((x) => `${x.value}${x.unit ?? ''}`)
    .join(' ') || 'none';

/** "What fails": the run's verdict, a metric's values at parent and culprit, the splat. */
function failureSection(r: CulpritMailInput['record'], detail: string | undefined, splat: string[]): string[] {
  const out = ['What fails', `  test:   ${r.spec}`, `  runs:   ${r.tester}`];
  if (detail) out.push(`  result: ${detail}`);
  if (specKindOf(r.spec) === 'metric') {
    const parent = r.steps.find((s) => s.role === 'verify-parent');
    const culprit = r.steps.find((s) => s.role === 'verify-culprit');
    out.push(`  good (parent ${r.verification?.parent.slice(0, 12) ?? '?'}): ${valuesOf(parent)}`);
    out.push(`  bad (culprit ${r.culprit.hash.slice(0, 12)}):  ${valuesOf(culprit)}`);
  }
  return [...out, ...(splat.length ? ['', ...splat] : []), ''];
}

/** The obj dir in the worktree whose bzImage is the one the culprit's run booted: its vmlinux matches. */
async function culpritVmlinux(tree: string, bzImage: string): Promise<string | undefined> {
  const want = await sha256File(bzImage);
  for (const d of (await readdir(tree).catch(() => [])).filter((n) => n.startsWith('.faultline-obj-'))) {
    const obj = join(tree, d);
    const built = join(obj, 'arch', 'x86', 'boot', 'bzImage');
    if ((await exists(join(obj, 'vmlinux'))) && (await exists(built)) && (await sha256File(built)) === want)
      return join(obj, 'vmlinux');
  }
  return undefined;
}

/** The call trace decoded to file:line, or why not (one line), with the raw trace. */
async function decodedTrace(tree: string, rec: RunRecord | undefined, splat: Splat): Promise<string[]> {
  const raw = splat.excerpt.split('\n');
  const undecoded = (why: string): string[] => [`Not decoded: ${why}.`, '', ...raw.map((l) => `  ${l}`)];
  if (!hasCallTrace(splat.excerpt)) return undecoded('the report has no call trace');
  const artifacts = rec?.kernel.path ? dirname(rec.kernel.path) : undefined;
  if (!artifacts || !(await readArtifacts(artifacts))) return undecoded("the culprit's kernel build is not cached");
  const config = await readFile(join(artifacts, '.config'), 'utf8');
  if (!/^CONFIG_DEBUG_INFO=y$/m.test(config))
    return undecoded('vmlinux has no debug info: build with CONFIG_DEBUG_INFO for file:line');
  const vmlinux = await culpritVmlinux(tree, join(artifacts, 'bzImage'));
  if (!vmlinux) return undecoded("the culprit's vmlinux is gone from the worktree (a later build replaced it)");
  const decoded = await decodeStackTrace(splat.excerpt, { tree, vmlinux });
  if ('why' in decoded) return undecoded(decoded.why);
  return [
    "Decoded with scripts/decode_stacktrace.sh and the culprit's vmlinux:",
    '',
    ...decoded.lines.map((l) => `  ${l}`),
  ];
}

/** The splat's title, its call trace (decoded when possible) and where the whole console is. */
async function splatSection(
  tree: string,
  failing: RunObservation | undefined,
  rec: RunRecord | undefined,
  splat: Splat | undefined,
): Promise<string[]> {
  if (!splat) return [];
  const console = failing?.runDir ? join(failing.runDir, 'console.log') : undefined;
  const where = console && (await exists(console)) ? [`(${console}, line ${splat.line})`] : [];
  return [`Kernel report: ${splat.title}`, ...where, '', ...(await decodedTrace(tree, rec, splat))];
}

/** The kernel config (base + fragments) and compiler of the culprit's build, from its build metadata. */
async function kernelSection(rec: RunRecord | undefined): Promise<string[]> {
  const meta = rec?.kernel.path ? await readArtifacts(dirname(rec.kernel.path)) : undefined;
  if (!meta) {
    const what = rec ? `${rec.kernel.path}${rec.kernel.release ? ` (${rec.kernel.release})` : ''}` : 'no run record';
    return ['Kernel', `  ${what}: its build metadata is not cached, config and compiler unknown`, ''];
  }
  const fragments = meta.fragments.map((f) => basename(f.path)).join(' + ');
  return [
    'Kernel',
    `  config:   ${meta.base}${fragments ? ` + ${fragments}` : ''} (faultline kconfigs/; .config sha256 ${meta.configHash.slice(0, 16)})`,
    `  compiler: ${meta.compiler}`,
    `  release:  ${meta.release} (${meta.arch})`,
    '',
  ];
}

/** The spec as bisect flags: the record keeps the text each parser in spec.ts writes. */
function specFlags(spec: string): string {
  const kind = specKindOf(spec);
  if (kind === 'splat') return `--splat ${shellQuote(spec.slice('--splat '.length))}`;
  if (kind === 'command') return `--test-cmd ${shellQuote(spec.slice('test-cmd: '.length))}`;
  if (kind === 'metric') return `--metric ${spec}`;
  return kind === 'subtest' ? `--test ${shellQuote(spec)}` : spec;
}

/** The exact command that found it: rerunning it in a fresh --results-dir repeats the whole bisect. */
function reproduceSection(r: BisectRecord): string[] {
  if (r.command) {
    const argv = r.command.argv;
    return [
      'Reproduce',
      `  cd ${shellQuote(r.command.cwd)} && ${shellLine(argv[0] ?? 'faultline', argv.slice(1))}`,
      '',
    ];
  }
  return [
    'Reproduce (the bisect did not record its command line; kernel and run flags as in "runs" above)',
    `  faultline bisect --kernel-src ${shellQuote(r.repo)} --good ${r.good} --bad ${r.bad} ${specFlags(r.spec)}`,
    '',
  ];
}

/** The confidence, the verification behind it and every run of the bisect (the text report's table). */
function confidenceSection(r: CulpritMailInput['record']): string[] {
  const v = r.verification;
  const revert = v?.revert ? `, the revert on ${r.bad.slice(0, 12)} ${v.revert.verdict}` : '';
  const verified = v
    ? `parent ${v.parent.slice(0, 12)} ${v.parentVerdict}, culprit ${v.culpritVerdict}${revert}: ${v.verified ? 'verified' : 'NOT verified'}`
    : 'not verified';
  return [
    `Confidence ${r.culprit.confidence.toFixed(3)} = P(parent good) x P(culprit bad); ${verified}.`,
    '',
    ...formatSteps(r),
    '',
  ];
}

function trailerSection(from: MailAddress, url: string | undefined): string[] {
  const who = from.name ? `${from.name} <${from.addr}>` : from.addr;
  return [
    'If you fix the issue in a separate patch (not a new version of this one), please add:',
    `Reported-by: ${who}`,
    ...(url ? [`Closes: ${url}`] : []),
    '',
  ];
}

function headers(i: CulpritMailInput, to: MailAddress, cc: MailAddress[], subject: string): string[] {
  const date = i.date ?? new Date();
  const id = `<faultline-bisect-${i.record.culprit.hash.slice(0, 12)}-${date.getTime()}@${i.reportFrom.addr.split('@')[1] ?? 'localhost'}>`;
  return [
    addressHeader('From', [i.reportFrom]),
    addressHeader('To', [to]),
    addressHeader('Cc', cc),
    textHeader('Subject', subject),
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${id}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ].filter((h): h is string => h !== undefined);
}

/** The whole mail (RFC 5322, UTF-8 text), from a bisect with a verified culprit. */
export async function culpritMail(i: CulpritMailInput): Promise<string> {
  const r = i.record;
  const c = r.culprit;
  const { run: failing } = culpritFailure(r);
  const rec = await runRecordOf(failing);
  const splat = splatOf(rec, failing?.detail);
  const who = await culpritRecipients(i.git, i.tree, c);
  const subject = `[faultline] ${c.subject}: ${whatBroke(r, splat)}`;
  const body = [
    `faultline bisected ${r.good.slice(0, 12)}..${r.bad.slice(0, 12)} (${r.stats.rangeSize} commit${r.stats.rangeSize === 1 ? '' : 's'}) to this commit:`,
    '',
    `  commit  ${c.hash}`,
    `  subject ${c.subject}`,
    `  author  ${c.authorName} <${c.authorEmail}>`,
    `  date    ${c.authorDate}`,
    '',
    ...failureSection(r, failing?.detail, await splatSection(i.tree, failing, rec, splat)),
    ...confidenceSection(r),
    ...reproduceSection(r),
    ...(await kernelSection(rec)),
    ...(who.notes.length ? ['Notes', ...who.notes.map((n) => `  ${n}`), ''] : []),
    ...trailerSection(i.reportFrom, i.reportUrl),
    '-- ',
    'faultline',
  ];
  return [...headers(i, who.to, who.cc, subject), '', ...body, ''].join('\n');
}

/** Write <resultsDir>/culprit.eml and return its path. */
export async function writeCulpritMail(i: CulpritMailInput, resultsDir: string): Promise<string> {
  const path = join(resultsDir, CULPRIT_MAIL);
  await writeFileAtomic(path, await culpritMail(i));
  return path;
}
