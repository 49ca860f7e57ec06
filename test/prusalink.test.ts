/**
 * A Prusa printer with PrusaLink, against the simulated printer over real HTTP with digest
 * authentication: what the simulator refuses as PrusaLink does, jobs metered from their G-code
 * file against the simulator's ground truth, and the faults: a wrong password, an error that
 * stops the print, the network dropping, and the gateway restarting mid-print.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../gateway/src/config/schema.js';
import { digestAuthorization, parseChallenge } from '../gateway/src/devices/prusalink/digest.js';
import type { PrusalinkPrinter } from '../gateway/src/devices/prusalink/driver.js';
import { createLogger } from '../gateway/src/log.js';
import { startLab } from '../simulators/src/lab.js';
import { PrusaLinkSim } from '../simulators/src/prusalink/prusalink-sim.js';
import { sampleGcode } from '../simulators/src/printer/sample-gcode.js';
import { tempDir, waitFor } from './helpers.js';

const PART = sampleGcode({ layers: 60, movesPerLayer: 60, heat: false });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function printer(opts: { linesPerS?: number } = {}): Promise<PrusaLinkSim> {
  const sim = await PrusaLinkSim.start({ password: 'secret', linesPerS: opts.linesPerS ?? 1500, files: { 'part.gcode': PART } });
  cleanups.push(() => sim.close());
  return sim;
}

async function gateway(sim: PrusaLinkSim, extra: Record<string, unknown> = {}, dataDir = join(tempDir('prusalink'), 'data')) {
  const quiet = new Writable({ write: (_c, _e, done) => done() });
  const config = configSchema.parse({
    gateway: { dataDir, checkpointS: 1 },
    devices: [{ id: 'mk4', kind: 'prusalink-printer', url: sim.url, password: 'secret', pollIntervalMs: 250, reconnect: { initialMs: 50, maxMs: 300 }, ...extra }],
  });
  const lab = await startLab({ config, file: join(dataDir, '..', 'config.yaml'), baseDir: join(dataDir, '..') }, { httpPort: 0, logger: createLogger({ level: 'warn', format: 'json' }, quiet) });
  let stopped = false;
  const stop = async () => {
    if (!stopped) await lab.stop();
    stopped = true;
  };
  cleanups.push(stop);
  return {
    lab,
    dataDir,
    stop,
    printer: () => lab.devices.get('mk4') as PrusalinkPrinter,
    events: (kind: string) => lab.journal.events({ kind, deviceId: 'mk4', limit: 1_000_000 }).map((e) => e.data),
  };
}

function within(actual: number, expected: number, rel: number): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(expected * rel);
}

describe('simulated PrusaLink refuses what PrusaLink refuses', () => {
  it('no credentials, a wrong password, unknown paths and jobs, a pause with nothing printing', async () => {
    const sim = await printer();
    const bare = await fetch(`${sim.url}/api/v1/status`);
    expect(bare.status).toBe(401);
    const challenge = parseChallenge(bare.headers.get('www-authenticate'))!;
    expect(challenge).toMatchObject({ realm: 'Printer API', qop: 'auth' });
    const as = (password: string, method: string, path: string) => fetch(`${sim.url}${path}`, { method, headers: { authorization: digestAuthorization(challenge, 'maker', password, method, path, 1) } });
    expect((await as('wrong', 'GET', '/api/v1/status')).status).toBe(401);
    expect(await (await as('secret', 'GET', '/api/v1/status')).json()).toMatchObject({ printer: { state: 'IDLE' } });
    expect((await as('secret', 'GET', '/api/v1/job')).status).toBe(204);
    expect((await as('secret', 'GET', '/api/v1/nothing')).status).toBe(404);
    sim.machine.startPrint('part.gcode');
    expect((await as('secret', 'DELETE', '/api/v1/job/999')).status).toBe(404);
    expect((await as('secret', 'PUT', '/api/v1/job/1/resume')).status).toBe(409);
    expect((await as('secret', 'PUT', '/api/v1/job/1/pause')).status).toBe(204);
  });
});

describe('a PrusaLink printer at the gateway', () => {
  it('meters a finished job exactly from its G-code file', async () => {
    const sim = await printer();
    const gw = await gateway(sim);
    await waitFor(() => gw.printer().state === 'idle', 10_000, 'idle');
    expect(gw.printer().health()).toMatchObject({ kind: 'prusalink-printer', state: 'online', detail: { info: { serial: 'SIM00000001' } } });
    sim.machine.startPrint('part.gcode');
    await waitFor(() => gw.printer().state === 'printing', 5000, 'printing');
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 30_000, 'job ended');
    const truth = sim.machine.truth()!;
    expect(ended).toMatchObject({ outcome: 'finished', file: 'part.gcode', material: { source: 'file', uncertaintyMm: 0, flagged: null } });
    within(ended.filamentMm as number, truth.extrudedMm, 0.001);
    within(ended.filamentG as number, truth.extrudedG, 0.001);
    expect(gw.events('printer.job-started')).toEqual([{ jobId: ended.jobId, mode: 'sd', file: 'part.gcode', hostJobId: 1, host: 'prusalink' }]);
  });

  it('a stopped job is metered up to the progress last read, within the uncertainty it states', async () => {
    const sim = await printer();
    const gw = await gateway(sim);
    await waitFor(() => gw.printer().state === 'idle', 10_000, 'idle');
    sim.machine.startPrint('part.gcode');
    await waitFor(() => (gw.printer().currentJob?.progress ?? 0) > 0.2, 20_000, 'a fifth printed');
    sim.machine.pause();
    await waitFor(() => gw.printer().state === 'paused', 5000, 'paused');
    await new Promise((r) => setTimeout(r, 600)); // the progress of the paused print read
    sim.machine.cancel();
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 10_000, 'job ended');
    const truth = sim.machine.truth()!;
    const material = ended.material as { source: string; uncertaintyMm: number };
    expect(ended.outcome).toBe('cancelled');
    expect(material.source).toBe('file');
    expect(ended.filamentMm as number).toBeLessThanOrEqual(truth.extrudedMm + 1e-6);
    expect(truth.extrudedMm - (ended.filamentMm as number)).toBeLessThanOrEqual(material.uncertaintyMm + 1e-6);
  });

  it('a wrong password is a fault, not a storm of retries', async () => {
    const sim = await printer();
    const gw = await gateway(sim, { password: 'not-it', authRetryS: 60 });
    await waitFor(() => gw.printer().health().state === 'fault', 10_000, 'auth fault');
    expect(gw.printer().health().reason).toMatch(/^PrusaLink refused the gateway: HTTP 401 on \/api\/v1\/info\. Check username and password; tried again in 60 s$/);
    expect(gw.printer().state).toBe('error');
    const requests = sim.stats.requests;
    await new Promise((r) => setTimeout(r, 1500));
    expect(sim.stats.requests).toBe(requests);
  });

  it('an error stops the print: the job fails with the printer\'s words, a fault until the printer is idle again', async () => {
    const sim = await printer();
    const gw = await gateway(sim);
    await waitFor(() => gw.printer().state === 'idle', 10_000, 'idle');
    sim.machine.startPrint('part.gcode');
    await waitFor(() => (gw.printer().currentJob?.progress ?? 0) > 0.1, 20_000, 'printing');
    sim.machine.shutdown('Thermal runaway: heater bed');
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 10_000, 'job ended');
    expect(ended).toMatchObject({ outcome: 'failed', reason: 'Thermal runaway: heater bed' });
    expect(gw.printer().health()).toMatchObject({ state: 'fault', reason: 'Thermal runaway: heater bed' });
    expect(gw.printer().state).toBe('error');
    sim.machine.restartKlipper();
    await waitFor(() => gw.printer().state === 'idle', 10_000, 'idle again');
    expect(gw.events('device.fault-cleared')).toHaveLength(1);
  });

  it('the network dropping and the gateway restarting mid-print: the job is followed on, or ended as the printer still shows it', async () => {
    const sim = await printer();
    let gw = await gateway(sim);
    const dataDir = gw.dataDir;
    await waitFor(() => gw.printer().state === 'idle', 10_000, 'idle');
    sim.machine.startPrint('part.gcode');
    await waitFor(() => (gw.printer().currentJob?.progress ?? 0) > 0.1, 20_000, 'printing');
    const first = gw.printer().currentJob!.id;
    await sim.unplug();
    await waitFor(() => gw.printer().state === 'offline', 5000, 'offline');
    expect(gw.printer().busy).toBe(true);
    await sim.replug();
    await waitFor(() => gw.printer().state === 'printing', 5000, 'back');
    expect(gw.printer().currentJob?.id).toBe(first);
    sim.machine.pause();
    await gw.stop();
    gw = await gateway(sim, {}, dataDir);
    await waitFor(() => gw.printer().currentJob?.id === first, 10_000, 'followed on after the restart');
    await gw.stop();
    sim.machine.resume();
    await waitFor(() => !sim.machine.printing, 30_000, 'print done while the gateway is down');
    gw = await gateway(sim, {}, dataDir);
    const ended = await waitFor(() => gw.events('printer.job-ended')[0], 10_000, 'ended after the restart');
    expect(ended).toMatchObject({ jobId: first, outcome: 'finished', reason: 'ended while the gateway was away (PrusaLink: FINISHED)' });
    within(ended.filamentMm as number, sim.machine.truth()!.extrudedMm, 0.001);
    expect(gw.events('printer.job-started')).toHaveLength(1);
  });
});
