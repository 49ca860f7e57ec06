/**
 * The dependency rules of docs/architecture.md, as `npm run lint` enforces them: each fires on a
 * small violating snippet at a path it binds, names itself in its message, and leaves alone what
 * it allows; and the repository keeps them.
 */
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import { describe, expect, it } from 'vitest';
import { PURE_CORE as PURE_CORE_FILES } from '../eslint.config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

const STAND_ALONE = 'stand-alone packages';
const PURE_CORE = 'pure core';
const DRIVERS = 'drivers without HTTP';
const SIMULATORS = 'no simulators in the gateway';

/** The names of the dependency rules a message list reports, once each. */
function rulesIn(messages: Linter.LintMessage[]): string[] {
  const names = messages.flatMap((m) => (m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax' ? [/dependency rule "([^"]+)"/.exec(m.message)?.[1] ?? m.message] : []));
  return [...new Set(names)].sort();
}

/** The dependency rules that `code` breaks at `path` (a file there need not exist). */
async function broken(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(ROOT, path) });
  return rulesIn(result!.messages);
}

const SIM = (up: string) => `${up}simulators/src/printer/printer-sim.js`;

describe('stand-alone packages: firmware-protocol and ledger-client import nothing of ours outside themselves', () => {
  it.each([
    ['ledger-client/src/mapping.ts', "import '../../gateway/src/billing/money.js';"],
    ['ledger-client/src/mapping.ts', "import '../../firmware-protocol/src/index.js';"],
    ['ledger-client/src/graphql.ts', `export const sim = () => import('${SIM('../../')}');`],
    ['firmware-protocol/src/codec.ts', "export * from '../../gateway/src/log.js';"],
    ['firmware-protocol/src/framer.ts', "import '../../ledger-client/src/ids.js';"],
    ['firmware-protocol/scripts/make-vectors.ts', "import '../../test/helpers.js';"],
  ])('%s: %s', async (path, code) => {
    expect(await broken(path, code)).toEqual([STAND_ALONE]);
  });

  it('allows their own modules and libraries', async () => {
    expect(await broken('ledger-client/src/mapping.ts', "import 'zod';\nimport 'node:crypto';\nimport './money.js';")).toEqual([]);
    expect(await broken('firmware-protocol/scripts/make-vectors.ts', "import 'node:fs';\nimport '../src/codec.js';")).toEqual([]);
  });
});

describe('pure core: no I/O, and nothing of ours but the pure core', () => {
  it.each(PURE_CORE_FILES)('binds %s', async (path) => {
    expect(existsSync(resolve(ROOT, path))).toBe(true);
    expect(await broken(path, "import 'node:fs';")).toEqual([PURE_CORE]);
  });

  it.each([
    "import 'fs';",
    "import 'node:net';",
    "import 'node:http';",
    "import 'node:child_process';",
    "import 'node:dgram';",
    "import 'serialport';",
    "import '@serialport/parser-readline';",
    "import 'mqtt';",
    "import 'aedes';",
    "import 'onoff';",
    "import 'fastify';",
    "import '@fastify/static';",
    "import 'better-sqlite3';",
    "import 'pino';",
    "import '../journal/journal.js';",
    "import { Journal } from '../journal/journal.js';",
    "import '../log.js';",
    "import '../transport/serial-link.js';",
    "import '../mqtt/broker.js';",
    "import '../http/app.js';",
    "import '../ledger/transport.js';",
    "import '../../../ledger-client/src/graphql.js';",
    "import './billing.js';",
    "export const fs = () => import('node:fs/promises');",
    "export const load = (name: string) => import(`../journal/${name}.js`);",
  ])('gateway/src/billing/price.ts: %s', async (code) => {
    expect(await broken('gateway/src/billing/price.ts', code)).toEqual([PURE_CORE]);
  });

  it('a driver is not pure core', async () => {
    expect(await broken('gateway/src/devices/printer/filament.ts', "import './driver.js';")).toEqual([PURE_CORE]);
  });

  it('allows the pure core its own modules, pure libraries, ledger-client money and types', async () => {
    expect(await broken('gateway/src/billing/price.ts', "import 'zod';\nimport './money.js';\nimport '../../../ledger-client/src/money.js';")).toEqual([]);
    expect(await broken('gateway/src/billing/charge.ts', "import './price.js';\nimport './split.js';")).toEqual([]);
    expect(await broken('gateway/src/sessions/machine.ts', "export type { Decision } from '../access/decide.js';")).toEqual([]);
    // types of the data a shell hands the core are erased at build time
    expect(await broken('gateway/src/sessions/usage.ts', "import type { SessionRecord } from '../billing/billing.js';")).toEqual([]);
  });
});

describe('drivers without HTTP', () => {
  it.each([
    "import 'fastify';",
    "import '@fastify/static';",
    "import 'fastify-type-provider-zod';",
    "import '../../http/app.js';",
    "export const app = () => import('../../http/app.js');",
  ])('gateway/src/devices/printer/driver.ts: %s', async (code) => {
    expect(await broken('gateway/src/devices/printer/driver.ts', code)).toEqual([DRIVERS]);
  });

  it('allows a driver its I/O and adapters', async () => {
    expect(await broken('gateway/src/devices/mqtt-reader/reader.ts', "import 'mqtt';\nimport 'node:net';\nimport '../../journal/journal.js';\nimport '../../mqtt/broker.js';")).toEqual([]);
  });
});

describe('no simulators in the gateway', () => {
  it.each([
    ['gateway/src/gateway.ts', `import '${SIM('../../')}';`],
    ['gateway/src/gateway.ts', `export { PrinterSim } from '${SIM('../../')}';`],
    ['gateway/src/gateway.ts', `export const sim = () => import('${SIM('../../')}');`],
    ['gateway/src/gateway.ts', 'export const sim = (kind: string) => import(`../../simulators/src/${kind}/control.js`);'],
    ['gateway/src/http/app.ts', `import '${SIM('../../')}';`],
    ['gateway/src/cli/main.ts', `export const sim = () => import('${SIM('../../../')}');`],
    ['gateway/src/cli/commands/ledger.ts', `import '${SIM('../../../../')}';`],
    ['gateway/src/devices/printer/driver.ts', `import '${SIM('../../../')}';`],
  ])('%s: %s', async (path, code) => {
    expect(await broken(path, code)).toEqual([SIMULATORS]);
  });

  it('binds the pure core too', async () => {
    expect(await broken('gateway/src/billing/price.ts', `import '${SIM('../../../')}';`)).toEqual([SIMULATORS, PURE_CORE].sort());
  });

  it('allows the sim command to load them lazily', async () => {
    const path = 'gateway/src/cli/commands/sim.ts';
    expect(await broken(path, `export const lab = () => import('../../../../simulators/src/lab.js');\nexport type { PrinterSim } from '${SIM('../../../../')}';`)).toEqual([]);
    expect(await broken(path, `import type { PrinterSim } from '${SIM('../../../../')}';\nexport const sims: PrinterSim[] = [];`)).toEqual([]);
    expect(await broken(path, `import '${SIM('../../../../')}';`)).toEqual([SIMULATORS]);
    expect(await broken(path, `export { PrinterSim } from '${SIM('../../../../')}';`)).toEqual([SIMULATORS]);
  });
});

describe('the repository', () => {
  it('keeps the dependency rules', { timeout: 180_000 }, async () => {
    const results = await eslint.lintFiles(['gateway/src', 'ledger-client', 'firmware-protocol']);
    const found = results.map((r) => ({ file: relative(ROOT, r.filePath), rules: rulesIn(r.messages) })).filter((f) => f.rules.length > 0);
    expect(found).toEqual([]);
  });
});
