/**
 * Prints from the printer's own SD card, followed and metered by the driver through the real
 * serialport stack: real PrusaSlicer output (test/fixtures/sd) on the simulated Marlin's card,
 * printed at several speeds and cut short in every way, compared with the simulator's truth.
 * With the file known: within 0.1 %; with the printer's counter only: within its stated bias;
 * with neither: flagged, never silently billed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Material } from '../gateway/src/devices/printer/job.js';
import type { PrinterSim, PrinterSimOptions } from '../simulators/src/printer/printer-sim.js';
import { waitFor } from './helpers.js';
import { bed, closeBeds, jobEnd, within, type Bed, type BedOptions } from './printer-bed.js';

afterEach(closeBeds);

const FIXTURES = ['absolute-e.gcode', 'relative-e.gcode', 'tiny-part.gcode', 'bowden-12mm.gcode'] as const;
const gcodeOf = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', 'sd', name), 'latin1');
/** Heating takes a few seconds at this pace; lines per second below are simulated seconds, like the status reports. */
const TIME_SCALE = 50;
/** A real printer runs sliced G-code at some 25–100 lines a second. */
const REALISTIC = 25;

interface Print {
  file: (typeof FIXTURES)[number];
  linesPerS: number;
  /** The gateway holds the file. */
  known: boolean;
  sim?: PrinterSimOptions;
  bedOptions?: BedOptions;
}

async function sdBed({ file, linesPerS, known, sim, bedOptions }: Print): Promise<Bed> {
  // idle, with the print counter read: a print started now is seen starting
  const idle: BedOptions = { ready: (p) => p.state === 'idle' && (sim?.printCounter === false || p.health().detail.printCounterMm != null) };
  const b = await bed({ sdFiles: { [file]: gcodeOf(file) }, timeScale: TIME_SCALE, sdLinesPerS: linesPerS, ...sim }, { maxRetractionMm: 12 }, bedOptions ?? idle);
  if (known) {
    const res = await b.gw.fetch(`${b.gw.url}/api/devices/mk3s/files/${file}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: gcodeOf(file) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name: file, bytes: gcodeOf(file).length, filamentMm: expect.any(Number) });
  }
  return b;
}

/** Injects a fault when the simulated printer has executed that many lines of the file. */
function atLine(sim: PrinterSim, n: number, fault: () => void): void {
  const on = (line: number) => {
    if (line !== n) return;
    sim.off('sdLine', on);
    fault();
  };
  sim.on('sdLine', on);
}

const materialOf = (end: Record<string, unknown>) => end.material as Material;

describe('an SD print whose file the gateway holds is metered exactly', () => {
  const cases = [
    ...FIXTURES.map((file) => ({ file, linesPerS: 100 })),
    { file: 'tiny-part.gcode', linesPerS: REALISTIC },
    { file: 'absolute-e.gcode', linesPerS: REALISTIC },
    { file: 'absolute-e.gcode', linesPerS: 400 },
  ] as const;
  it.each(cases)('$file at $linesPerS lines/s: within 0.1 % of the truth, named, 100 % at the end', async ({ file, linesPerS }) => {
    const b = await sdBed({ file, linesPerS, known: true });
    b.sim.startSdPrint(file);
    const end = await jobEnd(b);
    const truth = b.sim.truth();
    expect(end).toMatchObject({ outcome: 'finished', mode: 'sd', file, reason: 'done printing file' });
    expect(materialOf(end)).toEqual({ source: 'file', uncertaintyMm: 0, flagged: null });
    within(end.filamentMm as number, truth.totalExtrudedMm, 0.001);
    expect(truth.totalExtrudedMm).toBeGreaterThan(30);
    expect(b.printer.finishedJob).toMatchObject({ file, progress: 1, state: 'finished' });
    // the counter, journaled beside it, agrees within its bias
    expect(Math.abs((end.printCounterMm as number) - truth.totalExtrudedMm)).toBeLessThanOrEqual(2 * 10 + 12);
    expect(b.events('printer.material-flagged')).toEqual([]);
  });
});

describe("an SD print of a file the gateway does not hold is metered from the printer's counter", () => {
  const cases = [...FIXTURES.map((file) => ({ file, linesPerS: 100 })), { file: 'absolute-e.gcode', linesPerS: REALISTIC }] as const;
  it.each(cases)('$file at $linesPerS lines/s: within the stated bias, which is said', async ({ file, linesPerS }) => {
    const b = await sdBed({ file, linesPerS, known: false });
    b.sim.startSdPrint(file);
    const end = await jobEnd(b);
    const truth = b.sim.truth();
    const m = materialOf(end);
    expect(m).toEqual({ source: 'printer-counter', uncertaintyMm: 2 * 10 + 12, flagged: null });
    expect(Math.abs((end.filamentMm as number) - truth.totalExtrudedMm)).toBeLessThanOrEqual(m.uncertaintyMm!);
    expect(end).toMatchObject({ outcome: 'finished', file, printCounterMm: end.filamentMm });
  });

  it('a firmware without a print counter: estimated from positions, flagged, and the maintainers alerted', async () => {
    const b = await sdBed({ file: 'absolute-e.gcode', linesPerS: 100, known: false, sim: { printCounter: false } });
    // a file given without a body is refused, saying how to send it
    const empty = await b.gw.fetch(`${b.gw.url}/api/devices/mk3s/files/absolute-e.gcode`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: '' });
    expect(empty.status).toBe(400);
    expect(await empty.json()).toMatchObject({ error: 'no-gcode', message: expect.stringMatching(/request body/) });
    b.sim.startSdPrint('absolute-e.gcode');
    const end = await jobEnd(b);
    expect(end.printCounterMm).toBeNull();
    expect(materialOf(end)).toMatchObject({ source: 'position-estimate', uncertaintyMm: null, flagged: expect.stringMatching(/estimated from extruder positions/) });
    expect(b.events('printer.material-flagged')).toEqual([{ jobId: end.jobId, file: 'absolute-e.gcode', source: 'position-estimate', text: materialOf(end).flagged }]);
  });
});

describe('an SD print cut short', () => {
  const cut = [
    { how: 'stopped from the menu', outcome: 'cancelled', fault: (sim: PrinterSim) => sim.stopSdPrint(), reason: 'SD print stopped' },
    { how: 'card pulled out', outcome: 'failed', fault: (sim: PrinterSim) => sim.releaseSdCard(), reason: 'SD card released' },
    { how: 'thermal runaway', outcome: 'failed', fault: (sim: PrinterSim) => sim.thermalRunaway(), reason: 'Thermal Runaway, system stopped! Heater_ID: 0' },
  ] as const;

  it.each(cut)('$how, file known: what was read is metered, and what may have been read after the last report is the uncertainty', async ({ outcome, fault, reason }) => {
    const b = await sdBed({ file: 'absolute-e.gcode', linesPerS: REALISTIC, known: true });
    atLine(b.sim, 400, () => fault(b.sim));
    b.sim.startSdPrint('absolute-e.gcode');
    const end = await jobEnd(b);
    const truth = b.sim.truth().totalExtrudedMm;
    const m = materialOf(end);
    expect(end).toMatchObject({ outcome, reason, file: 'absolute-e.gcode' });
    expect(m.source).toBe('file');
    expect(end.filamentMm as number).toBeLessThanOrEqual(truth + 1e-6);
    expect(truth).toBeLessThanOrEqual((end.filamentMm as number) + m.uncertaintyMm! + 1e-6);
    expect(truth).toBeGreaterThan(20);
    // the halted printer answers no M78: unknown, never 0
    if (reason.startsWith('Thermal')) expect(end.printCounterMm).toBeNull();
    else expect(end.printCounterMm).toEqual(expect.any(Number));
  });

  it.each(cut.slice(0, 2))('$how, file unknown: the counter read after the end, within its bias', async ({ outcome, fault }) => {
    const b = await sdBed({ file: 'absolute-e.gcode', linesPerS: REALISTIC, known: false });
    atLine(b.sim, 400, () => fault(b.sim));
    b.sim.startSdPrint('absolute-e.gcode');
    const end = await jobEnd(b);
    const m = materialOf(end);
    expect(end.outcome).toBe(outcome);
    expect(m.source).toBe('printer-counter');
    expect(Math.abs((end.filamentMm as number) - b.sim.truth().totalExtrudedMm)).toBeLessThanOrEqual(m.uncertaintyMm!);
  });
});

describe('an SD print started before the gateway connected', () => {
  const running: BedOptions = {
    before: (sim) => sim.startSdPrint('absolute-e.gcode'),
    ready: (p) => p.currentJob !== null,
  };

  it('with the file known, is metered exactly from the start of the file', async () => {
    // the gateway is given the file before it sees the print: a first gateway holds it from the start
    const b = await sdBed({ file: 'absolute-e.gcode', linesPerS: REALISTIC, known: true, sim: { resetOnOpen: false }, bedOptions: { before: (sim) => sim.startSdPrint('absolute-e.gcode'), ready: (p) => p.state !== 'offline' && p.state !== 'connecting' } });
    const end = await jobEnd(b);
    expect(end).toMatchObject({ outcome: 'finished', file: 'absolute-e.gcode' });
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
  });

  it('with only the counter, is flagged: the counter misses what came before', async () => {
    const b = await sdBed({ file: 'absolute-e.gcode', linesPerS: REALISTIC, known: false, sim: { resetOnOpen: false }, bedOptions: running });
    const end = await jobEnd(b);
    const m = materialOf(end);
    expect(m).toMatchObject({ source: 'printer-counter', flagged: expect.stringMatching(/started before the gateway connected/) });
    expect(end.filamentMm as number).toBeLessThanOrEqual(b.sim.truth().totalExtrudedMm + m.uncertaintyMm!);
    expect(b.events('printer.material-flagged')).toHaveLength(1);
  });
});

describe('Prusa-Firmware', () => {
  it('saves its counter when a print ends: the job is metered from it then', async () => {
    const b = await sdBed({ file: 'relative-e.gcode', linesPerS: 100, known: false, sim: { dialect: 'prusa' } });
    b.sim.startSdPrint('relative-e.gcode');
    await waitFor(() => b.printer.currentJob, 10_000, 'job');
    // while it prints, only the positions say anything
    expect(b.printer.currentJob!.material.source).toBe('position-estimate');
    const end = await jobEnd(b);
    // named from its M27, whose first line is the file's name
    expect(end.file).toBe('relative-e.gcode');
    const m = materialOf(end);
    expect(m).toEqual({ source: 'printer-counter', uncertaintyMm: 32, flagged: null });
    expect(Math.abs((end.filamentMm as number) - b.sim.truth().totalExtrudedMm)).toBeLessThanOrEqual(32);
  });

  it('names the file from its M27 reply: a file the gateway holds is metered from it, within 0.1 %', async () => {
    const b = await sdBed({ file: 'absolute-e.gcode', linesPerS: 100, known: true, sim: { dialect: 'prusa' } });
    b.sim.startSdPrint('absolute-e.gcode');
    const started = await waitFor(() => b.events('printer.job-started')[0], 10_000, 'job started');
    expect(started).toMatchObject({ mode: 'sd', file: 'absolute-e.gcode' });
    const end = await jobEnd(b);
    expect(end).toMatchObject({ outcome: 'finished', file: 'absolute-e.gcode', material: { source: 'file', flagged: null } });
    within(end.filamentMm as number, b.sim.truth().totalExtrudedMm, 0.001);
  });
});
