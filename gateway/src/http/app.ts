/**
 * The HTTP API as a fastify plugin built by a function; `server.ts`-style listening lives in
 * the composition root, and tests call `app.inject`.
 */
import Fastify from 'fastify';
import type { DeviceHealth } from '../devices/device.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';

export interface HealthSource {
  name: string;
  startedAt: Date;
  devices(): DeviceHealth[];
}

export function buildApp(src: HealthSource, log: Logger) {
  // Requests are not logged one by one (a tablet polling health would flood the SD card).
  const app = Fastify({ loggerInstance: log.child({ part: 'http' }, { level: 'warn' }) });

  app.get('/api/health', async () => {
    const devices = src.devices();
    return {
      gateway: src.name,
      version: VERSION,
      startedAt: src.startedAt.toISOString(),
      uptimeS: Math.round((Date.now() - src.startedAt.getTime()) / 1000),
      status: devices.every((d) => d.state === 'online') ? 'ok' : 'degraded',
      devices,
    };
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: 'not-found', message: `no route ${req.method} ${req.url}` });
  });
  return app;
}
