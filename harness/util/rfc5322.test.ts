import t from 'tap';
import { run } from './proc.js';
import { addressHeader, parseAddress, textHeader } from './rfc5322.js';

/** What Python's email package (a real RFC 5322/2047 parser) reads from a header block. */
async function decoded(headers: string): Promise<Record<string, string>> {
  const py = [
    'import email, email.policy, json, sys',
    'm = email.message_from_string(sys.stdin.read(), policy=email.policy.default)',
    'print(json.dumps({k: str(v) for k, v in m.items()}))',
  ].join('\n');
  const r = await run('python3', ['-c', py], { input: `${headers}\n\nbody\n`, timeoutMs: 30_000 });
  return JSON.parse(r.stdout) as Record<string, string>;
}

t.test('addresses as written in commit tags and --report-from', async (t) => {
  t.same(parseAddress('Jane Doe <jane@example.org>'), { name: 'Jane Doe', addr: 'jane@example.org' });
  t.same(parseAddress('"Doe, Jane" <jane@example.org>'), { name: 'Doe, Jane', addr: 'jane@example.org' });
  t.same(parseAddress('linux-mm@kvack.org'), { addr: 'linux-mm@kvack.org' });
  t.same(parseAddress('<a@b.c>'), { addr: 'a@b.c' });
  t.equal(parseAddress('faultline'), undefined);
  t.equal(parseAddress('Jane <not an address>'), undefined);
});

t.test('long and non-ASCII headers fold within 78 characters and decode back', async (t) => {
  const subject = `[faultline] mm/userfaultfd: ${'ünïcödé '.repeat(12)}: uffd-unit-tests zeropage/anon fails`;
  const people = [
    { name: 'Zoë Ångström', addr: 'zoe@example.org' },
    { name: 'Doe, Jane', addr: 'jane@example.org' },
    { name: 'A. N. Other', addr: 'other@example.org' },
    ...Array.from({ length: 6 }, (_, i) => ({ addr: `list${i}@vger.kernel.org` })),
  ];
  const block = [textHeader('Subject', subject), addressHeader('Cc', people) ?? ''].join('\n');
  for (const l of block.split('\n')) {
    t.ok(l.length <= 78, `within 78: ${l}`);
    t.ok(/^[\x20-\x7e]+$/.test(l), `ASCII: ${l}`);
  }
  for (const w of block.match(/=\?UTF-8\?B\?[^?]*\?=/g) ?? []) t.ok(w.length <= 75, `encoded word <= 75: ${w}`);
  const h = await decoded(block);
  t.equal(h.Subject, subject.trim());
  t.equal(
    h.Cc,
    `Zoë Ångström <zoe@example.org>, "Doe, Jane" <jane@example.org>, "A. N. Other" <other@example.org>, ${people
      .slice(3)
      .map((p) => p.addr)
      .join(', ')}`,
  );
  t.equal(addressHeader('Cc', []), undefined, 'no Cc header for nobody');
});
