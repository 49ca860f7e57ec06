/**
 * The composition root: builds every part from the config, starts them in order and stops
 * them in reverse. Nothing else constructs adapters.
 */
import { resolve } from 'node:path';
import type { LoadedConfig } from './config/load.js';
import type { DeviceConfig, SimulatorConfig } from './config/schema.js';
import type { Device } from './devices/device.js';
import { MeteringNode } from './devices/metering-node/driver.js';
import { Printer } from './devices/printer/driver.js';
import { buildApp } from './http/app.js';
import { Journal } from './journal/journal.js';
import { createLogger, type Logger } from './log.js';
import { VERSION } from './version.js';
import { loadScenario, playScenario } from '../../simulators/src/metering-node/control.js';
import { MeteringNodeSim } from '../../simulators/src/metering-node/node-sim.js';
import { serveTcp, type SimTransport } from '../../simulators/src/transports.js';

export interface StartOptions {
  /** Overrides gateway.http.port (0 picks a free port). */
  httpPort?: number;
  logger?: Logger;
}

export interface RunningGateway {
  readonly url: string;
  readonly journal: Journal;
  readonly devices: ReadonlyMap<string, Device>;
  readonly simulators: readonly { sim: MeteringNodeSim; transport: SimTransport }[];
  readonly log: Logger;
  stop(): Promise<void>;
}

export async function startGateway(loaded: LoadedConfig, opts: StartOptions = {}): Promise<RunningGateway> {
  const { config, baseDir } = loaded;
  const log = opts.logger ?? createLogger(config.gateway.log);
  const startedAt = new Date();
  const dataDir = resolve(baseDir, config.gateway.dataDir);
  const journal = Journal.open(dataDir);
  journal.record('gateway.started', null, { version: VERSION, config: loaded.file, pid: process.pid });
  log.info({ version: VERSION, dataDir, schema: journal.schemaVersion }, `journal open at ${journal.file}`);

  const scenarios = new AbortController();
  const simulators: { sim: MeteringNodeSim; transport: SimTransport }[] = [];
  let app: ReturnType<typeof buildApp> | null = null;
  const devices = new Map<string, Device>();

  const stop = async () => {
    scenarios.abort();
    await app?.close();
    for (const d of [...devices.values()].reverse()) await d.stop();
    for (const s of simulators) await s.transport.close();
    journal.record('gateway.stopped', null, {});
    journal.close();
    log.info('gateway stopped');
  };

  try {
    for (const sc of config.simulators) simulators.push(await startSimulator(sc, baseDir, log, scenarios.signal));
    for (const dc of config.devices) devices.set(dc.id, createDevice(dc, journal, log));
    for (const d of devices.values()) d.start();

    app = buildApp({ name: config.gateway.name, startedAt, devices: () => [...devices.values()].map((d) => d.health()) }, log);
    const port = opts.httpPort ?? config.gateway.http.port;
    const url = await app.listen({ host: config.gateway.http.host, port });
    log.info({ url }, `HTTP API on ${url}/api/health`);
    return { url, journal, devices, simulators, log, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

function createDevice(dc: DeviceConfig, journal: Journal, log: Logger): Device {
  switch (dc.kind) {
    case 'metering-node':
      return new MeteringNode(dc, journal, log);
    case 'printer':
      return new Printer(dc, journal, log);
  }
}

async function startSimulator(sc: SimulatorConfig, baseDir: string, log: Logger, signal: AbortSignal) {
  const [host, port] = [sc.listen.slice(0, sc.listen.lastIndexOf(':')), Number(sc.listen.slice(sc.listen.lastIndexOf(':') + 1))];
  const sim = new MeteringNodeSim({ nodeId: sc.nodeId, powerW: sc.powerW });
  const transport = await serveTcp(sim, host, port);
  const slog = log.child({ simulator: sc.nodeId });
  slog.info(`simulated metering node listening on ${transport.address}`);
  if (sc.scenario) {
    const steps = loadScenario(resolve(baseDir, sc.scenario));
    playScenario(sim, transport, steps, (out) => slog.info(out), signal).catch((err: Error) => slog.error(err.message));
  }
  return { sim, transport };
}
