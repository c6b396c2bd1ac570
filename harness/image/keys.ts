import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { cacheDir, exists, writeFileAtomic } from '../util/fsutil.js';

/** The key pair the harness logs in with and the guest's host key: generated once, kept in the cache. */
export interface GuestKeys {
  clientPrivate: string;
  clientPublic: string;
  clientPrivatePath: string;
  hostPrivate: string;
  hostPublic: string;
}

async function pair(dir: string, name: string): Promise<{ priv: string; pub: string }> {
  const privPath = join(dir, name);
  const pubPath = `${privPath}.pub`;
  if (!(await exists(privPath)) || !(await exists(pubPath))) {
    const k = ssh2.utils.generateKeyPairSync('ed25519', { comment: `faultline-${name}` });
    await writeFileAtomic(privPath, k.private, 0o600);
    await writeFileAtomic(pubPath, k.public + '\n');
  }
  return { priv: await readFile(privPath, 'utf8'), pub: (await readFile(pubPath, 'utf8')).trim() };
}

export async function guestKeys(): Promise<GuestKeys> {
  const dir = await cacheDir('keys');
  const client = await pair(dir, 'id_ed25519');
  const host = await pair(dir, 'ssh_host_ed25519_key');
  return {
    clientPrivate: client.priv,
    clientPublic: client.pub,
    clientPrivatePath: join(dir, 'id_ed25519'),
    hostPrivate: host.priv,
    hostPublic: host.pub,
  };
}
