/**
 * The web dashboard: the plain files in gateway/web served at `/`, no build step. The pages
 * talk to the API with the token the person pasted; nothing here is secret.
 *
 * The files are read once at start, compressed (brotli and gzip) and named by a hash of them
 * all: index.html (always revalidated) points to `v/<hash>/…`, which browsers keep for a
 * year. The modules import each other relatively, so they stay within one version, and an
 * upgrade is a new hash: a browser never mixes the modules of two versions.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** gateway/web, from the sources (gateway/src/http) or from the compiled dist/gateway/src/http. */
function webRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../../web'), join(here, '../../../../gateway/web')];
  const root = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!root) throw new Error(`the dashboard's files are missing (looked for index.html in ${candidates.join(', ')})`);
  return root;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  type: string;
  etag: string;
  identity: Buffer;
  br: Buffer;
  gzip: Buffer;
}

function asset(path: string, body: Buffer): Asset {
  const type = TYPES[extname(path)];
  if (!type) throw new Error(`the dashboard's file ${path} has a type the gateway does not serve (known: ${Object.keys(TYPES).join(' ')})`);
  return {
    type,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`,
    identity: body,
    br: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
    gzip: gzipSync(body, { level: 9 }),
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Every file of the dashboard by its path (`js/app.js`), the version they make together, and the page pointing to it. */
export function dashboardFiles(root = webRoot()) {
  const raw = new Map(filesUnder(root).map((f) => [relative(root, f).split(sep).join('/'), readFileSync(f)]));
  const hash = createHash('sha256');
  for (const [path, body] of [...raw].sort(([a], [b]) => a.localeCompare(b))) hash.update(path).update('\0').update(body);
  const version = hash.digest('base64url').slice(0, 10);
  // the page's references to our files (href="style.css", src="js/app.js") go through the version
  const page = raw
    .get('index.html')!
    .toString('utf8')
    .replace(/(href|src)="([^"#:]+)"/g, (whole, attr: string, path: string) => (raw.has(path) && path !== 'index.html' ? `${attr}="v/${version}/${path}"` : whole));
  const assets = new Map([...raw].filter(([path]) => path !== 'index.html').map(([path, body]) => [path, asset(path, body)]));
  return { version, index: asset('index.html', Buffer.from(page)), assets };
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset, cacheControl: string) {
  void reply.header('content-type', a.type).header('cache-control', cacheControl).header('etag', a.etag).header('vary', 'accept-encoding').header('x-content-type-options', 'nosniff');
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  const accepts = String(req.headers['accept-encoding'] ?? '');
  const encoding = /\bbr\b/.test(accepts) ? 'br' : /\bgzip\b/.test(accepts) ? 'gzip' : 'identity';
  if (encoding !== 'identity') void reply.header('content-encoding', encoding);
  return reply.send(a[encoding]);
}

export async function registerDashboard(app: FastifyInstance): Promise<void> {
  const { version, index, assets } = dashboardFiles();
  const page = (req: FastifyRequest, reply: FastifyReply) => send(req, reply, index, 'no-cache');
  app.get('/', { schema: { hide: true } }, page);
  app.get('/index.html', { schema: { hide: true } }, page);
  // browsers ask for it whatever the page says
  app.get('/favicon.ico', { schema: { hide: true } }, (_req, reply) => reply.redirect(`/v/${version}/favicon.svg`, 301));
  app.get<{ Params: { version: string; '*': string } }>('/v/:version/*', { schema: { hide: true } }, (req, reply) => {
    const a = assets.get(req.params['*']);
    if (!a) return reply.code(404).send({ error: 'not-found', message: `the dashboard has no file ${req.params['*']}` });
    // an older version's page asking for its files gets today's, revalidated rather than kept
    return send(req, reply, a, req.params.version === version ? 'public, max-age=31536000, immutable' : 'no-cache');
  });
}
