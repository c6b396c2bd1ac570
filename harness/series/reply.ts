import { metricLine, testedText } from './report.js';
import type { PatchRecord, SeriesRecord } from './types.js';

/**
 * The reviewer's reply to a series as a mail (reply.eml), ready for `mutt -H reply.eml` or
 * `git send-email`: threaded under the cover letter (or the first patch), addressed to
 * its author with the list on Cc, and each finding under the hunk of the patch it is
 * about, quoted as reviewers quote.
 */

/** Lines of context kept on each side of the line a finding names. */
const CONTEXT = 6;

/** The hunk of `file` in a decoded patch mail (mbox.ts) that covers new-file line `line`, trimmed around it. */
function quoteHunk(mail: string, file: string, line: number): string[] {
  const lines = mail.replace(/\r/g, '').split('\n');
  const start = lines.findIndex((l) => l === `+++ b/${file}`);
  if (start < 0) return [];
  for (let i = start + 1; i < lines.length && !/^diff --git /.test(lines[i] ?? ''); i++) {
    const m = /^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(lines[i] ?? '');
    if (!m) continue;
    const first = Number(m[2]);
    const count = m[3] === undefined ? 1 : Number(m[3]);
    if (line < first || line >= first + count) continue;
    return trimmedHunk(lines, i, { first, oldCount: m[1] === undefined ? 1 : Number(m[1]), newCount: count }, line);
  }
  return [];
}

/** The hunk at `header`, its lines counted off its header (the mail's "-- " signature is not a removal). */
function trimmedHunk(
  lines: readonly string[],
  header: number,
  h: { first: number; oldCount: number; newCount: number },
  target: number,
): string[] {
  const body: { text: string; newLine: number | undefined }[] = [];
  let n = h.first;
  let oldLeft = h.oldCount;
  let newLeft = h.newCount;
  for (let i = header + 1; i < lines.length && (oldLeft > 0 || newLeft > 0); i++) {
    const l = lines[i] ?? '';
    if (l.startsWith('\\')) continue;
    const removed = l.startsWith('-');
    body.push({ text: l, newLine: removed ? undefined : n });
    if (!removed) {
      n++;
      newLeft--;
    }
    if (!l.startsWith('+')) oldLeft--;
  }
  const at = body.findIndex((b) => b.newLine === target);
  const from = Math.max(0, at - CONTEXT);
  // Byte for byte as in the patch: a reviewer's quote keeps a context line's blank and trailing whitespace.
  return [lines[header] ?? '', ...body.slice(from, at + CONTEXT + 1).map((b) => b.text)].map((l) => `> ${l}`);
}

/** "mm/foo.c:12:3: error: ..." -> file and line. */
function located(diagnostic: string): { file: string; line: number } | undefined {
  const m = /^([^\s:]+):(\d+)(?::\d+)?:/.exec(diagnostic.trim());
  return m?.[1] && m[2] ? { file: m[1], line: Number(m[2]) } : undefined;
}

function patchFindings(p: PatchRecord, mail: string | undefined): string[] {
  const out: string[] = [];
  const under = (where: { file: string; line: number } | undefined, finding: string[]): void => {
    const quote = where && mail ? quoteHunk(mail, where.file, where.line) : [];
    out.push(...quote, ...(quote.length ? [''] : []), ...finding, '');
  };
  if (!p.apply.ok)
    under(undefined, [
      `[${p.index}/${p.total}] ${p.subject} does not apply${p.apply.reason ? `: ${p.apply.reason}` : ''}.`,
    ]);
  else if (p.build && !p.build.ok)
    under(located(p.build.firstError ?? ''), ['This breaks the build:', `  ${p.build.firstError ?? 'unknown error'}`]);
  for (const w of p.build?.newWarnings ?? [])
    under({ file: w.file, line: w.line }, ['This adds a compiler warning:', `  ${w.text}`]);
  return out.length ? [`On [${p.index}/${p.total}] ${p.subject}:`, '', ...out] : [];
}

/**
 * The hunk a kernel report points at ("WARNING: ... at fs/userfaultfd.c:1655 ..."): the last
 * patch of the series whose diff covers that line, quoted under its subject.
 */
function splatHunk(title: string, r: SeriesRecord, mails: ReadonlyMap<number, string>): string[] {
  const at = / at ([\w./-]+\.[ch]):(\d+)/.exec(title);
  if (!at?.[1] || !at[2]) return [];
  for (const p of [...r.patches].reverse()) {
    const quote = quoteHunk(mails.get(p.index) ?? '', at[1], Number(at[2]));
    if (quote.length) return [`On [${p.index}/${p.total}] ${p.subject}:`, '', ...quote, ''];
  }
  return [];
}

function tipFindings(r: SeriesRecord, mails: ReadonlyMap<number, string>): string[] {
  const c = r.comparison;
  if (!c) return [];
  const out: string[] = [];
  const list = (title: string, items: string[]): void => {
    if (items.length) out.push(title, ...items.map((i) => `  ${i}`), '');
  };
  list(
    'With the whole series applied, these tests fail that pass on the base:',
    c.regressions.map((x) => `${x.id}${x.reason ? `: ${x.reason}` : ''}`),
  );
  for (const s of c.newSplats) {
    out.push(
      ...splatHunk(s.title, r, mails),
      `The kernel reports a problem it did not report on the base${s.test ? ` (during ${s.test})` : ''}:`,
      '',
      ...s.excerpt
        .split('\n')
        .slice(0, 40)
        .map((l) => `  ${l}`),
      '',
    );
  }
  list(
    'Latency regressions (median over the runs, 95% interval, p):',
    c.metrics.filter((m) => m.regression).map(metricLine),
  );
  return out;
}

function replyHeaders(r: SeriesRecord): string[] | undefined {
  if (r.source.kind !== 'mbox' || !r.source.thread) return undefined;
  const t = r.source.thread;
  const subject = t.subject.replace(/^\s*re:\s*/i, '');
  const cc = [t.to, t.cc].filter((x): x is string => x !== undefined && x.trim() !== '').join(', ');
  const refs = [t.references, t.messageId]
    .filter((x): x is string => x !== undefined)
    .join(' ')
    .trim();
  return [
    `Subject: Re: ${subject}`,
    ...(t.from ? [`To: ${t.from}`] : []),
    ...(cc ? [`Cc: ${cc}`] : []),
    ...(t.messageId ? [`In-Reply-To: ${t.messageId}`] : []),
    ...(refs ? [`References: ${refs}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
}

/** The reply as an RFC 5322 message; undefined for a range (no thread to answer). */
export function formatSeriesReply(r: SeriesRecord, mails: ReadonlyMap<number, string>): string | undefined {
  const headers = replyHeaders(r);
  if (!headers) return undefined;
  const findings = [...r.patches.flatMap((p) => patchFindings(p, mails.get(p.index))), ...tipFindings(r, mails)];
  const tested = r.baseTests
    ? `tested the ${r.each ? 'patches' : 'tip'} against the base (${r.tester}, ${r.repeat} run${r.repeat > 1 ? 's' : ''} each)`
    : 'ran no tests';
  const head = `faultline built every patch of this series on ${r.base.hash.slice(0, 12)} ("${r.base.subject}") and ${tested}.`;
  const verdict = r.problems.length
    ? `Result: ${r.problems.length} problem${r.problems.length > 1 ? 's' : ''}.`
    : `Result: no regressions found (${testedText(r)}).`;
  return [...headers, '', head, '', ...(findings.length ? findings : ['Nothing to report.', '']), verdict, ''].join(
    '\n',
  );
}
