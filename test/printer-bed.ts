/**
 * A test bed for the printer driver: the simulated Marlin/Prusa printer through the real
 * serialport stack on a pseudo-terminal (TCP where socat is missing), and a gateway with it.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Printer } from '../gateway/src/devices/printer/driver.js';
import type { JobInfo } from '../gateway/src/devices/printer/job.js';
import { PrinterSim, type PrinterSimOptions } from '../simulators/src/printer/printer-sim.js';
import { servePty, serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { skipWithoutSocat, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];

export interface Bed {
  sim: PrinterSim;
  transport: SimTransport;
  gw: TestGateway;
  printer: Printer;
  events: (kind: string) => Record<string, unknown>[];
}

export interface BedOptions {
  /** Runs on the simulator before the gateway connects (a print already running, say). */
  before?: (sim: PrinterSim) => void;
  /** What the bed waits for before it is handed over; by default the printer idle. */
  ready?: (printer: Printer) => boolean;
}

export async function bed(simOpts: PrinterSimOptions = {}, device: Record<string, unknown> = {}, opts: BedOptions = {}): Promise<Bed> {
  const sim = new PrinterSim({ timeScale: 400, keepaliveMs: 100, ...simOpts });
  const transport = skipWithoutSocat ? await serveTcp(sim, '127.0.0.1', 0) : await servePty(sim, join(tempDir('pty'), 'ttyPRINTER'));
  cleanups.push(() => transport.close());
  opts.before?.(sim);
  const gw = await startTestGateway({
    devices: [
      {
        id: 'mk3s',
        kind: 'printer',
        dialect: simOpts.dialect ?? 'marlin',
        serial: { path: transport.address, reconnect: { initialMs: 50, maxMs: 300 } },
        pollIntervalS: 1,
        timeouts: { communicationMs: 400, maxConsecutive: 3, startMs: 300 },
        ...device,
      },
    ],
  });
  const printer = gw.devices.get('mk3s') as Printer;
  cleanups.push(() => gw.stop());
  const b: Bed = { sim, transport, gw, printer, events: (kind) => gw.journal.events({ deviceId: 'mk3s', kind }).map((e) => e.data) };
  await waitFor(() => (opts.ready ?? ((p) => p.state === 'idle'))(printer), 10_000, 'printer ready');
  return b;
}

/** Stops every bed's gateway and simulator (afterEach). */
export async function closeBeds(): Promise<void> {
  for (const undo of cleanups.splice(0).reverse()) await undo();
}

export async function jobEnd(b: Bed, ms = 30_000) {
  return waitFor(() => b.events('printer.job-ended')[0], ms, 'job ended');
}

export const within = (got: number, want: number, fraction: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(want * fraction + 1e-9);

/**
 * Resolves when the running job has got at least `fraction` of the way, on the printer's progress
 * event: made before the job starts, it cannot miss a job that starts and ends between two looks.
 * Rejects when the job ends first, or after `ms`.
 */
export function progressPast(b: Bed, fraction: number, ms = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      b.printer.off('progress', onProgress);
      b.printer.off('job', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onProgress = (p: { progress: number }) => p.progress >= fraction && done();
    const onEnd = (j: JobInfo) => done(new Error(`${j.file} ended (${j.state}) before ${fraction * 100} %`));
    const timer = setTimeout(() => done(new Error(`no progress to ${fraction * 100} % within ${ms} ms`)), ms);
    b.printer.on('progress', onProgress);
    b.printer.on('job', onEnd);
  });
}
