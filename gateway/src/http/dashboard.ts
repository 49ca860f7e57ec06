/**
 * The web dashboard: the plain files in gateway/web served at `/`, no build step. The pages
 * talk to the API with the token the person pasted; nothing here is secret.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** gateway/web, from the sources (gateway/src/http) or from the compiled dist/gateway/src/http. */
function webRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../../web'), join(here, '../../../../gateway/web')];
  const root = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!root) throw new Error(`the dashboard's files are missing (looked for index.html in ${candidates.join(', ')})`);
  return root;
}

export async function registerDashboard(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: webRoot(),
    prefix: '/',
    decorateReply: false,
    // The modules are not fingerprinted: every file is revalidated (a cheap 304 by ETag), so a
    // browser never mixes the modules of two versions after an upgrade.
    cacheControl: false,
    setHeaders: (reply) => {
      void reply.header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    },
  });
}
