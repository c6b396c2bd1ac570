import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstCompilerError, parseDiagnostics } from '../toolchain/diagnostics.js';
import { WarningLedger, logCoversTouched, newWarnings } from './warnings.js';
import { cleanSubject, decodeMimeWords, parseHeaders } from './mbox.js';
import { compiledFiles } from '../revision/command.js';

const here = fileURLToPath(new URL('.', import.meta.url));

t.test('gcc diagnostics (real gcc 12 output, UTF-8 quotes)', async (t) => {
  const text = await readFile(join(here, 'fixtures', 'gcc-warnings.txt'), 'utf8');
  const d = parseDiagnostics(text);
  t.same(
    d.map((x) => [x.file, x.line, x.severity, x.flag]),
    [
      ['util.c', 8, 'warning', '-Wsign-compare'],
      ['util.c', 10, 'error', undefined],
      ['util.c', 6, 'warning', '-Wunused-variable'],
      ['util.c', 13, 'warning', '-Wunused-function'],
    ],
  );
  t.equal(d[2]?.message, "unused variable 'unused'");
  t.equal(firstCompilerError(text), "util.c:10:17: error: expected ';' before '}' token");
});

t.test('paths from O= builds and absolute paths are made tree-relative', async (t) => {
  const d = parseDiagnostics(
    '/src/linux/mm/userfaultfd.c:12:3: warning: x [-Wfoo]\n../mm/hugetlb.c:1:1: warning: y [-Wbar]\n',
    '/src/linux',
  );
  t.same(
    d.map((x) => x.file),
    ['mm/userfaultfd.c', 'mm/hugetlb.c'],
  );
});

t.test('new warnings ignore line moves; the ledger follows incremental builds', async (t) => {
  const a = parseDiagnostics("mm/a.c:10:5: warning: unused variable 'x' [-Wunused-variable]\n");
  const b = parseDiagnostics(
    "mm/a.c:12:5: warning: unused variable 'x' [-Wunused-variable]\nmm/a.c:20:5: warning: unused variable 'y' [-Wunused-variable]\n",
  );
  t.same(
    newWarnings(a, b).map((x) => x.message),
    ["unused variable 'y'"],
  );
  const l = new WarningLedger();
  l.record(a, ['mm/a.c', 'mm/b.c'], true);
  t.same(l.compare(b, ['mm/a.c']).added.length, 1);
  // mm/b.c gains a warning; mm/a.c was not recompiled by this build and keeps its entry.
  const c = parseDiagnostics('mm/b.c:3:1: warning: z [-Wz]\n');
  t.same(l.compare(c, ['mm/b.c']), { known: true, added: c });
  l.record(c, ['mm/b.c'], false);
  t.same(l.compare([...a, ...c], ['mm/a.c', 'mm/b.c']).added, []);
});

t.test("a cache hit's log (an earlier make's) is compared only for the touched files it compiled", async (t) => {
  // The artifact log of the series e2e's warning patch, built in another worktree: kbuild's
  // incremental make from the parent compiled fs/userfaultfd.c and printed its new warning.
  const log = await readFile(join(here, 'fixtures', 'kbuild-warning-patch.log'), 'utf8');
  const tree = '/tmp/faultline-e2e-kseries-Aa1FwZ/series/worktree';
  const hit = { cacheHit: true, compiled: compiledFiles(log) };
  t.ok(logCoversTouched(hit, ['fs/userfaultfd.c']), 'the touched file was compiled by that make');
  t.notOk(logCoversTouched(hit, ['mm/userfaultfd.c']), 'a touched file that make did not compile');
  t.notOk(logCoversTouched(hit, ['fs/userfaultfd.c', 'include/linux/userfaultfd_k.h']), 'a touched header');
  t.ok(logCoversTouched(hit, ['fs/userfaultfd.c', 'Documentation/admin-guide/mm/userfaultfd.rst']), 'not code');
  t.ok(logCoversTouched({ cacheHit: false }, ['mm/userfaultfd.c']), 'a make from the parent here compiles them all');

  const l = new WarningLedger();
  l.record([], ['fs/userfaultfd.c'], true);
  const cmp = l.compare(parseDiagnostics(log, tree), ['fs/userfaultfd.c']);
  t.equal(cmp.known, true);
  t.same(
    cmp.added.map((d) => d.text),
    ["fs/userfaultfd.c:1649:13: warning: unused variable 'zeropage_retries' [-Wunused-variable]"],
  );
  // A patch whose warnings no log gave leaves its files unknown until a make compiles them again.
  l.forget(['mm/userfaultfd.c']);
  t.same(l.compare([], ['mm/userfaultfd.c']), { known: false, added: [] });
  t.equal(l.compare([], ['fs/userfaultfd.c']).known, true, 'other files stay known');
  l.record([], ['mm/userfaultfd.c'], false);
  t.equal(l.compare([], ['mm/userfaultfd.c']).known, true, 'known again once compiled');
});

t.test('mail headers', async (t) => {
  t.equal(decodeMimeWords('=?UTF-8?q?mm/userfaultfd:=20fix_=C3=A9?='), 'mm/userfaultfd: fix é');
  t.equal(decodeMimeWords('=?utf-8?b?w6k=?= x'), 'é x');
  t.equal(cleanSubject('[PATCH v3 2/7] mm: foo'), 'mm: foo');
  t.equal(cleanSubject('Re: [RFC PATCH] [net] x'), 'x');
  const h = parseHeaders('From: A <a@b>\nSubject: [PATCH 1/2] long\n subject\nMessage-ID: <1@x>\n\nbody: no\n');
  t.equal(h.get('subject'), '[PATCH 1/2] long subject');
  t.equal(h.get('message-id'), '<1@x>');
  t.notOk(h.has('body'));
});

t.test('compiled files from build logs', async (t) => {
  t.same(
    compiledFiles(
      '  CC      mm/userfaultfd.o\n  CC [M]  fs/x.o\ncc -Wall -O0 -c -o util.o util.c\n  LD      vmlinux\n',
    ),
    ['mm/userfaultfd.c', 'fs/x.c', 'util.c'],
  );
});
