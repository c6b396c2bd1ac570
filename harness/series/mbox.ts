import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '../util/errors.js';
import { exists, writeFileAtomic } from '../util/fsutil.js';
import { mailInfo, splitMbox } from '../vcs/mail.js';

/** One mail of a series as `git mailsplit` cut it out of the mbox. */
export interface MailPatch {
  /** Position in the mbox (git am order), 1-based over patches only. */
  index: number;
  /** The mail decoded (decodeMail): the one body git am applies and the reply quotes. */
  file: string;
  /** Subject without the [PATCH ...] tags (what git am makes the commit subject). */
  subject: string;
  rawSubject: string;
  messageId?: string;
  from?: string;
  /** n/N from "[PATCH v2 3/7]", when present. */
  number?: { n: number; of: number };
}

/** The headers a reply to the thread needs: who to answer and which message it answers. */
export interface ThreadHeaders {
  subject: string;
  messageId?: string;
  from?: string;
  to?: string;
  cc?: string;
  references?: string;
}

export interface ParsedMbox {
  patches: MailPatch[];
  cover?: ThreadHeaders & { file: string };
  /** What a reply to the series answers: the cover letter, else the first patch. */
  root?: ThreadHeaders;
  /** Mails that are neither patches nor the cover letter (replies): skipped. */
  skipped: { subject: string; reason: string }[];
  warnings: string[];
}

/** RFC 2047 encoded words (=?utf-8?q?...?= / =?utf-8?b?...?=), as mailing lists deliver subjects. */
export function decodeMimeWords(s: string): string {
  return s
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([qQbB])\?([^?]*)\?=/g, (_all, charset: string, enc: string, text: string) => {
      const cs = charset.toLowerCase().replace(/\*.*$/, '');
      const enc8 = cs === 'utf-8' || cs === 'utf8' ? 'utf8' : 'latin1';
      if (enc.toLowerCase() === 'b') return Buffer.from(text, 'base64').toString(enc8);
      const bytes = text
        .replace(/_/g, ' ')
        .replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, 'latin1').toString(enc8);
    });
}

/** Header fields of one mail (folded lines joined; first occurrence wins). */
export function parseHeaders(mail: string): Map<string, string> {
  const end = mail.search(/\r?\n\r?\n/);
  const head = end < 0 ? mail : mail.slice(0, end);
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const m = /^([!-9;-~]+):\s*(.*)$/.exec(line);
    if (!m?.[1]) continue;
    last = m[1].toLowerCase();
    if (!headers.has(last)) headers.set(last, m[2] ?? '');
    else last = undefined;
  }
  return headers;
}

/** "[PATCH v2 3/7] mm: foo" -> "mm: foo"; also strips "Re:" like git mailinfo. */
export function cleanSubject(raw: string): string {
  let s = raw.trim();
  for (;;) {
    const next = s.replace(/^(re|aw|fwd?):\s*/i, '').replace(/^\[[^\]]*\]\s*/, '');
    if (next === s) return s;
    s = next;
  }
}

function threadHeaders(h: Map<string, string>, subject: string): ThreadHeaders {
  const field = (name: string): Record<string, string> => {
    const v = h.get(name)?.trim();
    return v ? { [name === 'message-id' ? 'messageId' : name]: decodeMimeWords(v) } : {};
  };
  return { subject, ...field('message-id'), ...field('from'), ...field('to'), ...field('cc'), ...field('references') };
}

/** A decoded mail and its patch part (what follows the "---" line: diffstat and diff). */
interface DecodedMail {
  file: string;
  patch: string;
}

/** A display name as an RFC 5322 quoted string: git mailinfo reads it back unchanged. */
function quotedName(name: string): string {
  return `"${name.replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * `mail` with its body decoded by `git mailinfo`, the decoder git am itself runs: quoted-printable,
 * base64, 8bit, multipart attachments, in-body From:/Subject:. Written as one 8bit mail beside it
 * (`<mail>.eml`) so the patch git am applies and the hunks the reply quotes are the same bytes:
 * quoting the mail as received showed "=3D" and soft line breaks ("...*d=") of a quoted-printable
 * patch that git am, decoding it, applied correctly.
 */
async function decodeMail(mail: string, messageId: string | undefined): Promise<DecodedMail> {
  const msgFile = `${mail}.msg`;
  const patchFile = `${mail}.patch`;
  const r = await mailInfo(mail, msgFile, patchFile);
  if (r.exitCode !== 0)
    throw new UsageError(
      `mail ${basename(mail)} of the --mbox cannot be decoded: ${r.all.trim().split('\n')[0] ?? ''}`,
    );
  const info = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\w+): (.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) info.set(m[1], m[2]);
  }
  const [msg, patch] = [await readFile(msgFile), await readFile(patchFile)];
  await rm(msgFile);
  await rm(patchFile);
  const author = info.get('Author');
  const email = info.get('Email');
  const date = info.get('Date');
  const headers = [
    ...(email ? [`From: ${author ? `${quotedName(author)} ` : ''}<${email}>`] : []),
    ...(date ? [`Date: ${date}`] : []),
    `Subject: ${info.get('Subject') ?? ''}`,
    ...(messageId ? [`Message-ID: ${messageId}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  const file = `${mail}.eml`;
  await writeFileAtomic(file, Buffer.concat([Buffer.from(`${headers.join('\n')}\n\n`), msg, patch]));
  return { file, patch: patch.toString('utf8') };
}

/**
 * Bounds on what a series from a stranger may hold, each far above any real series (the
 * largest patch series on the kernel lists are a few MiB; a treewide patch a few thousand
 * hunks; RFC 5322 caps a header line at 998 characters; a patch mail nests one or two
 * multiparts): past them the mbox is refused before git sees it.
 */
export const MBOX_LIMITS = { bytes: 64 * 2 ** 20, hunksPerPatch: 20_000, headerLineBytes: 16_384, multiparts: 8 };

/** Why the raw mail `mail` (its text as cut out) is refused, or undefined. */
function hostileMail(mail: string): string | undefined {
  const end = mail.search(/\r?\n\r?\n/);
  const head = end < 0 ? mail : mail.slice(0, end);
  const longest = Math.max(0, ...head.split('\n').map((l) => l.length));
  if (longest > MBOX_LIMITS.headerLineBytes)
    return `has a header line of ${longest} characters, over the bound of ${MBOX_LIMITS.headerLineBytes}`;
  const multiparts = mail.match(/^content-type:[ \t]*multipart\//gim)?.length ?? 0;
  if (multiparts > MBOX_LIMITS.multiparts)
    return `nests ${multiparts} multipart MIME parts, over the bound of ${MBOX_LIMITS.multiparts} (a MIME bomb?)`;
  return undefined;
}

/** A path a diff names, unquoted: git quotes paths with unusual characters. */
const diffPath = (p: string): string => p.trim().replace(/^"(.*)"$/, '$1');

/** Why the decoded patch is refused: too many hunks, a path out of the tree, a symlink; or undefined. */
function hostilePatch(patch: string): string | undefined {
  const hunks = patch.match(/^@@ /gm)?.length ?? 0;
  if (hunks > MBOX_LIMITS.hunksPerPatch)
    return `has ${hunks} hunks, over the bound of ${MBOX_LIMITS.hunksPerPatch} for one patch`;
  const paths = [
    ...[...patch.matchAll(/^diff --git a\/(.*) b\/(.*)$/gm)].flatMap((m) => [m[1] ?? '', m[2] ?? '']),
    ...[...patch.matchAll(/^(?:rename|copy) (?:from|to) (.*)$/gm)].map((m) => m[1] ?? ''),
    ...[...patch.matchAll(/^(?:---|\+\+\+) (?!\/dev\/null$)(?:[ab]\/)?(.*)$/gm)].map((m) => m[1] ?? ''),
  ].map(diffPath);
  const outside = paths.find((p) => p.startsWith('/') || /(^|\/)\.\.(\/|$)/.test(p));
  if (outside !== undefined) return `names the path '${outside.slice(0, 200)}', outside the tree`;
  if (/^(?:new file mode|new mode) 120000$/m.test(patch))
    return 'creates a symbolic link (mode 120000), which later patches could write through';
  return undefined;
}

/** Split an mbox with `git mailsplit` (git am's own splitter) and classify each mail. */
export async function parseMbox(mboxFile: string, outDir: string): Promise<ParsedMbox> {
  if (!(await exists(mboxFile))) throw new UsageError(`--mbox ${mboxFile}: no such file`);
  const { size } = await stat(mboxFile);
  if (size > MBOX_LIMITS.bytes)
    throw new UsageError(
      `--mbox ${mboxFile} is ${(size / 2 ** 20).toFixed(0)} MiB, over the bound of ${MBOX_LIMITS.bytes / 2 ** 20} MiB for one series: pass the series alone`,
    );
  await mkdir(outDir, { recursive: true });
  const r = await splitMbox(mboxFile, outDir);
  if (r.exitCode !== 0)
    throw new UsageError(`--mbox ${mboxFile} is not an mbox git can split: ${r.stderr.trim().split('\n')[0] ?? ''}`);
  const files = (await readdir(outDir)).filter((f) => /^\d+$/.test(f)).sort();
  const out: ParsedMbox = { patches: [], skipped: [], warnings: [] };
  for (const f of files) {
    const file = join(outDir, f);
    const mail = await readFile(file, 'utf8');
    const refused = hostileMail(mail);
    if (refused) throw new UsageError(`mail ${f} of --mbox ${mboxFile} ${refused}: refusing the series`);
    const h = parseHeaders(mail);
    const rawSubject = decodeMimeWords(h.get('subject') ?? '');
    const subject = cleanSubject(rawSubject);
    const messageId = h.get('message-id')?.trim();
    const from = h.get('from') ? decodeMimeWords(h.get('from') ?? '') : undefined;
    const num = /\[[^\]]*?\b(\d+)\/(\d+)\s*\]/.exec(rawSubject);
    const number = num?.[1] && num[2] ? { n: Number(num[1]), of: Number(num[2]) } : undefined;
    // A list archive's mbox holds the thread's replies too ("Re: [PATCH v2 0/2] ..."): never the cover or a patch.
    if (/^(re|aw|fwd?):/i.test(rawSubject.trim())) {
      out.skipped.push({ subject: rawSubject, reason: 'a reply in the thread' });
      continue;
    }
    // Decoded first: a base64 patch shows no diff until it is.
    const decoded = await decodeMail(file, messageId);
    const bad = hostilePatch(decoded.patch);
    if (bad)
      throw new UsageError(`mail ${f} of --mbox ${mboxFile} ("${subject.slice(0, 80)}") ${bad}: refusing the series`);
    const hasDiff = /^diff --git |^Index: |^--- \S.*\n\+\+\+ /m.test(decoded.patch);
    if (number?.n === 0 || (!hasDiff && !out.cover && out.patches.length === 0 && number)) {
      out.cover ??= { ...threadHeaders(h, rawSubject), file };
      continue;
    }
    if (!hasDiff) {
      out.skipped.push({ subject: rawSubject, reason: 'no patch in this mail' });
      continue;
    }
    if (out.patches.length === 0) out.root = threadHeaders(h, rawSubject);
    out.patches.push({
      index: out.patches.length + 1,
      file: decoded.file,
      subject,
      rawSubject,
      ...(messageId ? { messageId } : {}),
      ...(from ? { from } : {}),
      ...(number ? { number } : {}),
    });
  }
  if (out.cover) out.root = out.cover;
  if (out.patches.length === 0)
    throw new UsageError(`--mbox ${mboxFile} holds no patches (${files.length} mails, none with a diff)`);
  const numbered = out.patches.filter((p) => p.number);
  if (numbered.some((p, i) => p.number?.n !== i + 1)) {
    out.warnings.push(`patches are not in [n/N] order in ${mboxFile}; applying in mbox order as git am does`);
  }
  const totals = new Set(numbered.map((p) => p.number?.of));
  if (numbered.length && totals.size === 1 && [...totals][0] !== out.patches.length) {
    out.warnings.push(`the series says ${[...totals][0]} patches but the mbox holds ${out.patches.length}`);
  }
  return out;
}
