/**
 * Stable names for KTAP results. A subtest's id must not change from run to run, or every
 * comparison (series, nightly, history) shows one test vanish and another appear. Two
 * things in kselftest output break that:
 *
 *  - Numbers a program measures and prints in the result line itself, e.g. pagemap_ioctl's
 *    "transact_test Extra pages 6 (0.0%), extra thread faults 6.", next run "... 5 ...".
 *    Known ones (MEASURED_NAMES, from the format strings of the tests' sources) are replaced
 *    by N in the name; the printed name is kept as the title, and the numbers that are
 *    measurements as metrics.
 *  - Results with no name at all ("ok 54 # SKIP ..."): named by their KTAP number and, when
 *    a "[RUN]"/"[INFO]" heading comes before them, by that heading: "test 54".
 */
import type { Metric } from '../../results/types.js';
import type { KtapTest } from './ktap.js';

/** What replaces a run-varying number in a name. */
const NUMBER_PLACEHOLDER = 'N';

/**
 * Result names with numbers that change from run to run, per program, as the program prints
 * them: `{}` is such a number; `{name unit}` is one that is also a measurement, kept as
 * metric `name`. Found by reading each program's ksft_test_result*() format strings.
 */
const MEASURED_NAMES: Record<string, readonly string[]> = {
  pagemap_ioctl: [
    // transact_test(): pages a racing reset saw twice, over all iterations and threads.
    'transact_test Extra pages {extra_pages pages} ({extra_pages_percent %}%), extra thread faults {extra_thread_faults count}.',
    // The dirty pages a read-reset found, checked against what the test wrote (a count
    // that follows the vCPUs, not a measurement).
    'transact_test count {}',
    // A failure's own message.
    'Lost update, iter {}, {} vs {}.',
    // The three PAGEMAP_SCAN return values the test checks (they differ only when it fails).
    'sanity_tests_sd Repeated pattern of written and non-written pages in parts {} {} {}',
  ],
  // The ioctl's status: 0 when it passes, whatever went wrong when it fails.
  gup_test: ['ioctl status {}'],
  // How many hugepages the failing soft-offline took away.
  'hugetlb-soft-offline': ['MADV_SOFT_OFFLINE reduced {} hugepages'],
};

const NUMBER = '(-?\\d+(?:\\.\\d+)?)';

interface MeasuredName {
  pattern: RegExp;
  /** The placeholder text in order, and the metric each number is (undefined: not a measurement). */
  template: string;
  metrics: ({ name: string; unit: string } | undefined)[];
}

function compile(format: string): MeasuredName {
  const parts = format.split(/\{([^}]*)\}/);
  let pattern = '';
  let template = '';
  const metrics: MeasuredName['metrics'] = [];
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      pattern += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      template += part;
      return;
    }
    pattern += NUMBER;
    template += NUMBER_PLACEHOLDER;
    const [name, unit] = part.split(' ');
    metrics.push(name ? { name, unit: unit ?? '' } : undefined);
  });
  return { pattern: new RegExp(`^${pattern}$`), template, metrics };
}

const COMPILED = new Map(Object.entries(MEASURED_NAMES).map(([p, formats]) => [p, formats.map(compile)]));

/** A result's stable name, the name it printed when that differs, and the measurements in it. */
export interface StableName {
  name: string;
  title?: string;
  metrics: Metric[];
}

/** `printed` with the run-varying numbers of `program`'s known result names replaced. */
function stableName(program: string, printed: string): StableName {
  for (const m of COMPILED.get(program) ?? []) {
    const match = m.pattern.exec(printed);
    if (!match) continue;
    const metrics: Metric[] = [];
    m.metrics.forEach((metric, i) => {
      if (metric) metrics.push({ name: metric.name, value: Number(match[i + 1]), unit: metric.unit });
    });
    return { name: m.template, title: printed, metrics };
  }
  return { name: printed, metrics: [] };
}

/** kselftest's headings: ksft_print_msg("[RUN] ...") before a case, "[INFO] ..." before a group of them. */
const HEADING = /^\[(?:RUN|INFO)\]\s*(.*?)\s*$/;

/**
 * The names of a program's results in order: their stable names (`program`: the kselftest
 * whose known names apply; none for the user's own programs), and for a result without one
 * "test <KTAP number>", after the heading above it ("<heading>: test 54") when there is one.
 */
export function ktapNames(tests: readonly KtapTest[], program?: string): StableName[] {
  let heading: string | undefined;
  return tests.map((t) => {
    for (const d of t.diagnostics) {
      const h = HEADING.exec(d.trim())?.[1];
      if (h) heading = h;
    }
    if (t.name) return program === undefined ? { name: t.name, metrics: [] } : stableName(program, t.name);
    return { name: heading ? `${heading}: test ${t.number}` : `test ${t.number}`, metrics: [] };
  });
}
