import t from 'tap';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readArtifacts } from './build-metadata.js';

/** metadata.json of a real minimal-kernel build (tinyconfig + minimal + uffd, selftests built). */
const CAPTURED = join(import.meta.dirname, 'fixtures', 'build-metadata.json');

type Json = Record<string, unknown>;

/** An artifact dir holding the captured metadata.json (changed by `change`, or replaced by `text`). */
async function artifacts(
  t: { teardown(fn: () => unknown): void },
  change: (m: Json) => void = () => undefined,
  text?: string,
): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'faultline-artifacts-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  for (const f of ['bzImage', '.config', 'System.map']) await writeFile(join(d, f), 'x');
  const m = JSON.parse(await readFile(CAPTURED, 'utf8')) as Json;
  change(m);
  await writeFile(join(d, 'metadata.json'), text ?? JSON.stringify(m));
  return d;
}

t.test('complete artifacts with a valid metadata.json are a cache hit', async (t) => {
  const m = await readArtifacts(await artifacts(t));
  t.equal(m?.key, 'ea20547065852d50eacca3c2');
  t.ok(m?.selftests?.programs.some((p) => p.name === 'uffd-unit-tests' && p.status === 'built'));
  const bare = await readArtifacts(
    await artifacts(t, (m) => {
      m['selftests'] = null;
      m['ccache'] = null;
      m['commit'] = 'c0ffee';
    }),
  );
  t.equal(bare?.selftests, null, 'built without selftests nor ccache, from a --ref');
});

t.test('a missing, damaged or stale metadata.json is no cache hit (rebuild), never an error', async (t) => {
  const text = await readFile(CAPTURED, 'utf8');
  const notCached = async (what: string, dir: Promise<string>): Promise<void> => {
    t.equal(await readArtifacts(await dir), undefined, what);
  };
  await notCached('truncated JSON (a build killed while writing)', artifacts(t, undefined, text.slice(0, 200)));
  await notCached('an empty file', artifacts(t, undefined, ''));
  await notCached('JSON that is not an object', artifacts(t, undefined, '[]'));
  await notCached(
    'another build recipe',
    artifacts(t, (m) => {
      m['recipeVersion'] = 0;
    }),
  );
  await notCached(
    'a field missing',
    artifacts(t, (m) => {
      delete m['release'];
    }),
  );
  await notCached(
    'a field of the wrong type',
    artifacts(t, (m) => {
      m['durationsMs'] = { kernel: 'slow' };
    }),
  );
  await notCached(
    'selftests without their programs',
    artifacts(t, (m) => {
      m['selftests'] = { dir: '/x', key: 'k', tree: '/t' };
    }),
  );
  await notCached(
    'a selftest program of unknown status',
    artifacts(t, (m) => {
      (m['selftests'] as { programs: Json[] }).programs[0] = { name: 'uffd-stress', status: 'maybe' };
    }),
  );
  await notCached(
    'null where the tree state may only say dirty or not',
    artifacts(t, (m) => {
      (m['treeState'] as Json)['dirty'] = null;
    }),
  );
  const noImage = await artifacts(t);
  await unlink(join(noImage, 'bzImage'));
  await notCached('valid metadata without its bzImage', Promise.resolve(noImage));
  const noMeta = await artifacts(t);
  await unlink(join(noMeta, 'metadata.json'));
  await notCached('no metadata.json (a build that did not finish)', Promise.resolve(noMeta));
});
