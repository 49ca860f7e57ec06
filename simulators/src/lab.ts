/**
 * The simulated lab: the simulators a config lists under `simulators:`, composed one level above
 * the gateway, so that the gateway itself never loads test equipment. Either in the gateway's
 * process (`ovn-gateway run` on such a config) or in a process of their own (`ovn-gateway sim
 * lab`), where they keep running while the gateway is killed and started again.
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { splitHostPort } from '../../gateway/src/config/common.js';
import type { LoadedConfig } from '../../gateway/src/config/load.js';
import type { SimulatorConfig } from '../../gateway/src/config/schema.js';
import { startGateway, type RunningGateway, type StartOptions } from '../../gateway/src/gateway.js';
import { Journal } from '../../gateway/src/journal/journal.js';
import { createLogger, type Logger } from '../../gateway/src/log.js';
import { MqttCredentials } from '../../gateway/src/mqtt/credentials.js';
import { loadScenario, playScenario, type SimControl } from './control.js';
import { ledgerControl } from './ledger/control.js';
import { LedgerSim } from './ledger/ledger-sim.js';
import { MailCatcher } from './mail/mail-catcher.js';
import { mailControl } from './mail/control.js';
import { moonrakerControl } from './moonraker/control.js';
import { MoonrakerSim } from './moonraker/moonraker-sim.js';
import { prusalinkControl } from './prusalink/control.js';
import { PrusaLinkSim } from './prusalink/prusalink-sim.js';
import { nodeControl } from './metering-node/control.js';
import { FirmwareNode, firmwareControl } from './metering-node/firmware-node.js';
import { MeteringNodeSim } from './metering-node/node-sim.js';
import { printerControl } from './printer/control.js';
import { PrinterSim } from './printer/printer-sim.js';
import { rigControl } from './rig/control.js';
import { RigSim } from './rig/rig-sim.js';
import { serveTcp, type SimTransport, type SimulatedDevice } from './transports.js';

type RigConfig = Extract<SimulatorConfig, { kind: 'rig' }>;
type WiredConfig = Exclude<SimulatorConfig, { kind: 'rig' }>;

export interface RunningSimulator {
  /** How the lab's commands address it: a node by its id, a rig by its device id, the others by their kind (numbered when repeated). */
  readonly name: string;
  /** What it is and where, e.g. `marlin printer on socket://127.0.0.1:7102`. */
  readonly what: string;
  readonly sim: SimulatedDevice | LedgerSim | MailCatcher | RigSim | MoonrakerSim | PrusaLinkSim;
  readonly control: SimControl;
  close(): Promise<void>;
}

export interface RunningLab extends RunningGateway {
  readonly simulators: readonly RunningSimulator[];
}

/** The lab's simulators apart from the gateway. */
export interface RunningSimulators {
  readonly simulators: readonly RunningSimulator[];
  stop(): Promise<void>;
}

/** Where a simulated rig connects, and as whom. */
interface BrokerAccess {
  url: string;
  password: string;
  baseTopic: string;
}

/**
 * The lab in one process: the wired simulators first (the gateway's devices connect to them),
 * then the gateway, then the rigs, which connect to its embedded broker with credentials for
 * this run only. `stop()` stops the gateway, then the simulators.
 */
export async function startLab(loaded: LoadedConfig, opts: StartOptions = {}): Promise<RunningLab> {
  const log = opts.logger ?? createLogger(loaded.config.gateway.log);
  const sims = new Simulators(loaded, log);
  let gw: RunningGateway | null = null;
  const stop = async () => {
    sims.endScenarios();
    await gw?.stop();
    await sims.close();
  };
  try {
    await sims.startWired();
    gw = await startGateway(loaded, { ...opts, logger: log });
    const { broker } = gw;
    // the config schema has checked that rigs come with a broker
    for (const sc of loaded.config.simulators) if (sc.kind === 'rig') sims.startRig(sc, { ...broker!.simulatedDeviceCredentials(sc.device), baseTopic: broker!.topics.base });
    return { ...gw, simulators: sims.running, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/**
 * The simulators in a process of their own, for a gateway run with `--no-simulators`. A rig
 * connects to the broker at `mqtt.listen` (and reconnects until the gateway is up) with
 * credentials made in the gateway's journal, as `ovn-gateway devices add-mqtt --rotate` makes
 * them for a real device.
 */
export async function startSimulators(loaded: LoadedConfig, log: Logger): Promise<RunningSimulators> {
  const sims = new Simulators(loaded, log);
  try {
    await sims.startWired();
    const rigs = loaded.config.simulators.filter((sc): sc is RigConfig => sc.kind === 'rig');
    const mqtt = loaded.config.mqtt;
    if (rigs.length > 0 && mqtt) {
      const { host, port } = splitHostPort(mqtt.listen);
      if (port === 0) {
        log.warn(
          `simulated ${rigs.map((r) => r.device).join(', ')} not started: mqtt.listen (${mqtt.listen}) is a free port chosen at each start, so no other process can find the gateway's broker; give mqtt.listen a fixed port, or let the gateway run the simulators (ovn-gateway run without --no-simulators)`,
        );
      } else {
        const secrets = await deviceSecrets(loaded, rigs.map((r) => r.device));
        const url = `mqtt://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
        for (const sc of rigs) sims.startRig(sc, { url, password: secrets.get(sc.device)!, baseTopic: mqtt.baseTopic });
      }
    }
  } catch (err) {
    await sims.stop().catch(() => {});
    throw err;
  }
  return { simulators: sims.running, stop: () => sims.stop() };
}

/** The lab's commands (typed on the standard input of `sim lab`): `<simulator> <command>`, e.g. `printer-node-1 busy on`. */
export function labControl(simulators: readonly RunningSimulator[]): Pick<SimControl, 'help' | 'run'> {
  const byName = new Map(simulators.map((s) => [s.name, s]));
  const w = Math.max(0, ...simulators.map((s) => s.name.length));
  const help = `simulators (<name> <command>; "<name> help" lists its commands):\n${simulators.map((s) => `  ${s.name.padEnd(w)}  ${s.what}`).join('\n')}`;
  return {
    help,
    run: async (line) => {
      const [name, ...words] = line.trim().split(/\s+/);
      if (!name) return undefined;
      const s = byName.get(name);
      if (!s) throw new Error(`unknown simulator "${name}"\n${help}`);
      if (words.length === 0 || (words.length === 1 && words[0] === 'help')) return s.control.help;
      return s.control.run(words.join(' '));
    },
  };
}

/** Secrets for simulated devices, made in the gateway's journal (any earlier secret of theirs stops working). */
async function deviceSecrets(loaded: LoadedConfig, deviceIds: readonly string[]): Promise<Map<string, string>> {
  const journal = Journal.open(resolve(loaded.baseDir, loaded.config.gateway.dataDir));
  try {
    const credentials = new MqttCredentials(journal);
    const secrets = new Map<string, string>();
    for (const id of deviceIds) secrets.set(id, (await credentials.add(id, { rotate: true })).secret);
    return secrets;
  } finally {
    journal.close();
  }
}

/** The running simulators of a lab, and the scenarios they play. */
class Simulators {
  readonly running: RunningSimulator[] = [];
  private readonly scenarios = new AbortController();

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly log: Logger,
  ) {}

  /** The simulators devices reach over TCP, in the config's order. */
  async startWired(): Promise<void> {
    for (const sc of this.loaded.config.simulators) if (sc.kind !== 'rig') await this.startOne(sc);
  }

  startRig(sc: RigConfig, access: BrokerAccess): void {
    const rig = new RigSim({ ...access, deviceId: sc.device, model: sc.model, powerW: sc.powerW, idleW: sc.idleW, telemetryIntervalMs: sc.telemetryIntervalMs, timeScale: sc.timeScale });
    rig.start();
    const slog = this.log.child({ simulator: sc.device });
    slog.info(`simulated ${sc.model} ${sc.device} connecting to the embedded broker at ${access.url}`);
    this.add(sc.device, `${sc.model} ${sc.device} on ${access.url}`, rig, rigControl(rig), () => rig.stop(), sc, slog);
  }

  endScenarios(): void {
    this.scenarios.abort();
  }

  async close(): Promise<void> {
    for (const s of this.running) await s.close();
  }

  async stop(): Promise<void> {
    this.endScenarios();
    await this.close();
  }

  private async startOne(sc: WiredConfig): Promise<void> {
    const { host, port } = splitHostPort(sc.listen);
    const slog = this.log.child({ simulator: sc.listen });
    if (sc.kind === 'ledger') {
      const ledger = await LedgerSim.start({ host, port, db: sc.db ? resolve(this.loaded.baseDir, sc.db) : undefined });
      slog.info(`simulated ledger on ${ledger.url} (records: ${ledger.url}/records)`);
      this.add('ledger', `ledger on ${ledger.url}`, ledger, ledgerControl(ledger), () => ledger.close(), sc, slog);
      return;
    }
    if (sc.kind === 'moonraker') {
      const files = Object.fromEntries(sc.files.map((f) => [basename(f), readFileSync(resolve(this.loaded.baseDir, f), 'latin1')]));
      const sim = await MoonrakerSim.start({ host, port, apiKey: sc.apiKey ?? null, files, timeScale: sc.timeScale, linesPerS: sc.linesPerS });
      slog.info(`simulated Moonraker (Klipper printer) on ${sim.url}`);
      this.add('moonraker', `Moonraker on ${sim.url}`, sim, moonrakerControl(sim), () => sim.close(), sc, slog);
      return;
    }
    if (sc.kind === 'prusalink') {
      const files = Object.fromEntries(sc.files.map((f) => [basename(f), readFileSync(resolve(this.loaded.baseDir, f), 'latin1')]));
      const sim = await PrusaLinkSim.start({ host, port, username: sc.username, password: sc.password, files, timeScale: sc.timeScale, linesPerS: sc.linesPerS });
      slog.info(`simulated PrusaLink printer on ${sim.url}`);
      this.add('prusalink', `PrusaLink printer on ${sim.url}`, sim, prusalinkControl(sim), () => sim.close(), sc, slog);
      return;
    }
    if (sc.kind === 'mail') {
      const mail = await MailCatcher.start({ smtp: { host, port }, http: splitHostPort(sc.http), ...(sc.dir ? { dir: resolve(this.loaded.baseDir, sc.dir) } : {}) });
      slog.info(`mail catcher: SMTP on ${mail.smtpAddress}, the mail caught on ${mail.url}/`);
      mail.onMail((m) => slog.info({ to: m.to }, `mail caught for ${m.to.join(', ')}: ${m.subject} (${mail.url}/messages/${m.n}.eml)`));
      this.add('mail', `mail catcher on ${mail.smtpAddress}, ${mail.url}/`, mail, mailControl(mail), () => mail.close(), sc, slog);
      return;
    }
    let sim: SimulatedDevice;
    let control: (t: SimTransport) => SimControl;
    let name: string;
    let what: string;
    let closeDevice = async () => {};
    switch (sc.kind) {
      case 'node': {
        if (sc.firmware) {
          if (sc.timeScale !== 1) throw new Error(`simulators (${sc.listen}): a node running firmware runs in real time; remove timeScale`);
          const elf = resolve(this.loaded.baseDir, sc.firmware);
          const fw = await FirmwareNode.start({ elf });
          await fw.run(`power ${sc.powerW}`);
          closeDevice = () => fw.close();
          [sim, control, name, what] = [fw.device(), () => firmwareControl(fw), sc.nodeId, `metering-node firmware ${sc.firmware} in simavr`];
          break;
        }
        const node = new MeteringNodeSim({ nodeId: sc.nodeId, powerW: sc.powerW, timeScale: sc.timeScale });
        [sim, control, name, what] = [node, (t) => nodeControl(node, t), sc.nodeId, `metering node ${sc.nodeId}`];
        break;
      }
      case 'printer': {
        const sdFiles = Object.fromEntries(sc.sdFiles.map((f) => [basename(f), readFileSync(resolve(this.loaded.baseDir, f), 'latin1')]));
        const printer = new PrinterSim({ dialect: sc.dialect, timeScale: sc.timeScale, sdFiles });
        [sim, control, name, what] = [printer, (t) => printerControl(printer, t), 'printer', `${sc.dialect} printer`];
        break;
      }
    }
    const transport = await serveTcp(sim, host, port);
    slog.info(`simulated ${what} listening on ${transport.address}`);
    const close = async () => {
      await transport.close();
      await closeDevice();
    };
    this.add(name, `${what} on ${transport.address}`, sim, control(transport), close, sc, slog);
  }

  /** Adds a started simulator under a name no other has, and plays its scenario. */
  private add(base: string, what: string, sim: RunningSimulator['sim'], control: SimControl, close: () => Promise<void>, sc: SimulatorConfig, slog: Logger): void {
    const taken = new Set(this.running.map((s) => s.name));
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    this.running.push({ name, what, sim, control, close });
    const steps = 'scenario' in sc && sc.scenario ? loadScenario(resolve(this.loaded.baseDir, sc.scenario)) : [];
    playScenario(control, steps, (out) => slog.info(out), this.scenarios.signal).catch((err: Error) => slog.error(err.message));
  }
}
