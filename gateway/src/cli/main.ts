/** `ovn-gateway`: the one command line of the project. */
import { Command, InvalidArgumentError } from 'commander';
import { createInterface } from 'node:readline';
import { ConfigError, loadConfig } from '../config/load.js';
import { configJsonSchema } from '../config/schema.js';
import { startGateway } from '../gateway.js';
import { VERSION } from '../version.js';
import { COMMANDS_HELP, loadScenario, playScenario, runCommand } from '../../../simulators/src/metering-node/control.js';
import { MeteringNodeSim } from '../../../simulators/src/metering-node/node-sim.js';
import { hasSocat, servePty, serveTcp, type SimTransport } from '../../../simulators/src/transports.js';

const program = new Command('ovn-gateway')
  .description('Lab equipment gateway: badges, relays, metering and cost split for shared tools')
  .version(VERSION)
  .showHelpAfterError();

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
};
const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};

program
  .command('run')
  .description('run the gateway')
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--http-port <port>', 'HTTP port, overriding gateway.http.port', port)
  .action(async (opts: { config: string; httpPort?: number }) => {
    const gw = await startGateway(loadConfig(opts.config), { httpPort: opts.httpPort });
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      gw.log.info({ signal }, 'stopping');
      gw.stop().then(
        () => process.exit(0),
        (err: Error) => {
          gw.log.error({ err }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });

const config = program.command('config').description('check a configuration file or print its schema');
config
  .command('check')
  .description('validate a configuration file and list every problem')
  .argument('<file>')
  .action((file: string) => {
    const { config: cfg, file: abs } = loadConfig(file);
    console.log(`${abs}: ok (${cfg.devices.length} device${cfg.devices.length === 1 ? '' : 's'}, ${cfg.simulators.length} simulator${cfg.simulators.length === 1 ? '' : 's'})`);
  });
config
  .command('schema')
  .description('print the JSON Schema of the configuration file')
  .action(() => console.log(JSON.stringify(configJsonSchema(), null, 2)));

const sim = program.command('sim').description('run a simulated device');
sim
  .command('node')
  .description(`a metering node speaking firmware-protocol over TCP or a pseudo-terminal; reads commands on stdin\n\n${COMMANDS_HELP}`)
  .option('--tcp <host:port>', 'listen on TCP (point a device at socket://host:port)')
  .option('--pty <path>', 'create a pseudo-terminal linked at <path> (needs socat)')
  .option('--node-id <id>', 'node id sent in HELLO', 'sim-node')
  .option('--power <watts>', 'power drawn while busy', positive, 120)
  .option('--time-scale <x>', 'simulated seconds per real second', positive, 1)
  .option('--scenario <file>', 'play a scenario file (YAML/JSON list of { after, do })')
  .action(async (opts: { tcp?: string; pty?: string; nodeId: string; power: number; timeScale: number; scenario?: string }) => {
    if (!!opts.tcp === !!opts.pty) throw new CliError('give exactly one of --tcp <host:port> or --pty <path>');
    if (opts.pty && !hasSocat()) throw new CliError('--pty needs socat (apt-get install socat); use --tcp otherwise');
    const steps = opts.scenario ? loadScenario(opts.scenario) : [];
    const node = new MeteringNodeSim({ nodeId: opts.nodeId, powerW: opts.power, timeScale: opts.timeScale });
    let transport: SimTransport;
    if (opts.tcp) {
      const m = /^(.+):(\d+)$/.exec(opts.tcp);
      if (!m) throw new CliError(`--tcp: expected host:port, got "${opts.tcp}"`);
      transport = await serveTcp(node, m[1]!, Number(m[2]));
    } else {
      transport = await servePty(node, opts.pty!);
    }
    console.error(`simulated node ${opts.nodeId} at ${transport.address}; type "help" for commands`);
    void playScenario(node, transport, steps, (out) => console.log(out)).catch((err: Error) => console.error(err.message));
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line.trim() === 'help') return void console.error(COMMANDS_HELP);
      runCommand(node, transport, line).then(
        (out) => out && console.log(out),
        (err: Error) => console.error(err.message),
      );
    });
    const quit = () => void transport.close().then(() => process.exit(0));
    process.once('SIGINT', quit);
    process.once('SIGTERM', quit);
  });

class CliError extends Error {}

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof ConfigError || err instanceof CliError) {
    console.error(err.message);
    process.exit(2);
  }
  const e = err as NodeJS.ErrnoException;
  console.error(`ovn-gateway: ${e.code === 'EADDRINUSE' ? `address already in use (${e.message}); pick another port with --http-port` : e.message}`);
  process.exit(1);
}
