import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKINGS, type Backing, type SubtestResult } from '../results/types.js';
import { programOutput } from './fixtures/program-output.js';
import { suiteByName } from './registry.js';
import type { GuestCommand, SuiteContext } from './types.js';

// Two real runs of every program faultline runs, and two of pagemap_ioctl without hugepages:
// the raw outputs and the commands that printed them (fixtures/runs/README.md says how).
// A subtest's id must be the same in both runs, or comparisons see one test vanish and
// another appear.
const RUNS = join(import.meta.dirname, 'fixtures', 'runs');

/** The suite whose parser reads each program's output; every other program is suite mm's. */
const SUITE_OF: Record<string, string> = {
  'uffd-unit-tests': 'uffd',
  'uffd-stress': 'uffd',
  pagemap_ioctl: 'uffd',
  'uffd-lat': 'uffd-lat',
  'uffd-contract': 'uffd-contract',
  postcopy: 'postcopy',
};

const ctx: SuiteContext = {
  backings: ['hugetlb', 'shmem', 'anon'],
  smp: 2,
  memMiB: 2048,
  hugepages2m: 64,
  quick: true,
  programs: [],
};

function isBacking(s: string): s is Backing {
  return (BACKINGS as readonly string[]).includes(s);
}

/** A captured command line as the guest ran it ("./bash ./x.sh -a": a script run by the pushed bash). */
function guestCommand(file: string, backing: string, command: string): GuestCommand {
  const words = command.split(' ');
  const script = words[0] === './bash';
  const program = (script ? words[1] : words[0])?.replace(/^\.\//, '') ?? '';
  return {
    program,
    args: words.slice(script ? 2 : 1),
    ...(script ? { interpreter: 'bash' } : {}),
    ...(isBacking(backing) ? { backing } : {}),
    timeoutSec: 900,
    label: file.replace(/\.txt$/, ''),
  };
}

/** Every output of a captured run, parsed by its suite: the subtests of each output file. */
function parsedRun(run: string): Map<string, SubtestResult[]> {
  const parsed = new Map<string, SubtestResult[]>();
  const lines = readFileSync(join(RUNS, run, 'commands.tsv'), 'utf8')
    .trim()
    .split('\n');
  for (const line of lines) {
    const [file = '', backing = '', exit = '', command = ''] = line.split('\t');
    const cmd = guestCommand(file, backing, command);
    const out = programOutput(readFileSync(join(RUNS, run, file), 'utf8'), exit === '-' ? null : Number(exit));
    parsed.set(file, suiteByName(SUITE_OF[cmd.program] ?? 'mm').parse(cmd, out, ctx).subtests);
  }
  return parsed;
}

const PAIRS: [string, string][] = [
  ['6.12-tcg.quick.1', '6.12-tcg.quick.2'],
  ['6.12-tcg.nohugepages.1', '6.12-tcg.nohugepages.2'],
];

for (const [first, second] of PAIRS) {
  t.test(`no subtest id changes between two runs: ${first} and ${second}`, async (t) => {
    const a = parsedRun(first);
    const b = parsedRun(second);
    t.same([...b.keys()].sort(), [...a.keys()].sort(), 'the same programs ran');
    for (const [file, subtests] of a) {
      t.same(
        (b.get(file) ?? []).map((s) => s.id),
        subtests.map((s) => s.id),
        `${file}: ${subtests.length} ids`,
      );
    }
    const all = [...a.values(), ...b.values()].flat();
    t.same(
      all.filter((s) => s.name.trim() === '' || /(^|\/)( #\d+)?(\/|$)/.test(s.id)).map((s) => s.id),
      [],
      'no result is left without a name',
    );
  });
}

t.test('the runs cover every suite that runs programs in the guest, pagemap_ioctl included', async (t) => {
  const programs = new Set([...parsedRun('6.12-tcg.quick.1').values()].flat().map((s) => `${s.suite}/${s.program}`));
  for (const p of ['uffd/uffd-unit-tests', 'uffd/uffd-stress', 'uffd/pagemap_ioctl', 'uffd-lat/uffd-lat'])
    t.ok(programs.has(p), p);
  for (const p of ['uffd-contract/uffd-contract', 'postcopy/postcopy', 'mm/cow', 'mm/gup_longterm', 'mm/mremap_test'])
    t.ok(programs.has(p), p);
});

t.test('pagemap_ioctl: what transact_test measures leaves the id, and stays in the title and metrics', async (t) => {
  // Real output of Debian 6.12.117's pagemap_ioctl in a faultline guest (fixtures/uffd).
  const output = readFileSync(join(import.meta.dirname, 'fixtures', 'uffd', 'pagemap_ioctl.6.12-tcg.txt'), 'utf8');
  const cmd: GuestCommand = { program: 'pagemap_ioctl', args: [], timeoutSec: 600, label: 'pagemap_ioctl' };
  const transact = suiteByName('uffd')
    .parse(cmd, programOutput(output, 0), ctx)
    .subtests.filter((s) => s.name.startsWith('transact_test'));
  t.same(
    transact.map((s) => [s.id, s.title, s.metrics]),
    [
      ['pagemap_ioctl/transact_test count N', 'transact_test count 192', undefined],
      ['pagemap_ioctl/transact_test count N #2', 'transact_test count 0', undefined],
      [
        'pagemap_ioctl/transact_test Extra pages N (N%), extra thread faults N.',
        'transact_test Extra pages 21 (0.0%), extra thread faults 21.',
        [
          { name: 'extra_pages', value: 21, unit: 'pages' },
          { name: 'extra_pages_percent', value: 0, unit: '%' },
          { name: 'extra_thread_faults', value: 21, unit: 'count' },
        ],
      ],
    ],
  );
});
