/**
 * The printer driver against the simulated Marlin/Prusa printer through the real serialport
 * stack on a pseudo-terminal: connection, temperatures, print-host metering, and every injected
 * fault. Prints from the printer's own card: printer-sd.test.ts.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleGcode } from '../simulators/src/printer/sample-gcode.js';
import { tempDir, waitFor } from './helpers.js';
import { bed, closeBeds, jobEnd, progressPast, within, type Bed } from './printer-bed.js';

afterEach(closeBeds);


describe.each(['marlin', 'prusa'] as const)('printer (%s dialect)', (dialect) => {
  it('connects, reads capabilities and reports temperatures', async () => {
    const b = await bed({ dialect });
    const d = b.printer.health();
    expect(d.state).toBe('online');
    expect(d.detail.capabilities).toMatchObject({ AUTOREPORT_TEMP: true, EMERGENCY_PARSER: true });
    expect((d.detail.firmware as { name: string }).name).toMatch(dialect === 'prusa' ? /^Prusa-Firmware/ : /^Marlin 2\.1/);
    await waitFor(() => b.printer.health().detail.temperatures);
    expect(b.events('device.hello')).toHaveLength(1);
  });

  it('print-host mode meters grams equal to the printer\'s ground truth (within 0.1 %)', async () => {
    const b = await bed({ dialect });
    b.printer.startJob('calibration-cube.gcode', sampleGcode({ layers: 8, movesPerLayer: 30 }));
    expect(b.printer.state === 'printing' || b.printer.state === 'heating').toBe(true);
    const end = await jobEnd(b);
    const truth = b.sim.truth();
    expect(end).toMatchObject({ outcome: 'finished', file: 'calibration-cube.gcode' });
    within(end.filamentMm as number, truth.totalExtrudedMm, 0.001);
    within(end.filamentG as number, truth.totalExtrudedG, 0.001);
    expect(truth.totalExtrudedMm).toBeGreaterThan(50);
    expect(b.printer.state).toBe('idle');
  });
});

describe('printer metering through faults', () => {
  it('a cancel mid-print stops the stream, runs the cancel script, and meters what was really extruded', async () => {
    const b = await bed();
    const past = progressPast(b, 0.3);
    b.printer.startJob('big.gcode', sampleGcode({ layers: 40, movesPerLayer: 40, heat: false }));
    await past;
    b.printer.cancel();
    const end = await jobEnd(b);
    expect(end.outcome).toBe('cancelled');
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
    expect(b.sim.truth().totalExtrudedMm).toBeLessThan(40 * 40 * 0.45);
  });

  it('checksum errors and resend requests (with and without the trailing ok) lose and repeat nothing', async () => {
    const b = await bed();
    const [past20, past50] = [progressPast(b, 0.2), progressPast(b, 0.5)];
    b.printer.startJob('resends.gcode', sampleGcode({ layers: 6, movesPerLayer: 30, heat: false }));
    await past20;
    b.sim.injectChecksumErrors(3);
    await past50;
    b.sim.setResendWithoutOk(true);
    b.sim.injectChecksumErrors(2);
    const end = await jobEnd(b);
    expect(end.outcome).toBe('finished');
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
    const stats = b.printer.health().detail.protocol as { resends: number; lineErrors: number };
    expect(stats.resends).toBeGreaterThanOrEqual(5);
    expect(stats.lineErrors).toBeGreaterThanOrEqual(5);
  });

  it('a missing ok is recovered by a timeout and an M105 poke, without double counting', async () => {
    const b = await bed();
    // The ok of the 40th command after the start is swallowed: armed on the simulator's own
    // output, so a loaded machine cannot let the job end before the drop is armed.
    let oks = 0;
    const armDrop = (line: string) => {
      if (!line.startsWith('ok') || ++oks < 40) return;
      b.sim.dropOk(1);
      b.sim.off('line', armDrop);
    };
    b.sim.on('line', armDrop);
    b.printer.startJob('lost-ok.gcode', sampleGcode({ layers: 4, movesPerLayer: 30, heat: false }));
    const end = await jobEnd(b);
    expect(end.outcome).toBe('finished');
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
    expect((b.printer.health().detail.protocol as { timeouts: number }).timeouts).toBeGreaterThanOrEqual(1);
  });

  it('a reset mid-print interrupts the job, keeps the filament used so far, and reconnects', async () => {
    const b = await bed();
    const past = progressPast(b, 0.2);
    b.printer.startJob('reset.gcode', sampleGcode({ layers: 30, movesPerLayer: 40, heat: false }));
    await past;
    b.sim.reset();
    const end = await jobEnd(b);
    expect(end).toMatchObject({ outcome: 'interrupted', reason: 'the printer reset' });
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
    expect(end.filamentMm).toBeGreaterThan(0);
    expect(b.events('printer.reset')).toHaveLength(1);
    await waitFor(() => b.printer.state === 'idle');
    expect(() => b.printer.resume()).toThrow('not printing');
  });

  it('thermal runaway becomes a fault with the firmware\'s words, until a maintainer clears it', async () => {
    const b = await bed();
    const past = progressPast(b, 0.1);
    b.printer.startJob('runaway.gcode', sampleGcode({ layers: 30, movesPerLayer: 40, heat: false }));
    await past;
    b.sim.thermalRunaway();
    const end = await jobEnd(b);
    expect(end).toMatchObject({ outcome: 'failed', reason: 'Thermal Runaway, system stopped! Heater_ID: 0' });
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
    expect(b.printer.state).toBe('error');
    expect(b.events('device.fault')).toEqual([{ kind: 'thermal-runaway', text: 'Thermal Runaway, system stopped! Heater_ID: 0' }]);
    expect(() => b.printer.startJob('again.gcode', 'G1 E1')).toThrow(/has a fault/);
    // The halted firmware answers nothing: bounded timeouts, then the port is reopened. On
    // real hardware reopening toggles DTR, which resets the board. A PTY has no DTR; the
    // simulator's port is made anew (resetting it) only once socat has data to pass after the
    // gateway closed its side, and a halted board sends none: so the test presses reset.
    await waitFor(() => b.events('device.lost').length === 1, 10_000);
    expect(String(b.events('device.lost')[0]!.reason)).toMatch(/consecutive timeouts/);
    await waitFor(() => b.events('device.reconnected').length === 1, 10_000);
    if (b.sim.truth().halted) b.sim.reset();
    await waitFor(() => b.printer.health().state === 'fault', 10_000);
    expect(b.printer.state).toBe('error');
    b.printer.clearFault();
    expect(b.printer.state).toBe('idle');
    expect(b.events('device.fault-cleared')).toHaveLength(1);
  });

  it('a USB drop interrupts the job and the printer comes back on replug', async () => {
    const b = await bed();
    const past = progressPast(b, 0.1);
    b.printer.startJob('usb.gcode', sampleGcode({ layers: 30, movesPerLayer: 40, heat: false }));
    await past;
    await b.transport.unplug();
    const end = await jobEnd(b);
    expect(end.outcome).toBe('interrupted');
    expect(String(end.reason)).toMatch(/^connection lost/);
    // Acknowledged lines only: short by at most the one move in flight when the cable went.
    const truth = b.sim.truth().totalExtrudedMm;
    expect(end.filamentMm as number).toBeLessThanOrEqual(truth + 1e-9);
    expect(end.filamentMm as number).toBeGreaterThanOrEqual(truth - 0.9);
    expect(b.printer.health().state).toBe('offline');
    await b.transport.replug();
    await waitFor(() => b.printer.state === 'idle', 10_000);
  });

  it('a printer gone silent is marked lost after bounded timeouts and reconnected', async () => {
    const b = await bed();
    b.sim.silence(2500);
    await waitFor(() => b.events('device.lost').length === 1, 10_000);
    expect(String(b.events('device.lost')[0]!.reason)).toMatch(/consecutive timeouts/);
    await waitFor(() => b.printer.state === 'idle', 10_000);
  });
});

describe('a printer that does not reset when the port opens (native USB)', () => {
  const clearFault = (b: Bed) => b.gw.fetch(`${b.gw.url}/api/devices/mk3s/fault/clear`, { method: 'POST' });

  it('asks for the temperatures right after connecting, not waiting for the first auto-report', async () => {
    // the first auto-report comes a minute later, and no timeout pokes the printer with M105 before
    const b = await bed({ resetOnOpen: false, timeScale: 1 }, { pollIntervalS: 60, timeouts: { communicationMs: 5000, maxConsecutive: 5, startMs: 300 } });
    await waitFor(() => b.printer.health().detail.temperatures, 1500, 'temperatures');
  });

  it('a thermal runaway cleared through the API: M999 goes out ahead of the line the halted printer never acknowledged', async () => {
    // Long timeouts: the maintainer clears the fault while the line is still in flight.
    const b = await bed({ resetOnOpen: false }, { timeouts: { communicationMs: 3000, maxConsecutive: 3, startMs: 300 } });
    const past = progressPast(b, 0.1);
    b.printer.startJob('runaway.gcode', sampleGcode({ layers: 30, movesPerLayer: 40, heat: false }));
    await past;
    b.sim.thermalRunaway();
    expect(await jobEnd(b)).toMatchObject({ outcome: 'failed' });
    expect(b.printer.health().state).toBe('fault');
    expect(await b.gw.health()).toMatchObject({ status: 'degraded', problems: ['mk3s: fault (Thermal Runaway, system stopped! Heater_ID: 0)'] });

    expect((await clearFault(b)).status).toBe(200);
    await waitFor(() => !b.sim.truth().halted, 5000, 'the firmware resumed');
    expect(b.events('device.fault-cleared')).toHaveLength(1);
    expect(await b.gw.health()).toMatchObject({ status: 'ok', problems: [] });
    // the numbered session goes on from M110 N0: a job prints to its end
    b.printer.startJob('after.gcode', sampleGcode({ layers: 2, movesPerLayer: 10, heat: false }));
    expect(await waitFor(() => b.events('printer.job-ended')[1], 10_000, 'second job ended')).toMatchObject({ outcome: 'finished' });
    expect(b.sim.truth().resets).toBe(0);
    expect(b.events('device.lost')).toEqual([]);
  });

  it('a fault cleared after the gateway gave up on the silent, halted printer and reopened the port', async () => {
    const b = await bed({ resetOnOpen: false });
    b.sim.thermalRunaway();
    await waitFor(() => b.events('device.reconnected').length >= 1, 10_000, 'reconnected');
    // the port reopened without a reset: the firmware is still halted and answers nothing
    expect(b.sim.truth().halted).toBe(true);
    expect((await clearFault(b)).status).toBe(200);
    await waitFor(() => b.printer.state === 'idle', 10_000, 'idle');
    expect(b.sim.truth()).toMatchObject({ halted: false, resets: 0 });
  });
});

describe('a printer gone silent', () => {
  it('is unresponsive within two communication timeouts, naming it in the health, and lost after the configured tries', async () => {
    const communicationMs = 1000;
    const b = await bed({}, { timeouts: { communicationMs, maxConsecutive: 5, startMs: 300 } });
    const past = progressPast(b, 0.05);
    b.printer.startJob('silent.gcode', sampleGcode({ layers: 30, movesPerLayer: 40, heat: false }));
    await past;
    b.sim.silence(8000);
    const unresponsive = await waitFor(() => b.events('device.unresponsive')[0], 5000, 'unresponsive');
    expect(unresponsive.silentMs).toBeGreaterThanOrEqual(communicationMs);
    expect(unresponsive.silentMs).toBeLessThan(2 * communicationMs + 1000);
    expect(b.printer.health()).toMatchObject({ state: 'unresponsive', reason: expect.stringMatching(/^no answer for \d+ s$/) });
    expect(await b.gw.health()).toMatchObject({ status: 'degraded', problems: [expect.stringMatching(/^mk3s: unresponsive \(no answer for \d+ s\)$/)] });
    expect(b.events('device.lost')).toEqual([]);
    const end = await jobEnd(b);
    expect(end).toMatchObject({ outcome: 'interrupted', reason: expect.stringMatching(/consecutive timeouts/) });
    expect(b.printer.health().state).toBe('offline');
    await waitFor(() => b.printer.state === 'idle', 15_000, 'idle again');
    expect(await b.gw.health()).toMatchObject({ status: 'ok' });
  });
});

describe('printing through the API and the command line', () => {
  it('takes a G-code upload, pauses, resumes and cancels, with clear errors for what it cannot do', async () => {
    const b = await bed();
    const post = (path: string, body?: string) =>
      b.gw.fetch(`${b.gw.url}${path}`, { method: 'POST', headers: body === undefined ? {} : { 'content-type': 'text/plain' }, body });
    const gcode = sampleGcode({ layers: 30, movesPerLayer: 40, heat: false });

    expect(await (await post('/api/devices/nope/jobs', gcode)).json()).toMatchObject({ error: 'unknown-device', message: expect.stringContaining('mk3s') });
    const empty = await post('/api/devices/mk3s/jobs?name=empty.gcode', '; only comments\n');
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { message: string }).message).toBe('empty.gcode: no G-code in the file');

    const past5 = progressPast(b, 0.05);
    const res = await post('/api/devices/mk3s/jobs?name=box.gcode', gcode);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ file: 'box.gcode', mode: 'host', state: 'printing' });
    const again = await post('/api/devices/mk3s/jobs?name=other.gcode', gcode);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { message: string }).message).toBe('mk3s is already printing box.gcode');

    await past5;
    expect(await (await post('/api/devices/mk3s/jobs/current/pause')).json()).toMatchObject({ state: 'paused' });
    const pausedAt = b.sim.truth().linesExecuted;
    await new Promise((r) => setTimeout(r, 300));
    expect(b.sim.truth().linesExecuted - pausedAt).toBeLessThanOrEqual(3); // polls only, no G-code
    expect(b.printer.state).toBe('paused');
    // it goes on from where it paused (the paused job stays until it ends)
    const further = progressPast(b, b.printer.currentJob!.progress + 0.05);
    expect(await (await post('/api/devices/mk3s/jobs/current/resume')).json()).toMatchObject({ state: 'printing' });
    await further;
    await post('/api/devices/mk3s/jobs/current/cancel');
    const end = await jobEnd(b);
    expect(end.outcome).toBe('cancelled');
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
    expect((await post('/api/devices/mk3s/jobs/current/cancel')).status).toBe(409);
  });

  it('ovn-gateway print sends a file and follows the job to its end', async () => {
    const b = await bed();
    const file = join(tempDir('print'), 'tiny.gcode');
    writeFileSync(file, sampleGcode({ layers: 3, movesPerLayer: 20, heat: false }));
    // Asynchronously: the gateway answering it runs in this process.
    const { stdout: out } = await promisify(execFile)(process.execPath, [join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js'), 'print', 'mk3s', file, '--url', b.gw.url, '--follow'], { encoding: 'utf8', env: { ...process.env, OVN_GATEWAY_TOKEN: b.gw.token } });
    expect(out.trim().split('\n')[0]).toMatch(/^tiny\.gcode: printing, \d+ %/);
    expect(out.trim().split('\n').at(-1)).toMatch(/^tiny\.gcode: finished, 100 %, [\d.]+ g \(\d+ mm\)$/);
    expect((await jobEnd(b)).outcome).toBe('finished');
  });
});
