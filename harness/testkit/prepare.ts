/**
 * What many end-to-end test files share, made once before tap starts them (`npm test`): Debian's
 * 6.12 source and the minimal kernel built from it, with its selftests. Cold, that is a 7-10 minute
 * kernel build on 2 cores; made inside a test file it counted against that file's deadline, and on
 * a fresh machine the first file to need it (a 13 s test with a 10 minute deadline) timed out.
 * Usage: node dist/harness/testkit/prepare.js
 */
import { ensureMinimalKernel } from './minimal-kernel.js';

const t0 = Date.now();
const kernel = await ensureMinimalKernel({ progress: 'plain' });
console.log(`test kernel ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${kernel.bzImage}`);
