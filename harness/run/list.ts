import { BACKINGS } from '../results/types.js';
import { buildSelftests } from '../selftests/build.js';
import type { SelftestProgram } from '../results/selftests.js';
import { allSuites } from '../suites/registry.js';
import type { GuestCommand, Suite, SuiteContext } from '../suites/types.js';
import { UsageError } from '../util/errors.js';
import { acquireKernel } from '../kernel/bootable.js';
import { acquireOptionsOf, buildSuitePrograms, suiteContext } from './run.js';
import type { RunRequest } from './request.js';

/**
 * `faultline run --list`: every suite, and what the tested tree offers for it: the
 * commands a run would make (program, arguments, backing, category), whether each
 * program built, and the test cases uffd-unit-tests plans. Nothing is booted.
 */

async function treeOf(req: RunRequest): Promise<string> {
  if (req.selftestsTree) return req.selftestsTree;
  if (req.kernel.kind === 'build') return req.kernel.kernelSrc;
  if (req.kernel.kind === 'debian') {
    const k = await acquireKernel(req.kernel, acquireOptionsOf(req));
    if (k.sourceTree) return k.sourceTree;
  }
  throw new UsageError('--list reads the tested tree: pass --kernel-src DIR with --kernel');
}

function commandLine(c: GuestCommand): string {
  return [c.interpreter ? `${c.interpreter} ${c.program}` : c.program, ...c.args].join(' ');
}

function programState(p: SelftestProgram | undefined, c: GuestCommand): string {
  if (c.skipReason) return `skip: ${c.skipReason}`;
  if (!p) return 'not built';
  return p.status === 'built' ? '' : `${p.status}: ${p.reason ?? ''}`;
}

function listSuite(suite: Suite, ctx: SuiteContext): string[] {
  const lines = [`suite ${suite.name}: ${suite.description}`];
  const byCategory = new Map<string, string[]>();
  for (const c of suite.plan(ctx)) {
    const p = ctx.programs.find((q) => q.name === c.program);
    const run = p?.mmRuns?.find((r) => r.args.join(' ') === c.args.join(' '));
    const category = run?.category ?? '';
    const memory = run ? run.backings.join(',') : (c.backing ?? '');
    const line = `    ${commandLine(c).padEnd(44)} ${memory.padEnd(20)} ${programState(p, c)}`.trimEnd();
    byCategory.set(category, [...(byCategory.get(category) ?? []), line]);
    for (const tc of p?.cases ?? [])
      if (c.args.length === 0) byCategory.get(category)?.push(`      case ${tc.test} on ${tc.mems.join(', ')}`);
  }
  for (const [category, entries] of byCategory) {
    if (category) lines.push(`  category ${category} (${entries.length} commands)`);
    lines.push(...entries);
  }
  return lines;
}

export async function listOffer(req: RunRequest): Promise<string> {
  const tree = await treeOf(req);
  const selftests = await buildSelftests({ tree });
  const offered = { programs: [...selftests.programs], tree };
  const suites = allSuites();
  await buildSuitePrograms(suites, offered);
  // Every backing unless the user named some: the list shows what the tree offers.
  const ctx = { ...suiteContext(req, offered.programs), ...(req.backings.length ? {} : { backings: BACKINGS }) };
  const out = [`tree: ${tree}`, ''];
  for (const s of suites) out.push(...listSuite(s, ctx), '');
  return out.join('\n');
}
