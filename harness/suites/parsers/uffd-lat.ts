/**
 * Parser for tests/uffd-lat (and the shared pieces used by the uffd-contract and
 * postcopy parsers).
 *
 * The programs print KTAP. Before each result line they print diagnostic lines in
 * exactly these forms (tests/lib/fl.h):
 *
 *   # metric <name>=<number> <unit>     e.g. "# metric total_p50=17473 ns"
 *   # hist <name> <k>:<count> ...       log2 histogram: bucket k counts samples v with
 *                                       2^k <= v < 2^(k+1) (k = 0 also holds v = 0);
 *                                       e.g. "# hist total_ns 13:1 14:791 15:116"
 *   # behaviour <text>                  (uffd-contract) the version-dependent behaviour seen
 *
 * <name> is [a-z0-9_]+, <unit> one token (ns, ms, count, bytes, pages/s, MiB/s ...).
 * uffd-lat metrics per case: iterations, warmup, page_size, wall (ms; also the
 * subtest's durationMs), total_{min,mean,p50,p90,p99,p99_9,max} (ns) and, for cases
 * with a handler thread, notify_* (fault -> handler wake-up), resolve_* (the
 * resolving ioctl) and fill_* (MINOR: filling the page through the alias). The
 * "clock-overhead" subtest carries clock_* (back-to-back clock_gettime) and resolution.
 * A histogram becomes metrics "<name>_log2_<k>" with unit "samples".
 *
 * Subtest names are paths "<case>/<backing>[/<mode>]"; ids are "<program>/<name>".
 */
import type { Backing, Metric, Status, SubtestResult } from '../../results/types.js';
import { BACKINGS } from '../../results/types.js';
import { killedBy, type ParsedProgram, type ProgramOutput } from '../types.js';
import { failureReason, parseKtap, type KtapResult, type KtapTest } from './ktap.js';

const METRIC = /^metric ([a-z0-9_]+)=(-?\d+(?:\.\d+)?) (\S+)\s*$/;
const HIST = /^hist ([a-z0-9_]+)((?: \d+:\d+)*)\s*$/;
const BEHAVIOUR = /^behaviour (.+)$/;
const MEASUREMENT = /^(metric|hist|behaviour)\b/;

export interface Diagnostics {
  metrics: Metric[];
  behaviour?: string;
  /** Lines starting with "metric"/"hist" that did not match the format (a program bug). */
  malformed: string[];
}

/** Extracts metrics, histograms and behaviour notes from a result's diagnostic lines. */
export function parseDiagnostics(lines: readonly string[]): Diagnostics {
  const out: Diagnostics = { metrics: [], malformed: [] };
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = METRIC.exec(line))) {
      const value = Number(m[2]);
      if (Number.isFinite(value)) out.metrics.push({ name: m[1] ?? '', value, unit: m[3] ?? '' });
      else out.malformed.push(line);
    } else if ((m = HIST.exec(line))) {
      for (const bucket of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
        const [k, count] = bucket.split(':');
        out.metrics.push({ name: `${m[1] ?? ''}_log2_${k ?? ''}`, value: Number(count), unit: 'samples' });
      }
    } else if ((m = BEHAVIOUR.exec(line))) {
      out.behaviour = m[1];
    } else if (/^(metric|hist)\b/.test(line)) {
      out.malformed.push(line);
    }
  }
  return out;
}

function isBacking(s: string): s is Backing {
  return (BACKINGS as readonly string[]).includes(s);
}

/** The backing named by a path segment of the subtest name, else the command's. */
function backingOf(name: string, fallback?: Backing): Backing | undefined {
  for (const seg of name.split('/')) if (isBacking(seg)) return seg;
  return fallback;
}

function statusOf(t: KtapTest): Status {
  if (t.directive === 'SKIP') return 'skip';
  if (t.directive === 'TIMEOUT' || t.directive === 'ERROR') return 'error';
  return t.ok ? 'pass' : 'fail';
}

export interface ParseOptions {
  suite: string;
  program: string;
  backing?: Backing;
}

/** Status of the whole invocation: a crash, bail-out, timeout or truncated output is 'error'. */
function programStatus(k: KtapResult, out: ProgramOutput): { status: Status; reason?: string } {
  if (out.timedOut) return { status: 'error', reason: `timed out after ${Math.round(out.durationMs / 1000)} s` };
  if (k.bailOut !== undefined) return { status: 'error', reason: `bail out: ${k.bailOut}` };
  if (k.version === undefined) return { status: 'error', reason: 'no TAP header in the output' };
  if (out.exitCode === null) return { status: 'error', reason: killedBy(out) };
  if (!k.totals) {
    return {
      status: 'error',
      reason: `output ends without a Totals line after ${k.tests.length} of ${k.plan ?? '?'} results (crash?)`,
    };
  }
  if (k.plan !== undefined && k.tests.length !== k.plan) {
    return { status: 'error', reason: `planned ${k.plan} results, got ${k.tests.length}` };
  }
  if (out.exitCode !== 0 && out.exitCode !== 1) return { status: 'error', reason: `exit code ${out.exitCode}` };
  const failed = k.tests.filter((t) => statusOf(t) === 'fail').length;
  if (failed > 0 || out.exitCode === 1) {
    return {
      status: 'fail',
      reason: failed > 0 ? `${failed} subtest(s) failed` : 'exit code 1 with no failed subtest',
    };
  }
  if (k.tests.length > 0 && k.tests.every((t) => statusOf(t) === 'skip'))
    return { status: 'skip', reason: 'every subtest skipped' };
  return { status: 'pass' };
}

/** KTAP + metric diagnostics -> SubtestResults. Shared by the three uffd parsers. */
export function parseMetricKtap(out: ProgramOutput, opts: ParseOptions): ParsedProgram {
  const k = parseKtap(out.output);
  const subtests: SubtestResult[] = k.tests.map((t) => {
    const d = parseDiagnostics(t.diagnostics);
    const status = statusOf(t);
    const r: SubtestResult = {
      id: `${opts.program}/${t.name}`,
      suite: opts.suite,
      program: opts.program,
      name: t.name,
      status,
    };
    const backing = backingOf(t.name, opts.backing);
    if (backing) r.backing = backing;
    // Metric, histogram and behaviour lines are results, not the failure's explanation.
    let reason = status === 'pass' || status === 'skip' ? t.reason : failureReason(t, (l) => !MEASUREMENT.test(l));
    if (d.malformed.length > 0 && status === 'pass') {
      r.status = 'error';
      reason = `malformed metric line: ${d.malformed[0] ?? ''}`;
    }
    if (reason) r.reason = reason;
    if (d.metrics.length > 0) r.metrics = d.metrics;
    const wall = d.metrics.find((m) => m.name === 'wall' && m.unit === 'ms');
    if (wall) r.durationMs = wall.value;
    return r;
  });
  const ps = programStatus(k, out);
  const parsed: ParsedProgram = { status: ps.status, subtests };
  if (ps.reason) parsed.reason = ps.reason;
  return parsed;
}

export function parseUffdLat(
  out: ProgramOutput,
  opts: Omit<ParseOptions, 'program'> & { program?: string },
): ParsedProgram {
  return parseMetricKtap(out, { ...opts, program: opts.program ?? 'uffd-lat' });
}
