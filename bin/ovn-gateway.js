#!/usr/bin/env node
// Runs the TypeScript sources through tsx where it is installed (a development clone), and the
// compiled dist/ otherwise (a production install made with `npm ci --omit=dev && npm run build`).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let dev = true;
try {
  require.resolve('tsx/esm/api');
} catch {
  dev = false;
}
if (dev) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { main } = dev ? await import('../gateway/src/cli/main.ts') : await import('../dist/gateway/src/cli/main.js');
await main();
