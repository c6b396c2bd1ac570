import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { boundedLines, failureReason, parseKtap, REASON_MAX_CHARS } from './ktap.js';

const capture = (...p: string[]): string => readFileSync(join(import.meta.dirname, '..', 'fixtures', ...p), 'utf8');

t.test("a failure's reason keeps the last diagnostic lines, bounded", async (t) => {
  // Real: what hugepage-shm printed inside run_vmtests.sh (Debian 6.12 guest), a line of 256 dots among them.
  const shm = capture('mm', 'vmtests.hugetlb.txt')
    .split('\n')
    .slice(16, 21)
    .map((l) => l.slice(2));
  t.match(shm[3], /^\.{256}$/);
  t.equal(
    boundedLines(shm),
    `Starting the Check...Done. | ${shm[3]} | …`,
    'the last lines that fit, the ones before them left out',
  );
  t.ok((boundedLines(shm)?.length ?? 0) <= REASON_MAX_CHARS);
  t.equal(boundedLines(['', '  ']), undefined, 'nothing printed: no reason');

  // Real: cow's first result follows its 12 "[INFO]" lines and its "[RUN]" heading.
  const first = parseKtap(capture('mm', 'mm.cow.txt')).tests[0];
  const reason = first ? (failureReason(first) ?? '') : '';
  t.ok(reason.length <= REASON_MAX_CHARS, `${reason.length} characters`);
  t.match(
    reason,
    /^\[RUN\] Basic COW after fork\(\) \.\.\. with base page \| \[INFO\] Anonymous memory tests in private mappings \| .* \| …$/,
    'the lines nearest the result',
  );
  t.equal(
    first && failureReason(first, (d) => !d.startsWith('[')),
    undefined,
    'lines the caller says explain nothing are left out',
  );
});

t.test("a result's own text after '#' stays its reason", async (t) => {
  const k = parseKtap(capture('mm', 'mm.mremap_test.txt'));
  t.match(k.tests[0], { directive: 'XFAIL', reason: 'mremap - Source and Destination Regions Overlapping' });
  t.equal(k.tests[0] && failureReason(k.tests[0]), 'mremap - Source and Destination Regions Overlapping');
});
