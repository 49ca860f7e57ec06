/**
 * Streaming beyond stop-and-wait: a firmware with ADVANCED_OK gets several lines in flight,
 * within the free command slots its oks report and its serial receive buffer, against the
 * simulated Marlin (receive buffer, command queue and planner) through the real serialport
 * stack on a pseudo-terminal. Metering, line counts, resends under line noise, the receive
 * buffer never overflowing, and the fallback to one line in flight.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { numbered } from '../gateway/src/devices/printer/line-protocol.js';
import { PrinterSim } from '../simulators/src/printer/printer-sim.js';
import { sampleGcode } from '../simulators/src/printer/sample-gcode.js';
import { bed, closeBeds, jobEnd, within, type Bed } from './printer-bed.js';

afterEach(closeBeds);

interface Stats {
  linesAcked: number;
  resends: number;
  ignoredResends: number;
  maxInFlight: number;
}
const stats = (b: Bed) => b.printer.health().detail.protocol as Stats;

const GCODE = sampleGcode({ layers: 8, movesPerLayer: 40, heat: false });
const JOB_LINES = GCODE.split('\n').filter((l) => l.trim() && !l.trim().startsWith(';')).length;
const JOB_MOVES = GCODE.split('\n').filter((l) => /^G[0-3]\s/.test(l)).length;

/** Prints GCODE and says what the printer ran for it: moves executed, filament, and what the gateway metered. */
async function print(b: Bed, noiseEvery = 0) {
  const before = b.sim.truth();
  if (noiseEvery) b.sim.setLineNoise(noiseEvery);
  b.printer.startJob('streamed.gcode', GCODE);
  const end = await jobEnd(b);
  b.sim.setLineNoise(0);
  const after = b.sim.truth();
  return { end, lines: after.movesExecuted - before.movesExecuted, truth: after };
}

describe('streaming with ADVANCED_OK', () => {
  it('keeps several lines in flight and meters the same filament and lines as stop-and-wait', async () => {
    const stream = await bed({ advancedOk: true });
    expect(stream.printer.health().detail.capabilities).toMatchObject({ ADVANCED_OK: true });
    const s = await print(stream);
    expect(s.end.outcome).toBe('finished');
    within(s.end.filamentMm as number, s.truth.totalExtrudedMm, 0.001);
    expect(stats(stream).maxInFlight).toBeGreaterThan(1);
    expect(s.truth.rxOverflowBytes).toBe(0);
    expect(s.truth.lineErrors).toBe(0);
    await closeBeds();

    const saw = await bed();
    const w = await print(saw);
    expect(w.end.outcome).toBe('finished');
    expect(stats(saw).maxInFlight).toBe(1);
    // the same file: the same lines run, the same filament, to the printer's truth
    expect(s.lines).toBe(JOB_MOVES);
    expect(s.lines).toBe(w.lines);
    within(s.truth.totalExtrudedMm, w.truth.totalExtrudedMm, 0.001);
    within(s.end.filamentMm as number, w.end.filamentMm as number, 0.001);
  });

  it('resends under line noise with a window in flight lose and repeat nothing', async () => {
    const b = await bed({ advancedOk: true });
    const progress: number[] = [];
    b.printer.on('progress', (p) => progress.push(p.progress));
    const r = await print(b, 13);
    expect(r.end.outcome).toBe('finished');
    expect(r.truth.lineErrors).toBeGreaterThanOrEqual(5);
    expect(stats(b).resends).toBeGreaterThanOrEqual(5);
    expect(stats(b).maxInFlight).toBeGreaterThan(1);
    // every line ran once: as many as without noise, and the filament the printer really pushed
    expect(r.lines).toBe(JOB_MOVES);
    within(r.end.filamentMm as number, r.truth.totalExtrudedMm, 0.001);
    expect(r.truth.rxOverflowBytes).toBe(0);
    // the job's progress counted each line once: one step per line, ending at 1
    expect(progress).toHaveLength(JOB_LINES);
    expect(progress.at(-1)).toBe(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThan(progress[i - 1]!);

    const quiet = await bed({ advancedOk: true });
    const q = await print(quiet);
    expect(r.lines).toBe(q.lines);
    within(r.truth.totalExtrudedMm, q.truth.totalExtrudedMm, 0.001);
  });

  it('never overfills a small receive buffer: the in-flight bytes stay within the one configured', async () => {
    const b = await bed({ advancedOk: true, rxBufferBytes: 64, bufsize: 8 }, { rxBufferBytes: 64 });
    const r = await print(b);
    expect(r.end.outcome).toBe('finished');
    expect(r.truth.rxOverflowBytes).toBe(0);
    expect(r.truth.rxHighWater).toBeLessThanOrEqual(63);
    within(r.end.filamentMm as number, r.truth.totalExtrudedMm, 0.001);
  });

  it('falls back to one line in flight when the firmware does not say ADVANCED_OK', async () => {
    const b = await bed({ advancedOk: false });
    expect(b.printer.health().detail.capabilities).toMatchObject({ ADVANCED_OK: false });
    const r = await print(b, 17);
    expect(r.end.outcome).toBe('finished');
    expect(stats(b).maxInFlight).toBe(1);
    within(r.end.filamentMm as number, r.truth.totalExtrudedMm, 0.001);
  });
});

describe('the simulated receive buffer', () => {
  it('drops what does not fit, as the firmware does, so a host that overfills it is caught', () => {
    const sim = new PrinterSim({ advancedOk: true, timeScale: 1 });
    const out: string[] = [];
    sim.attach((bytes) => out.push(...Buffer.from(bytes).toString('latin1').split('\n').filter(Boolean)));
    sim.feed(Buffer.from(numbered(0, 'M110 N0') + '\n'));
    // slow moves fill the planner and the queue; 40 more lines at once cannot all fit in 127 bytes
    const burst = Array.from({ length: 40 }, (_, i) => numbered(i + 1, `G1 X${(i % 2) * 200} F60`) + '\n').join('');
    sim.feed(Buffer.from(burst));
    const t = sim.truth();
    sim.detach();
    expect(t.rxOverflowBytes).toBeGreaterThan(0);
    expect(t.rxHighWater).toBe(127);
    expect(out.some((l) => /^ok N0 P16 B3$/.test(l))).toBe(true);
  });
});
