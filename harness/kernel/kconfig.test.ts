import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, ExitCode } from '../util/errors.js';
import {
  effectiveRequests,
  evalExpr,
  kconfigsDir,
  parseDotConfig,
  parseFragment,
  parseFragmentText,
  resolveFragments,
  shippedFragments,
} from './kconfig.js';

const fixtures = join(import.meta.dirname, 'fixtures');

t.test('the shipped fragments parse and resolve by name', async (t) => {
  const names = await shippedFragments();
  t.same(names, ['base', 'debug', 'minimal', 'mm', 'uffd']);
  const paths = await resolveFragments(['base,uffd', 'debug']);
  t.same(
    paths,
    ['base', 'uffd', 'debug'].map((n) => join(kconfigsDir(), `${n}.config`)),
  );
  for (const p of paths) {
    const f = await parseFragment(p);
    t.ok(f.entries.length > 3, `${f.name} has entries`);
  }
  const uffd = await parseFragment(join(kconfigsDir(), 'uffd.config'));
  const want = [
    'USERFAULTFD',
    'PTE_MARKER_UFFD_WP',
    'HUGETLBFS',
    'HUGETLB_PAGE',
    'TRANSPARENT_HUGEPAGE',
    'SHMEM',
    'TMPFS',
    'MEMFD_CREATE',
    'GUP_TEST',
    'MEMORY_FAILURE',
    'MEM_SOFT_DIRTY',
    'DEBUG_FS',
  ];
  for (const s of want)
    t.ok(
      uffd.entries.some((e) => e.symbol === s && e.value === 'y'),
      `uffd.config asks for ${s}=y`,
    );
});

t.test('a fragment syntax error names file and line', async (t) => {
  const p = join(fixtures, 'bad-syntax.config');
  const err = await parseFragment(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof UsageError);
  t.equal((err as UsageError).exitCode, ExitCode.infra);
  t.match((err as Error).message, `${p}:4: not a kconfig line: 'CONFIG_HUGETLBFS y'`);
  t.throws(() => parseFragmentText('CONFIG_A=y\nCONFIG_A=n\n', 'f.config'), {
    message: /f\.config:2: CONFIG_A=n contradicts line 1/,
  });
  t.throws(() => parseFragmentText('CONFIG_A=maybe\n', 'f.config'), {
    message: /f\.config:1: bad value for CONFIG_A: 'maybe'/,
  });
  t.throws(() => parseFragmentText('  CONFIG_A=y\n', 'f.config'), { message: /f\.config:1: not a kconfig line/ });
  t.throws(() => parseFragmentText('#CONFIG_A is not set\n', 'f.config'), {
    message: /f\.config:1: malformed 'is not set' line/,
  });
  const ok = parseFragmentText(
    '# comment\n# CONFIG_A is not set\nCONFIG_B="x y"\nCONFIG_C=0x10\nCONFIG_D=-1\n# CONFIG_E=y (commented out)\n',
    'f.config',
  );
  t.same(
    ok.entries.map((e) => [e.symbol, e.value, e.line]),
    [
      ['A', 'n', 2],
      ['B', '"x y"', 3],
      ['C', '0x10', 4],
      ['D', '-1', 5],
    ],
  );
});

t.test('an unknown fragment is one clear line', async (t) => {
  await t.rejects(resolveFragments(['base,nosuchfragment']), {
    message: /^unknown kconfig fragment 'nosuchfragment': use one of base, debug, minimal, mm, uffd/,
  });
  await t.rejects(resolveFragments(['./missing.config']), {
    message: /^unknown kconfig fragment '\.\/missing\.config'/,
  });
});

t.test('later fragments override earlier ones, and the override is reported', async (t) => {
  const a = parseFragmentText('CONFIG_A=y\nCONFIG_B=y\n', 'a.config');
  const b = parseFragmentText('# CONFIG_A is not set\n', 'b.config');
  const { requests, overrides } = effectiveRequests([a, b]);
  t.same(requests.get('A'), { value: 'n', from: 'b.config:1' });
  t.same(requests.get('B'), { value: 'y', from: 'a.config:2' });
  t.match(overrides[0], /CONFIG_A=n \(b\.config:1\) overrides y \(a\.config:1\)/);
});

t.test('Kconfig expressions evaluate in tristate logic', async (t) => {
  const cfg = parseDotConfig('CONFIG_A=y\nCONFIG_M=m\n# CONFIG_N is not set\nCONFIG_S="x"\nCONFIG_I=8\n');
  t.equal(evalExpr('A && M', cfg), 1);
  t.equal(evalExpr('A && !N', cfg), 2);
  t.equal(evalExpr('N || M', cfg), 1);
  t.equal(evalExpr('!(A && M)', cfg), 1);
  t.equal(evalExpr('SERIAL_8250=y', parseDotConfig('CONFIG_SERIAL_8250=m\n')), 0);
  t.equal(evalExpr('I >= 4 && S = "x"', cfg), 2);
  t.equal(evalExpr('UNDEFINED', cfg), 0);
  t.equal(evalExpr('$(cc-option,-foo)', cfg), -1);
});

t.test('dot-config parsing: set, not set, strings', async (t) => {
  const text = await readFile(join(fixtures, 'no-mce.config'), 'utf8');
  t.same(
    [...parseDotConfig(text)],
    [
      ['X86_MCE', 'n'],
      ['MEMORY_FAILURE', 'y'],
    ],
  );
});
