/**
 * Headers of the mails faultline writes (RFC 5322): addresses, RFC 2047 encoded words for
 * non-ASCII text, and folding so that no header line is longer than 78 characters.
 */

export interface MailAddress {
  /** Display name, absent for a bare address. */
  name?: string;
  addr: string;
}

/** A plausible addr-spec: local@domain, no spaces or angle brackets. */
const ADDR = /^[^\s<>@",;]+@[^\s<>@",;]+$/;

/** "Name <addr>", "<addr>" or "addr"; undefined when it is none of these. */
export function parseAddress(text: string): MailAddress | undefined {
  const t = text.trim();
  const m = /^(.*?)\s*<([^<>]+)>$/.exec(t);
  const addr = (m ? m[2] : t)?.trim() ?? '';
  if (!ADDR.test(addr)) return undefined;
  const name = m?.[1]?.trim().replace(/^"(.*)"$/, '$1');
  return name ? { name, addr } : { addr };
}

/** The address key for deduplication: mailboxes compare case-insensitively in practice. */
export function addressKey(a: MailAddress): string {
  return a.addr.toLowerCase();
}

const MAX_LINE = 78;

function isPlainAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

/** RFC 2047 B-encoded words for `text`, each <= 75 characters, split on character boundaries. */
function encodedWords(text: string): string[] {
  const words: string[] = [];
  // 39 bytes: 52 characters of base64 plus 12 of =?UTF-8?B??= (64 <= 75), so that even the first
  // word fits beside a header name ("Subject: ", "Cc: ") within 78 characters.
  const maxBytes = 39;
  let chunk = '';
  for (const ch of text) {
    if (Buffer.byteLength(chunk + ch) > maxBytes) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`);
}

/** A display name as a phrase: as is, quoted when it has specials, encoded when not ASCII. */
function phrase(name: string): string[] {
  if (!isPlainAscii(name)) return encodedWords(name);
  if (/^[\w!#$%&'*+/=?^`{|}~ .-]+$/.test(name) && !/(^|\s)\.|\.(\s|$)/.test(name)) return name.split(' ');
  return [`"${name.replace(/(["\\])/g, '\\$1')}"`];
}

/** The tokens of one address: the phrase's words then <addr>; a bare address alone. */
function addressTokens(a: MailAddress): string[] {
  return a.name ? [...phrase(a.name), `<${a.addr}>`] : [a.addr];
}

/** `Name: value` folded before a token when the line would pass 78 characters. */
function fold(name: string, tokens: readonly string[]): string {
  const lines: string[] = [];
  let line = `${name}:`;
  for (const tok of tokens) {
    if (line.length + 1 + tok.length > MAX_LINE && line.trim() !== `${name}:`) {
      lines.push(line);
      line = '';
    }
    line += ` ${tok}`;
  }
  lines.push(line);
  return lines.join('\n');
}

/** An address header (From, To, Cc); undefined when there is nobody to name. */
export function addressHeader(name: string, list: readonly MailAddress[]): string | undefined {
  if (list.length === 0) return undefined;
  const tokens = list.flatMap((a, i) => {
    const t = addressTokens(a);
    if (i < list.length - 1) t[t.length - 1] += ',';
    return t;
  });
  return fold(name, tokens);
}

/** An unstructured header (Subject): folded at spaces, encoded words when not ASCII. */
export function textHeader(name: string, text: string): string {
  const tokens = isPlainAscii(text) ? text.split(' ').filter(Boolean) : encodedWords(text);
  return fold(name, tokens);
}
