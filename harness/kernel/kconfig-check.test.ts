import t from 'tap';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../util/errors.js';
import { ensureDebianSource } from './debian.js';
import { configureKernel } from './configure.js';
import { KconfigCheckError } from './kconfig.js';

// Real kernel tree (Debian's linux-source-6.12), its own merge_config.sh and olddefconfig.
// Each kconfig run spawns dozens of gcc probes: slow on a loaded machine, so few runs.
t.setTimeout(3600_000);
const fixtures = join(import.meta.dirname, 'fixtures');
const { tree } = await ensureDebianSource('6.12');
const work = await mkdtemp(join(tmpdir(), 'faultline-kconfig-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const obj = join(work, 'obj');
// tinyconfig once; later runs start from a copy of it (--base FILE).
const tiny = join(work, 'tinyconfig');
await configureKernel({ tree, obj, base: 'tinyconfig', kconfig: [] });
await copyFile(join(obj, '.config'), tiny);

t.test('tinyconfig + minimal + uffd merges and every requested option survives', async (t) => {
  const r = await configureKernel({ tree, obj, base: tiny, kconfig: ['minimal,uffd'] });
  const cfg = (await readFile(r.config, 'utf8')).split('\n');
  for (const l of [
    'CONFIG_64BIT=y',
    'CONFIG_USERFAULTFD=y',
    'CONFIG_PTE_MARKER_UFFD_WP=y',
    'CONFIG_HUGETLBFS=y',
    'CONFIG_VIRTIO_NET=y',
    'CONFIG_SERIAL_8250_CONSOLE=y',
    'CONFIG_MEMORY_FAILURE=y',
    'CONFIG_MEM_SOFT_DIRTY=y',
  ]) {
    t.ok(cfg.includes(l), l);
  }
  t.notOk(cfg.includes('CONFIG_MODULES=y'), 'no modules');
  t.match(r.configHash, /^[0-9a-f]{64}$/);
});

t.test('debug composes on top: tinyconfig + minimal + uffd + debug', async (t) => {
  const r = await configureKernel({ tree, obj, base: tiny, kconfig: ['minimal', 'uffd', 'debug'] });
  const cfg = (await readFile(r.config, 'utf8')).split('\n');
  for (const l of [
    'CONFIG_KASAN=y',
    'CONFIG_DEBUG_VM=y',
    'CONFIG_PROVE_LOCKING=y',
    'CONFIG_DEBUG_ATOMIC_SLEEP=y',
    'CONFIG_USERFAULTFD=y',
  ])
    t.ok(cfg.includes(l), l);
});

t.test('options whose dependencies are off fail the build, each named with its reason', async (t) => {
  const frags = ['dropped-dep', 'no-mce', 'uffd-wp-without-uffd', 'unknown-symbol'].map((f) =>
    join(fixtures, `${f}.config`),
  );
  const e = await configureKernel({ tree, obj, base: tiny, kconfig: frags }).then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof KconfigCheckError)) throw new Error(`expected a KconfigCheckError, got ${String(e)}`);
  t.equal(e.exitCode, ExitCode.infra);
  t.same(e.mismatches.map((m) => m.symbol).sort(), [
    'FAULTLINE_NO_SUCH_OPTION',
    'GUP_TEST',
    'MEMORY_FAILURE',
    'PTE_MARKER_UFFD_WP',
  ]);
  const why = (s: string): string => (e.mismatches.find((m) => m.symbol === s)?.why ?? []).join('\n');

  // A dependency turned off by a fragment: option and dependency named.
  const gup = e.mismatches.find((m) => m.symbol === 'GUP_TEST');
  t.equal(gup?.from, 'dropped-dep.config:3');
  t.match(why('GUP_TEST'), /unmet: depends on DEBUG_FS \[DEBUG_FS=n\] \(mm\/Kconfig:\d+\)/);
  t.match(
    e.message,
    /^kconfig fragment not satisfied: CONFIG_GUP_TEST \(dropped-dep\.config:3\) asked for =y but the final \.config has it not set: unmet: depends on DEBUG_FS/,
  );

  // A prompt-less dependency is traced to what selects it.
  t.match(why('MEMORY_FAILURE'), /unmet: depends on ARCH_SUPPORTS_MEMORY_FAILURE \[ARCH_SUPPORTS_MEMORY_FAILURE=n\]/);
  t.match(
    why('MEMORY_FAILURE'),
    /CONFIG_ARCH_SUPPORTS_MEMORY_FAILURE has no prompt; it is selected by X86_SUPPORTS_MEMORY_FAILURE \(arch\/x86\/Kconfig:\d+\)/,
  );

  // An option inside an "if" block reports the block.
  t.match(why('PTE_MARKER_UFFD_WP'), /inside 'if USERFAULTFD' \(mm\/Kconfig:\d+\) \[USERFAULTFD=n\]/);

  // A symbol this tree does not have.
  t.match(why('FAULTLINE_NO_SUCH_OPTION'), /is not defined in any Kconfig file of this tree/);
  t.match(e.detail ?? '', /CONFIG_GUP_TEST: dropped-dep\.config:3 asks for y, final \.config has not set/);
});
