/**
 * `faultline serve`: a read-only static file server on 127.0.0.1 for browsing reports and run
 * directories (the reports also work from file://; this is a convenience). GET/HEAD only, no
 * path escapes out of the root, directories show index.html or a listing; `/` of a results root
 * redirects to the newest night's report (found in the history index on every request).
 */
import { createReadStream, type Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { readHistory } from '../history/index.js';
import { exists } from '../util/fsutil.js';
import { newestReport } from './nights.js';
import { escapeMarkup } from '../util/markup.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.tap': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.css': 'text/css; charset=utf-8',
};

export interface ServeHandle {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function serveDirectory(root: string, opts: { port?: number; host?: string } = {}): Promise<ServeHandle> {
  const base = await realpath(resolve(root));
  const host = opts.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    void answer(base, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end('error');
      else res.destroy();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 8765, host, () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 8765);
  return {
    server,
    url: `http://${host}:${port}/`,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

/** Answers one request: a file, a directory's index.html or listing, or a refusal. */
async function answer(base: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  let rel: string;
  try {
    rel = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    res.writeHead(400).end('bad path');
    return;
  }
  if (rel === '/' && (await redirectToNewestReport(base, res))) return;
  let path = resolve(base, `.${rel}`);
  try {
    path = await realpath(path);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  if (path !== base && !path.startsWith(base + sep)) {
    res.writeHead(403).end('outside the served directory');
    return;
  }
  const st = await stat(path);
  if (st.isDirectory()) {
    if (!rel.endsWith('/')) {
      res.writeHead(301, { location: `${rel}/` }).end();
      return;
    }
    const index = join(path, 'index.html');
    const hasIndex = await stat(index)
      .then((s) => s.isFile())
      .catch(() => false);
    if (hasIndex) path = index;
    else {
      const body = directoryListing(rel, await readdir(path, { withFileTypes: true }));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') res.end();
  else
    createReadStream(path)
      .on('error', () => res.destroy())
      .pipe(res);
}

/**
 * `/` of a results root without its own index.html: redirects to the newest night's report, where
 * its relative links (runs, neighbours, nights.html) work. False when there is none to redirect to.
 */
async function redirectToNewestReport(base: string, res: ServerResponse): Promise<boolean> {
  const newest = await newestReport(await readHistory(base), base);
  if (!newest || (await exists(join(base, 'index.html')))) return false;
  res
    .writeHead(302, {
      location: `/${newest
        .split(sep)
        .map(encodeURIComponent)
        .join('/')
        .replace(/index\.html$/, '')}`,
    })
    .end();
  return true;
}

/** An HTML listing of a directory without index.html, sorted by name, with ../ below the root. */
function directoryListing(rel: string, entries: Dirent[]): string {
  const ents = [...entries].sort((a, b) => a.name.localeCompare(b.name));
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${escapeMarkup(rel)}</title></head><body><h1>${escapeMarkup(rel)}</h1><ul>${rel !== '/' ? '<li><a href="../">../</a></li>' : ''}${ents.map((e) => `<li><a href="${escapeMarkup(encodeURIComponent(e.name))}${e.isDirectory() ? '/' : ''}">${escapeMarkup(e.name)}${e.isDirectory() ? '/' : ''}</a></li>`).join('')}</ul></body></html>`;
}
