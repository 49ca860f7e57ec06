/**
 * `ovn-gateway sim`: simulated devices on a TCP port, a pseudo-terminal or an MQTT broker, and
 * the simulated lab of a config in a process of its own. The simulators' code is loaded only
 * when one of these commands runs, or when `run` is given a config with simulators: a
 * production gateway never loads it.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { checkNamedFiles } from '../../config/files.js';
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import type { StartOptions } from '../../gateway.js';
import { createLogger } from '../../log.js';
import { FLAVOUR_NAMES, type Flavour } from '../../../../ledger-client/src/flavours.js';
import type { RunningLab, SimControl, SimTransport, SimulatedDevice } from '../../../../simulators/src/index.js';
import { CliError } from '../common.js';
import { out, complain } from '../print.js';

const simulators = () => import('../../../../simulators/src/index.js');

/** The config's simulators and the gateway in this process (`ovn-gateway run` on a config with simulators). */
export async function startSimulatedLab(loaded: LoadedConfig, opts: StartOptions): Promise<RunningLab> {
  return (await simulators()).startLab(loaded, opts);
}

const flavour = (v: string): Flavour => {
  if (!(FLAVOUR_NAMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of ${FLAVOUR_NAMES.join(', ')}`);
  return v as Flavour;
};

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};

interface SimCliOptions {
  tcp?: string;
  pty?: string;
  timeScale: number;
  scenario?: string;
}

function simOptions(cmd: Command): Command {
  return cmd
    .option('--tcp <host:port>', 'listen on TCP (point a device at socket://host:port)')
    .option('--pty <path>', 'create a pseudo-terminal linked at <path> (needs socat)')
    .option('--time-scale <x>', 'simulated seconds per real second', positive, 1)
    .option('--scenario <file>', 'play a scenario file (YAML/JSON list of { after, do })');
}

/** Puts a simulator on its wire, plays its scenario and takes commands from stdin until a signal. */
async function runSimulator(opts: SimCliOptions, name: string, device: SimulatedDevice, control: (t: SimTransport) => SimControl): Promise<void> {
  const { hasSocat, loadScenario, playScenario, servePty, serveTcp } = await simulators();
  if (!!opts.tcp === !!opts.pty) throw new CliError('give exactly one of --tcp <host:port> or --pty <path>');
  if (opts.pty && !hasSocat()) throw new CliError('--pty needs socat (apt-get install socat); use --tcp otherwise');
  const steps = opts.scenario ? loadScenario(opts.scenario) : [];
  let transport: SimTransport;
  if (opts.tcp) {
    const m = /^(.+):(\d+)$/.exec(opts.tcp);
    if (!m) throw new CliError(`--tcp: expected host:port, got "${opts.tcp}"`);
    transport = await serveTcp(device, m[1]!, Number(m[2]));
  } else {
    transport = await servePty(device, opts.pty!);
  }
  const ctl = control(transport);
  complain(`${name} at ${transport.address}; type "help" for commands`);
  void playScenario(ctl, steps, (text) => out(text)).catch((err: Error) => complain(err.message));
  commandsFromStdin(ctl, () => transport.close());
}

/** The real firmware in simavr, its UART on a pseudo-terminal linked at --pty, with the harness's commands and --scenario. */
async function runFirmware(opts: SimCliOptions & { power: number; firmware: string; harness?: string; impPerKwh: number }): Promise<void> {
  if (!opts.pty || opts.tcp) throw new CliError('--firmware: give --pty <path> (the firmware speaks on a pseudo-terminal)');
  if (opts.timeScale !== 1) throw new CliError('--firmware runs in real time: --time-scale does not apply');
  const { FirmwareNode, firmwareControl, loadScenario, playScenario } = await simulators();
  const steps = opts.scenario ? loadScenario(opts.scenario) : [];
  const node = await FirmwareNode.start({ elf: opts.firmware, harness: opts.harness, impPerKwh: opts.impPerKwh, link: opts.pty }).catch((err: Error) => {
    throw new CliError(`--firmware: ${err.message}`);
  });
  const ctl = firmwareControl(node);
  await ctl.run(`power ${opts.power}`);
  complain(`metering-node firmware ${opts.firmware} in simavr at ${node.address}; type "help" for commands`);
  void playScenario(ctl, steps, (text) => out(text)).catch((err: Error) => complain(err.message));
  commandsFromStdin(ctl, () => node.close());
}

/** Commands typed on standard input; Ctrl-C or SIGTERM closes what runs and exits. */
function commandsFromStdin(ctl: Pick<SimControl, 'help' | 'run'>, close: () => Promise<void>): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'help') return void complain(ctl.help);
    ctl.run(line).then(
      (text) => text && out(text),
      (err: Error) => complain(err.message),
    );
  });
  const quit = () => void close().then(() => process.exit(0));
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
}

/** `--file` G-code files by their file names. */
function readGcodeFiles(paths: string[] | undefined): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of paths ?? []) {
    try {
      files[basename(f)] = readFileSync(f, 'latin1');
    } catch (err) {
      throw new CliError(`--file: cannot read ${f} (${(err as Error).message})`);
    }
  }
  return files;
}

export function registerSimCommands(program: Command): void {
  const sim = program.command('sim').description('run a simulated device on a TCP port or a pseudo-terminal; reads commands on stdin (type help)');

  simOptions(sim.command('node'))
    .description('a metering node speaking firmware-protocol (badge reader, relay, energy meter, busy input): simulated in TypeScript, or the real firmware in simavr (--firmware)')
    .option('--node-id <id>', 'node id sent in HELLO', 'sim-node')
    .option('--power <watts>', 'power drawn while busy', positive, 120)
    .option('--firmware <elf>', 'run this metering-node firmware ELF (firmware-protocol/node-firmware, make) in a simulated ATmega2560; needs --pty; its node id is the one it was built with')
    .option('--harness <path>', 'the simavr harness for --firmware (default: node-sim next to the ELF)')
    .option('--imp-per-kwh <n>', "the S0 meter's impulses per kWh the firmware was built with", positive, 1000)
    .action(async (opts: SimCliOptions & { nodeId: string; power: number; firmware?: string; harness?: string; impPerKwh: number }) => {
      if (opts.firmware) return runFirmware({ ...opts, firmware: opts.firmware });
      const { MeteringNodeSim, nodeControl } = await simulators();
      const node = new MeteringNodeSim({ nodeId: opts.nodeId, powerW: opts.power, timeScale: opts.timeScale });
      await runSimulator(opts, `simulated node ${opts.nodeId}`, node, (t) => nodeControl(node, t));
    });

  simOptions(sim.command('printer'))
    .description('a Marlin 2.x or Prusa MK3 printer with an SD card holding demo.gcode')
    .option('--dialect <name>', 'marlin or prusa', 'marlin')
    .option('--advanced-ok', "firmware built with ADVANCED_OK: M115 says Cap:ADVANCED_OK:1 and oks say the line and the free buffers (ok N<line> P<blocks> B<slots>)")
    .option('--rx-buffer <bytes>', "the firmware's serial receive buffer (RX_BUFFER_SIZE); bytes that do not fit are dropped", positive, 128)
    .option('--bufsize <lines>', "the firmware's command queue (BUFSIZE)", positive, 4)
    .action(async (opts: SimCliOptions & { dialect: string; advancedOk?: boolean; rxBuffer: number; bufsize: number }) => {
      if (opts.dialect !== 'marlin' && opts.dialect !== 'prusa') throw new CliError('--dialect: marlin or prusa');
      if (!Number.isInteger(opts.rxBuffer) || opts.rxBuffer < 32) throw new CliError('--rx-buffer: a whole number of bytes, at least 32');
      if (!Number.isInteger(opts.bufsize)) throw new CliError('--bufsize: a whole number of lines');
      const { PrinterSim, printerControl } = await simulators();
      const printer = new PrinterSim({ dialect: opts.dialect, timeScale: opts.timeScale, advancedOk: opts.advancedOk === true, rxBufferBytes: opts.rxBuffer, bufsize: opts.bufsize });
      await runSimulator(opts, `simulated ${opts.dialect} printer`, printer, (t) => printerControl(printer, t));
    });

  simOptions(sim.command('rfid'))
    .description('an RDM6300 125 kHz RFID reader (EM4100 cards) that repeats a card while it is held (--time-scale has no effect)')
    .action(async (opts: SimCliOptions) => {
      const { Rdm6300Sim, rfidControl } = await simulators();
      const reader = new Rdm6300Sim();
      await runSimulator(opts, 'simulated RDM6300 reader', reader, (t) => rfidControl(reader, t));
    });

  sim
    .command('rig')
    .description('a networked instrument on MQTT (the Mosquito sensor rig, or a metered smart plug) connecting to a broker as a device; reads commands on stdin')
    .requiredOption('--url <url>', 'the broker, e.g. mqtt://127.0.0.1:1883')
    .requiredOption('--device <id>', 'its device id (client id and user name)')
    .requiredOption('--base-topic <topic>', "the lab's base topic (mqtt.baseTopic)")
    .option('--password <secret>', 'its secret (ovn-gateway devices add-mqtt <id>); default: $OVN_RIG_SECRET')
    .option('--model <model>', 'mosquito-rig or smart-plug', 'mosquito-rig')
    .option('--power <watts>', 'power drawn while the tool works', positive, 300)
    .option('--idle <watts>', 'power drawn while on and idle', positive, 4)
    .option('--interval <ms>', 'telemetry interval', positive, 2000)
    .option('--time-scale <x>', 'simulated seconds per real second', positive, 1)
    .option('--flaky', 'start in flaky mode (lost messages, dropped connections, bursts)')
    .option('--scenario <file>', 'play a scenario file (YAML/JSON list of { after, do })')
    .action(async (opts: { url: string; device: string; baseTopic: string; password?: string; model: string; power: number; idle: number; interval: number; timeScale: number; flaky?: boolean; scenario?: string }) => {
      if (opts.model !== 'mosquito-rig' && opts.model !== 'smart-plug') throw new CliError('--model: mosquito-rig or smart-plug');
      const password = opts.password ?? process.env.OVN_RIG_SECRET;
      if (!password) throw new CliError(`--password or OVN_RIG_SECRET: the device's secret (ovn-gateway devices add-mqtt ${opts.device} prints it)`);
      const { RigSim, rigControl, loadScenario, playScenario } = await simulators();
      const rig = new RigSim({ url: opts.url, deviceId: opts.device, password, baseTopic: opts.baseTopic, model: opts.model, powerW: opts.power, idleW: opts.idle, telemetryIntervalMs: opts.interval, timeScale: opts.timeScale });
      rig.setFlaky(opts.flaky ?? false);
      rig.start();
      const ctl = rigControl(rig);
      complain(`simulated ${opts.model} ${opts.device} publishing to ${opts.url} under ${opts.baseTopic}/devices/${opts.device}/; type "help" for commands`);
      const steps = opts.scenario ? loadScenario(opts.scenario) : [];
      void playScenario(ctl, steps, (text) => out(text)).catch((err: Error) => complain(err.message));
      commandsFromStdin(ctl, () => rig.stop());
    });

  sim
    .command('ledger')
    .description('a Valueflows ledger for the ledger client (JSON batch API and GraphQL, its own SQLite database, fault injection); reads commands on stdin')
    .option('--listen <host:port>', 'where to listen (GraphQL at /graphql)', '127.0.0.1:7400')
    .option('--db <file>', 'SQLite database file', ':memory:')
    .option('--token <token>', 'require this bearer token')
    .option('--flavour <flavour>', `whose published GraphQL schema and rules it speaks: ${FLAVOUR_NAMES.join(', ')}`, flavour, 'vf-graphql' as Flavour)
    .action(async (opts: { listen: string; db: string; token?: string; flavour: Flavour }) => {
      const m = /^(.+):(\d+)$/.exec(opts.listen);
      if (!m) throw new CliError(`--listen: expected host:port, got "${opts.listen}"`);
      const { LedgerSim, ledgerControl } = await simulators();
      const ledger = await LedgerSim.start({ host: m[1]!, port: Number(m[2]), db: opts.db, token: opts.token, flavour: opts.flavour });
      const ctl = ledgerControl(ledger);
      complain(`simulated ledger at ${ledger.url} (GraphQL at ${ledger.url}/graphql, ${ledger.flavour}); type "help" for commands`);
      commandsFromStdin(ctl, () => ledger.close());
    });

  sim
    .command('moonraker')
    .description("a Klipper printer's Moonraker host (websocket JSON-RPC at /websocket, API key or trusted clients, job history) printing from its gcodes folder, with fault injection; reads commands on stdin")
    .option('--listen <host:port>', 'where to listen (point a moonraker-printer device at http://<this>)', '127.0.0.1:7125')
    .option('--api-key <key>', 'require this API key (X-Api-Key); without it every client is trusted')
    .option('--file <path...>', 'G-code files put in its gcodes folder besides demo.gcode (under their file names)')
    .option('--time-scale <x>', 'simulated seconds per real second', positive, 1)
    .option('--lines-per-s <n>', 'G-code lines Klipper runs per simulated second', positive, 200)
    .option('--scenario <file>', 'play a scenario file (YAML/JSON list of { after, do })')
    .action(async (opts: { listen: string; apiKey?: string; file?: string[]; timeScale: number; linesPerS: number; scenario?: string }) => {
      const m = /^(.+):(\d+)$/.exec(opts.listen);
      if (!m) throw new CliError(`--listen: expected host:port, got "${opts.listen}"`);
      const files = readGcodeFiles(opts.file);
      const { MoonrakerSim, moonrakerControl, loadScenario, playScenario } = await simulators();
      const sim = await MoonrakerSim.start({ host: m[1]!, port: Number(m[2]), apiKey: opts.apiKey ?? null, files, timeScale: opts.timeScale, linesPerS: opts.linesPerS });
      const ctl = moonrakerControl(sim);
      complain(`simulated Moonraker at ${sim.url} (websocket ${sim.url.replace('http', 'ws')}/websocket, ${opts.apiKey ? 'API key required' : 'every client trusted'}); type "help" for commands`);
      const steps = opts.scenario ? loadScenario(opts.scenario) : [];
      void playScenario(ctl, steps, (text) => out(text)).catch((err: Error) => complain(err.message));
      commandsFromStdin(ctl, () => sim.close());
    });

  sim
    .command('prusalink')
    .description('a Prusa printer with PrusaLink (HTTP with digest authentication, /api/v1 status, job and file download) printing from its storage, with fault injection; reads commands on stdin')
    .option('--listen <host:port>', 'where to listen (point a prusalink-printer device at http://<this>)', '127.0.0.1:8081')
    .option('--username <name>', 'digest user name', 'maker')
    .option('--password <password>', 'digest password', 'sim-password')
    .option('--file <path...>', 'G-code files put in its storage besides demo.gcode (under their file names)')
    .option('--time-scale <x>', 'simulated seconds per real second', positive, 1)
    .option('--lines-per-s <n>', 'G-code lines the printer runs per simulated second', positive, 200)
    .option('--scenario <file>', 'play a scenario file (YAML/JSON list of { after, do })')
    .action(async (opts: { listen: string; username: string; password: string; file?: string[]; timeScale: number; linesPerS: number; scenario?: string }) => {
      const m = /^(.+):(\d+)$/.exec(opts.listen);
      if (!m) throw new CliError(`--listen: expected host:port, got "${opts.listen}"`);
      const files = readGcodeFiles(opts.file);
      const { PrusaLinkSim, prusalinkControl, loadScenario, playScenario } = await simulators();
      const sim = await PrusaLinkSim.start({ host: m[1]!, port: Number(m[2]), username: opts.username, password: opts.password, files, timeScale: opts.timeScale, linesPerS: opts.linesPerS });
      const ctl = prusalinkControl(sim);
      complain(`simulated PrusaLink printer at ${sim.url} (user ${opts.username}); type "help" for commands`);
      const steps = opts.scenario ? loadScenario(opts.scenario) : [];
      void playScenario(ctl, steps, (text) => out(text)).catch((err: Error) => complain(err.message));
      commandsFromStdin(ctl, () => sim.close());
    });

  sim
    .command('lab')
    .description("the config's simulators in a process of their own, for a gateway run with --no-simulators (it can be killed while they keep running); reads commands on stdin: <simulator> <command>")
    .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
    .action(async (opts: { config: string }) => {
      const loaded = loadConfig(opts.config);
      checkNamedFiles(loaded);
      if (loaded.config.simulators.length === 0) throw new CliError(`${loaded.file}: no simulators to run (simulators: is empty)`);
      const { labControl, startSimulators } = await simulators();
      const lab = await startSimulators(loaded, createLogger(loaded.config.gateway.log));
      complain(`simulated lab: ${lab.simulators.map((s) => s.name).join(', ')}; type "help" for commands`);
      commandsFromStdin(labControl(lab.simulators), () => lab.stop());
    });
}
