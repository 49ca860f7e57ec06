/**
 * A test bed for the printer driver: the simulated Marlin/Prusa printer through the real
 * serialport stack on a pseudo-terminal (TCP where socat is missing), and a gateway with it.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Printer } from '../gateway/src/devices/printer/driver.js';
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
