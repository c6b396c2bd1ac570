import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FaultlineError } from '../util/errors.js';
import { exists } from '../util/fsutil.js';

/**
 * Resolves the modules a guest needs (e.g. virtio_net on Debian's kernel, where it
 * is =m) to an ordered list of module files, dependencies first, from the
 * kernel's own modules.dep; modules listed in modules.builtin need nothing.
 */
export interface ModuleFile {
  name: string;
  /** Absolute path of the .ko / .ko.xz / .ko.zst in the modules dir. */
  path: string;
}

function modName(path: string): string {
  return basename(path)
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replace(/-/g, '_');
}

export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const map = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const path = line.slice(0, i).trim();
    const deps = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    map.set(modName(path), { path, deps });
  }
  return map;
}

export async function resolveModules(modulesDir: string, wanted: readonly string[]): Promise<ModuleFile[]> {
  const depFile = join(modulesDir, 'modules.dep');
  if (!(await exists(depFile)))
    throw new FaultlineError(`${modulesDir} has no modules.dep: pass the kernel's lib/modules/<release> directory`);
  const deps = parseModulesDep(await readFile(depFile, 'utf8'));
  const builtinFile = join(modulesDir, 'modules.builtin');
  const builtin = new Set(
    (await exists(builtinFile)) ? (await readFile(builtinFile, 'utf8')).split('\n').filter(Boolean).map(modName) : [],
  );
  const ordered: ModuleFile[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]): void => {
    const n = name.replace(/-/g, '_');
    if (seen.has(n) || builtin.has(n)) return;
    const entry = deps.get(n);
    if (!entry)
      throw new FaultlineError(
        `module ${n} (needed by ${chain.join(' <- ') || 'the guest'}) is neither built in nor in ${depFile}`,
      );
    seen.add(n);
    for (const d of entry.deps) visit(modName(d), [n, ...chain]);
    ordered.push({ name: n, path: join(modulesDir, entry.path) });
  };
  for (const w of wanted) visit(w, []);
  return ordered;
}
