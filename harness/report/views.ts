/**
 * The views faultline writes: a run's TAP, JUnit and latency page, a night's JUnit and HTML
 * report. The CLI hands these to run/ and nightly/, which produce records only.
 */
import { join } from 'node:path';
import type { NightlyViews, NightReportInput } from '../nightly/finalize.js';
import { writeFileAtomic } from '../util/fsutil.js';
import { generateReport } from './generate.js';
import { toNightlyJunit } from './junit.js';
import { writeRunViews } from './run-outputs.js';

async function writeNightViews(input: NightReportInput): Promise<{ reportPath: string; junitPath: string }> {
  const junitPath = join(input.dir, 'junit.xml');
  await writeFileAtomic(junitPath, toNightlyJunit(input.record, input.runs));
  return { reportPath: await generateReport(input), junitPath };
}

/** Every view of a night and its runs. */
export const NIGHTLY_VIEWS: NightlyViews = { run: writeRunViews, night: writeNightViews };
