import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../util/project.js';
import { compareDebianVersions, newestDebianVersion } from './debian-version.js';

const FIXTURES = join(PROJECT_ROOT, 'harness', 'kernel', 'fixtures', 'apt');

/**
 * dpkg-compare-versions.txt: "A lt|eq|gt B" lines, the verdicts of `dpkg --compare-versions` on
 * this host for pairs of real version strings (installed packages, apt-cache madison of the
 * kernels and a few toolchain packages): epochs, '~' pre-releases, '+deb12u1', '+dfsg'.
 */
t.test('agrees with dpkg --compare-versions on every captured pair', async (t) => {
  const lines = (await readFile(join(FIXTURES, 'dpkg-compare-versions.txt'), 'utf8')).trim().split('\n');
  t.ok(lines.length > 600, 'the captured pairs are all there');
  const wrong: string[] = [];
  for (const line of lines) {
    const [a = '', verdict = '', b = ''] = line.split(' ');
    const got = Math.sign(compareDebianVersions(a, b));
    const want = verdict === 'lt' ? -1 : verdict === 'eq' ? 0 : 1;
    if (got !== want) wrong.push(`${line} (got ${got})`);
    if (Math.sign(compareDebianVersions(b, a)) !== -want) wrong.push(`${line} reversed`);
  }
  t.same(wrong, [], 'no pair ordered differently from dpkg');
});

t.test('the newest kernel of the captured madison lists', async (t) => {
  const versions = (name: string) =>
    readFile(join(FIXTURES, name), 'utf8').then((s) =>
      s
        .trim()
        .split('\n')
        .map((l) => (l.split('|')[1] ?? '').trim()),
    );
  // 6.12.115-2 sorts after 6.12.113-1 and before 6.12.117-1: numbers, not characters.
  t.equal(newestDebianVersion(await versions('madison-linux-6.12.txt')), '6.12.118-1~deb12u1');
  t.equal(newestDebianVersion(await versions('madison-linux-6.1.txt')), '6.1.192-3');
  t.equal(newestDebianVersion([]), undefined);
});
