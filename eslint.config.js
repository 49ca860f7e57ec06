import { basename } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// ---- dependency rules: which part may import which (docs/architecture.md) ----

/** The pure core: the decisions that matter, pure functions over plain data. */
export const PURE_CORE = [
  'gateway/src/access/decide.ts',
  'gateway/src/sessions/machine.ts',
  'gateway/src/sessions/usage.ts',
  'gateway/src/sessions/recovery.ts',
  'gateway/src/sessions/badge-flood.ts',
  'gateway/src/devices/metering-node/meter.ts',
  'gateway/src/devices/mqtt-instrument/counters.ts',
  'gateway/src/devices/printer/filament.ts',
  'gateway/src/devices/printer/file-meter.ts',
  'gateway/src/devices/printer/job.ts',
  'gateway/src/devices/printer/printer-state.ts',
  'gateway/src/devices/printer/slicer-metadata.ts',
  'gateway/src/devices/moonraker/host-status.ts',
  'gateway/src/billing/money.ts',
  'gateway/src/billing/price.ts',
  'gateway/src/billing/split.ts',
  'gateway/src/billing/charge.ts',
];
/** The one module of the gateway that may load simulators (lazily, for `ovn-gateway sim`). */
const SIM_COMMAND = 'gateway/src/cli/commands/sim.ts';

/**
 * A rule as lint options: every import whose specifier matches one of `forbidden` (regular
 * expressions) is an error whose message names the rule. Static imports and re-exports are
 * no-restricted-imports' part; dynamic import(), which that rule cannot see, no-restricted-syntax's.
 */
function dependencyRule(name, why, forbidden, { allowTypeImports = false } = {}) {
  const message = `dependency rule "${name}": ${why}. See docs/architecture.md.`;
  return {
    patterns: forbidden.map((regex) => ({ regex, caseSensitive: true, message, allowTypeImports })),
    syntax: forbidden.flatMap((regex) => {
      const re = `/${regex.replaceAll('/', '\\/')}/u`;
      return [
        { selector: `ImportExpression[source.value=${re}]`, message },
        { selector: `ImportExpression > TemplateLiteral > TemplateElement[value.raw=${re}]`, message },
      ];
    }),
  };
}

const standAlone = (others) =>
  dependencyRule('stand-alone packages', 'firmware-protocol and ledger-client import nothing of ours outside themselves, so any tool can use them', [`(^|/)(gateway|simulators|bench|test|${others})/`]);

const pureCore = dependencyRule(
  'pure core',
  'the pure core imports no I/O (no fs, net, http, child_process, dgram, serialport, mqtt, aedes, onoff, fastify, better-sqlite3, pino) and nothing of ours but other pure-core modules, so its decisions stay testable without the world',
  [
    '^(node:)?(fs|net|http|https|http2|tls|dgram|dns|child_process|worker_threads|cluster)(/|$)',
    '^@?(serialport|mqtt|aedes|onoff|fastify|better-sqlite3|pino|ws|prom-client)([/-]|$)',
    // Relative imports only of the pure core's own modules (by file name; ledger-client's money.ts is pure too).
    `^\\.(?!.*/(${PURE_CORE.map((f) => basename(f, '.ts')).join('|')})\\.js$)`,
  ],
  // a type names the plain data the core works on; it is erased, so it brings no I/O in
  { allowTypeImports: true },
);

const driversWithoutHttp = dependencyRule('drivers without HTTP', 'a driver talks to its device and emits typed events; it imports no HTTP (fastify, @fastify/*, gateway/src/http/)', ['^@?fastify([/-]|$)', '(^|/)http/']);

const noSimulators = dependencyRule('no simulators in the gateway', `production code never loads test equipment; only ${SIM_COMMAND} may, lazily`, ['(^|/)simulators/']);

/**
 * ESLint keeps one set of options per rule and file (the last block's), so a block lists every
 * dependency rule its files are bound by, the wider blocks' included.
 */
const restrict = (...rules) => ({
  'no-restricted-imports': ['error', { patterns: rules.flatMap((r) => r.patterns) }],
  'no-restricted-syntax': ['error', ...rules.flatMap((r) => r.syntax)],
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'scratch/', 'firmware-protocol/c/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  { files: ['gateway/web/**/*.js'], languageOptions: { globals: globals.browser } },
  { files: ['firmware-protocol/**/*.ts'], rules: restrict(standAlone('ledger-client')) },
  { files: ['ledger-client/**/*.ts'], rules: restrict(standAlone('firmware-protocol')) },
  { files: ['gateway/src/**/*.ts'], ignores: [SIM_COMMAND], rules: restrict(noSimulators) },
  // Every command line run loads the sim command, so it reaches the simulators through import() only (types are erased).
  { files: [SIM_COMMAND], rules: { 'no-restricted-imports': ['error', { patterns: noSimulators.patterns.map((p) => ({ ...p, allowTypeImports: true })) }] } },
  { files: ['gateway/src/devices/**/*.ts'], rules: restrict(noSimulators, driversWithoutHttp) },
  // The pure core's rule forbids HTTP too, so its modules under devices/ need not repeat the drivers' rule.
  { files: PURE_CORE, rules: restrict(noSimulators, pureCore) },
  // What the command line prints goes through cli/print.ts, which escapes whatever could drive a terminal.
  {
    files: ['gateway/src/cli/**/*.ts'],
    ignores: ['gateway/src/cli/print.ts'],
    rules: {
      'no-console': ['error'],
      'no-restricted-properties': ['error', ...['stdout', 'stderr'].map((property) => ({ object: 'process', property, message: 'print through gateway/src/cli/print.ts (out, complain, write)' }))],
    },
  },
);
