/**
 * A Klipper printer driven by Moonraker, against the simulated Moonraker host over a real
 * websocket: what the simulator refuses as Moonraker does, a session end to end (badge and relay
 * on a simulated metering node, the print on the host, filament against the simulator's ground
 * truth, the charge), and every fault: a wrong API key, the network dropping mid-print, Moonraker
 * restarting mid-print, Klipper shutting down, and the gateway restarting mid-print.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { configSchema } from '../gateway/src/config/schema.js';
import type { MoonrakerPrinter } from '../gateway/src/devices/moonraker/driver.js';
import { mergeStatus, outcomeOfHistory, outcomeOfPrintState, temperaturesOf } from '../gateway/src/devices/moonraker/host-status.js';
import { createLogger } from '../gateway/src/log.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { MoonrakerSim } from '../simulators/src/moonraker/moonraker-sim.js';
import { sampleGcode } from '../simulators/src/printer/sample-gcode.js';
import { startLab, type RunningLab } from '../simulators/src/lab.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { adminFetch, SIM_CLOCK_RATE, tempDir, waitFor } from './helpers.js';

const ADA = '04A1B2C3';
/** Some 2,500 mm of filament: Klipper's count ends short by the 2 mm end retraction, well inside 0.1 %. */
const PART = sampleGcode({ layers: 120, movesPerLayer: 60, heat: false });
const SMALL = sampleGcode({ layers: 40, movesPerLayer: 40, heat: false });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function moonraker(opts: { apiKey?: string | null; linesPerS?: number } = {}): Promise<MoonrakerSim> {
  const sim = await MoonrakerSim.start({ apiKey: opts.apiKey ?? null, linesPerS: opts.linesPerS ?? 4000, files: { 'part.gcode': PART, 'small.gcode': SMALL, 'tiny.gcode': 'G92 E0\nM83\nG1 X10 E4.5 F1200\nG1 X20 E3.25\n' } });
  cleanups.push(() => sim.close());
  return sim;
}

interface Gateway {
  lab: RunningLab;
  printer(): MoonrakerPrinter;
  events(kind: string): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** The gateway in this process on a config; `dataDir` again starts it again on the same journal. */
async function gateway(config: Record<string, unknown>, dataDir = join(tempDir('moonraker'), 'data')): Promise<Gateway & { dataDir: string }> {
  const quiet = new Writable({ write: (_c, _e, done) => done() });
  const parsed = configSchema.parse({ ...config, gateway: { dataDir, checkpointS: 1 } });
  const lab = await startLab({ config: parsed, file: join(dataDir, '..', 'config.yaml'), baseDir: join(dataDir, '..') }, { httpPort: 0, logger: createLogger({ level: 'warn', format: 'json' }, quiet) });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await lab.stop();
  };
  cleanups.push(stop);
  return {
    lab,
    dataDir,
    printer: () => lab.devices.get('voron') as MoonrakerPrinter,
    events: (kind) => lab.journal.events({ kind, deviceId: 'voron', limit: 1_000_000 }).map((e) => e.data),
    stop,
  };
}

const voron = (sim: MoonrakerSim, extra: Record<string, unknown> = {}) => ({
  id: 'voron',
  kind: 'moonraker-printer',
  url: sim.url,
  reconnect: { initialMs: 50, maxMs: 300 },
  requestTimeoutMs: 2000,
  ...extra,
});

function within(actual: number, expected: number, rel: number): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(expected * rel);
}

/** A raw client of the simulator, for what it refuses. */
async function rawClient(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/websocket`, { headers });
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  cleanups.push(async () => ws.close());
  let id = 0;
  return (msg: Record<string, unknown> | string) =>
    new Promise<{ result?: unknown; error?: { code: number; message: string } }>((resolve) => {
      const sent = typeof msg === 'string' ? msg : JSON.stringify({ jsonrpc: '2.0', id: ++id, ...msg });
      ws.once('message', (d) => resolve(JSON.parse(d.toString())));
      ws.send(sent);
    });
}

describe("what Moonraker's objects mean", () => {
  it('merges updates object by object, ignores what was not subscribed, and maps states to outcomes', () => {
    let s = mergeStatus({}, { print_stats: { state: 'printing', filename: 'a.gcode', filament_used: 1 }, extruder: { temperature: 200, target: 210 } });
    s = mergeStatus(s, { print_stats: { filament_used: 2.5 }, toolhead: { position: [0, 0, 0, 0] }, heater_bed: null });
    expect(s).toEqual({ print_stats: { state: 'printing', filename: 'a.gcode', filament_used: 2.5 }, extruder: { temperature: 200, target: 210 } });
    expect(mergeStatus(s, 'garbage')).toBe(s);
    expect(temperaturesOf(s)).toEqual({ hotend: { actual: 200, target: 210 }, tools: [{ actual: 200, target: 210 }] });
    expect(['complete', 'cancelled', 'error', 'standby'].map(outcomeOfPrintState)).toEqual(['finished', 'cancelled', 'failed', 'cancelled']);
    expect(['in_progress', 'completed', 'cancelled', 'error', 'klippy_shutdown', 'klippy_disconnect', 'interrupted', 'something_new'].map(outcomeOfHistory)).toEqual([
      null,
      'finished',
      'cancelled',
      'failed',
      'failed',
      'interrupted',
      'interrupted',
      'interrupted',
    ]);
  });
});

describe('simulated Moonraker refuses what Moonraker refuses', () => {
  it('unknown methods, bad params, unauthenticated requests and a wrong key', async () => {
    const sim = await moonraker({ apiKey: 'right-key' });
    const anon = await rawClient(sim.url);
    expect((await anon({ method: 'server.info' })).error).toEqual({ code: -32602, message: 'Unauthorized' });
    expect((await anon({ method: 'printer.no_such_thing' })).error).toEqual({ code: -32601, message: 'Method not found' });
    expect((await anon('{not json')).error).toEqual({ code: -32700, message: 'Parse error' });
    expect((await anon({ jsonrpc: '1.0', method: 'server.info' })).error?.code).toBe(-32600);
    expect((await anon({ method: 'server.connection.identify', params: { client_name: 'x', version: '1', type: 'other', url: 'u', api_key: 'wrong' } })).error).toEqual({ code: -32602, message: 'Invalid API Key' });
    const keyed = await rawClient(sim.url, { 'X-Api-Key': 'right-key' });
    expect((await keyed({ method: 'server.info' })).result).toMatchObject({ klippy_state: 'ready', klippy_connected: true });
    expect((await keyed({ method: 'printer.print.start', params: {} })).error).toEqual({ code: 400, message: 'No data for argument: filename' });
    expect((await keyed({ method: 'printer.print.start', params: { filename: 'nope.gcode' } })).error).toEqual({ code: 400, message: 'File nope.gcode not found' });
    expect((await keyed({ method: 'printer.objects.query', params: ['print_stats'] })).error).toEqual({ code: -32602, message: 'Invalid params:' });
    expect((await keyed({ method: 'server.history.get_job', params: { uid: 'FFFFFF' } })).error?.code).toBe(-32601);
  });
});

describe('a Moonraker printer at the gateway', () => {
  it('a session end to end: badge and relay at the node, the print on the host, filament as the simulator extruded it, the charge', async () => {
    const sim = await moonraker();
    const node = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
    const transport: SimTransport = await serveTcp(node, '127.0.0.1', 0);
    cleanups.push(() => transport.close());
    const gw = await gateway({
      devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address, reconnect: { initialMs: 50, maxMs: 300 } } }, voron(sim)],
      tools: [{ id: 'voron-tool', node: 'n1', printer: 'voron', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      billing: {
        currency: 'CAD',
        materials: { PLA: { pricePerGram: '0.10' } },
        tools: { 'voron-tool': { tariffs: { commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.00' } } } },
      },
      affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'voron-tool' }], useType: 'commercial' }],
    });
    await waitFor(() => gw.lab.devices.get('n1')!.health().state === 'online' && gw.printer().state === 'idle', 10_000, 'node online, printer idle');
    const health = gw.printer().health();
    expect(health).toMatchObject({ kind: 'moonraker-printer', state: 'online', detail: { moonraker: { version: 'v0.9.3-sim' }, klippy: { state: 'ready' } } });
    await waitFor(() => gw.printer().health().detail.temperatures);

    node.badge(ADA);
    await waitFor(() => gw.lab.journal.events({ kind: 'session.started' }).length === 1, 10_000, 'session started');
    await waitFor(() => node.truth().relay.sensed, 5000, 'relay on');

    sim.klipper.startPrint('part.gcode');
    await waitFor(() => gw.printer().state === 'printing', 5000, 'printing');
    expect(gw.printer().busy).toBe(true);
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 30_000, 'job ended');
    const truth = sim.klipper.truth()!;
    expect(ended).toMatchObject({ outcome: 'finished', file: 'part.gcode', mode: 'sd', material: { source: 'printer-counter', uncertaintyMm: 10 } });
    expect(truth.extrudedMm).toBeGreaterThan(2000);
    within(ended.filamentMm as number, truth.extrudedMm, 0.001);
    within(ended.filamentG as number, truth.extrudedG, 0.001);
    const started = gw.events('printer.job-started')[0]!;
    expect(started).toMatchObject({ file: 'part.gcode', host: 'moonraker', hostJobId: sim.klipper.history[0]!.job_id });

    node.badge(ADA);
    await waitFor(() => gw.lab.journal.events({ kind: 'billing.charge' }).length === 1, 10_000, 'charged');
    const session = gw.lab.journal.events({ kind: 'session.ended' })[0]!.data as { filamentG: number; filamentMm: number; material: { source: string } };
    within(session.filamentMm, truth.extrudedMm, 0.001);
    within(session.filamentG, truth.extrudedG, 0.001);
    expect(session.material.source).toBe('printer-counter');
    const charge = gw.lab.journal.events({ kind: 'billing.charge' })[0]!.data as { price: { material: number; usage: number; total: number } };
    // 0.10 a gram: 10 cents per 1000 mg, half up
    expect(charge.price.material).toBe(Math.round((Math.round(session.filamentG * 1000) * 10) / 1000));
    expect(charge.price).toMatchObject({ usage: 200, total: 200 + charge.price.material });
    await waitFor(() => !node.truth().relay.sensed, 5000, 'relay off');
    // the API shows the printer like any other device
    const { fetch: authed } = adminFetch(gw.lab);
    const devices = (await (await authed(`${gw.lab.url}/api/devices`)).json()) as { id: string; state: string; detail: { link: { connects: number } } }[];
    expect(devices.find((d) => d.id === 'voron')).toMatchObject({ state: 'online', detail: { link: { connects: 1 } } });
    // the gateway follows the host and does not control it: the serial printers' controls refuse it
    const clear = await authed(`${gw.lab.url}/api/devices/voron/fault/clear`, { method: 'POST' });
    expect(clear.status).toBe(400);
    expect(await clear.json()).toMatchObject({ message: 'device "voron" is a moonraker-printer, not a printer' });
  });

  it('a print too short to be seen printing between two status updates is metered from the history', async () => {
    const sim = await moonraker();
    const gw = await gateway({ devices: [voron(sim)] });
    await waitFor(() => gw.printer().state === 'idle');
    sim.klipper.startPrint('tiny.gcode');
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 10_000, 'job ended');
    expect(ended).toMatchObject({ file: 'tiny.gcode', outcome: 'finished', filamentMm: 7.75 });
    expect(gw.events('printer.job-started')).toEqual([{ jobId: ended.jobId, mode: 'sd', file: 'tiny.gcode', host: 'moonraker', hostJobId: sim.klipper.history[0]!.job_id }]);
  });

  it('a refused API key is a fault with Moonraker\'s words, not a storm of retries', async () => {
    const sim = await moonraker({ apiKey: 'right-key' });
    const gw = await gateway({ devices: [voron(sim, { apiKey: 'wrong-key', authRetryS: 60 })] });
    await waitFor(() => gw.printer().health().state === 'fault', 10_000, 'auth fault');
    const h = gw.printer().health();
    expect(h.reason).toMatch(/^Moonraker refused the gateway: Invalid API Key\. Check apiKey; tried again in 60 s$/);
    expect(gw.printer().state).toBe('error');
    expect(gw.events('device.fault')).toEqual([{ kind: 'auth-refused', text: h.reason }]);
    const connections = sim.stats.connections;
    await new Promise((r) => setTimeout(r, 1500));
    expect(sim.stats.connections).toBe(connections);
    expect((h.detail.link as { authFailures: number }).authFailures).toBe(1);
  });

  it('the network dropping mid-print keeps the job open; the host\'s history ends it with its figures', async () => {
    const sim = await moonraker({ linesPerS: 1500 });
    const gw = await gateway({ devices: [voron(sim)] });
    await waitFor(() => gw.printer().state === 'idle');
    sim.klipper.startPrint('part.gcode');
    await waitFor(() => (gw.printer().currentJob?.progress ?? 0) > 0.1, 10_000, 'printing');
    await sim.unplug();
    await waitFor(() => gw.printer().state === 'offline', 5000, 'offline');
    expect(gw.events('device.lost')).toHaveLength(1);
    expect(gw.events('printer.job-ended')).toEqual([]);
    expect(gw.printer().busy).toBe(true);
    await waitFor(() => !sim.klipper.printing, 30_000, 'print done on the host');
    await sim.replug();
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 10_000, 'job ended');
    const truth = sim.klipper.truth()!;
    expect(ended).toMatchObject({ outcome: 'finished', reason: 'ended while the gateway was away (Moonraker history: completed)' });
    expect(ended.filamentMm).toBeCloseTo(sim.klipper.history[0]!.filament_used, 3);
    within(ended.filamentMm as number, truth.extrudedMm, 0.001);
    expect(gw.events('printer.job-started')).toHaveLength(1);
    await waitFor(() => gw.printer().state === 'idle');
  });

  it('Moonraker restarting mid-print: the gateway reconnects and follows the same job on to its end', async () => {
    const sim = await moonraker({ linesPerS: 1500 });
    const gw = await gateway({ devices: [voron(sim)] });
    await waitFor(() => gw.printer().state === 'idle');
    sim.klipper.startPrint('part.gcode');
    await waitFor(() => (gw.printer().currentJob?.progress ?? 0) > 0.1, 10_000, 'printing');
    const jobId = gw.printer().currentJob!.id;
    await sim.restartHost(0.3 * 1000);
    await waitFor(() => gw.events('device.reconnected').length === 1, 10_000, 'reconnected');
    await waitFor(() => gw.printer().currentJob?.id === jobId || gw.events('printer.job-ended').length > 0, 10_000, 'followed on');
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 30_000, 'job ended');
    expect(ended).toMatchObject({ jobId, outcome: 'finished' });
    within(ended.filamentMm as number, sim.klipper.truth()!.extrudedMm, 0.001);
    expect(gw.events('printer.job-started')).toHaveLength(1);
  });

  it('Klipper shutting down fails the job with Klipper\'s words and is a fault until Klipper is ready again', async () => {
    const sim = await moonraker({ linesPerS: 1500 });
    const gw = await gateway({ devices: [voron(sim)] });
    await waitFor(() => gw.printer().state === 'idle');
    sim.klipper.startPrint('part.gcode');
    await waitFor(() => (gw.printer().currentJob?.progress ?? 0) > 0.1, 10_000, 'printing');
    sim.klipper.shutdown("MCU 'mcu' shutdown: Timer too close");
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 10_000, 'job ended');
    expect(ended).toMatchObject({ outcome: 'failed' });
    expect(String(ended.reason)).toMatch(/^MCU 'mcu' shutdown: Timer too close/);
    // stopped mid-print: Klipper's count is short by the retraction outstanding then (0.8 mm in this G-code), never over
    const truth = sim.klipper.truth()!;
    expect(ended.filamentMm as number).toBeLessThanOrEqual(truth.extrudedMm + 1e-6);
    expect(truth.extrudedMm - (ended.filamentMm as number)).toBeLessThanOrEqual(0.8 + 1e-6);
    expect(gw.printer().state).toBe('error');
    const h = gw.printer().health();
    expect(h.state).toBe('fault');
    expect(h.reason).toMatch(/^MCU 'mcu' shutdown: Timer too close\nOnce the underlying issue is corrected/);
    expect(gw.events('device.fault')).toHaveLength(1);
    sim.klipper.restartKlipper();
    await waitFor(() => gw.printer().state === 'idle', 10_000, 'ready again');
    expect(gw.printer().health().state).toBe('online');
    expect(gw.events('device.fault-cleared')).toHaveLength(1);
  });

  it('the gateway restarting mid-print follows the job on, or ends it from the history when it ended meanwhile', async () => {
    const sim = await moonraker({ linesPerS: 1500 });
    const config = { devices: [voron(sim)] };
    let gw = await gateway(config);
    const dataDir = gw.dataDir;
    await waitFor(() => gw.printer().state === 'idle');
    // 1. the print goes on while the gateway restarts: the same job, followed on
    sim.klipper.startPrint('part.gcode');
    await waitFor(() => (gw.printer().currentJob?.progress ?? 0) > 0.1, 10_000, 'printing');
    const first = gw.printer().currentJob!.id;
    sim.klipper.pause(); // still running when the next gateway is up, however loaded the machine
    await gw.stop();
    gw = await gateway(config, dataDir);
    await waitFor(() => gw.printer().currentJob?.id === first, 10_000, 'followed on after the restart');
    expect(gw.printer().state).toBe('paused');
    sim.klipper.resume();
    const ended1 = await waitFor(() => gw.events('printer.job-ended')[0], 30_000, 'first job ended');
    expect(ended1).toMatchObject({ jobId: first, outcome: 'finished' });
    within(ended1.filamentMm as number, sim.klipper.truth()!.extrudedMm, 0.001);
    // 2. the print ends while the gateway is down: ended from Moonraker's history
    sim.klipper.startPrint('small.gcode');
    await waitFor(() => gw.printer().currentJob?.file === 'small.gcode' && gw.events('printer.job-started').length === 2, 10_000, 'second job');
    const second = gw.printer().currentJob!.id;
    sim.klipper.pause(); // so that the gateway stops before the print ends, however loaded the machine
    await gw.stop();
    sim.klipper.resume();
    await waitFor(() => !sim.klipper.printing, 30_000, 'second print done');
    gw = await gateway(config, dataDir);
    const ended2 = await waitFor(() => gw.events('printer.job-ended').find((e) => e.jobId === second), 10_000, 'second job ended from history');
    expect(ended2).toMatchObject({ outcome: 'finished', file: 'small.gcode', reason: 'ended while the gateway was away (Moonraker history: completed)' });
    expect(ended2.filamentMm as number).toBeGreaterThanOrEqual(sim.klipper.history[0]!.filament_used - 1e-3);
    // short of the truth by the end script's 2 mm retraction at most
    expect(sim.klipper.truth()!.extrudedMm - (ended2.filamentMm as number)).toBeLessThanOrEqual(2 + 1e-6);
    expect(ended2.filamentMm as number).toBeLessThanOrEqual(sim.klipper.truth()!.extrudedMm + 1e-6);
    expect(gw.events('printer.job-started').map((e) => e.jobId)).toEqual([first, second]);
    expect(gw.events('printer.job-ended').map((e) => e.jobId)).toEqual([first, second]);
  });
});
