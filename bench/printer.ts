/**
 * Print-host streaming and the printer driver's CPU cost, against the simulated printer over
 * a PTY (needs socat):
 * - acknowledged lines per second while streaming a job, next to the raw line→ok round trip
 *   over the same kind of PTY measured in the same run (target: ≥ 70 % of that floor);
 * - CPU used by the gateway process for one printer, idle and printing (target idle: < 2 % of
 *   one core). The simulator runs in a child process so its work is not counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { printerSchema } from '../gateway/src/config/schema.js';
import { Printer } from '../gateway/src/devices/printer/driver.js';
import { numbered } from '../gateway/src/devices/printer/line-protocol.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { sampleGcode } from '../simulators/src/printer/sample-gcode.js';
import { hasSocat } from '../simulators/src/transports.js';
import { median, round, type BenchResult, type BenchSize } from './stats.js';

const cli = new URL('../bin/ovn-gateway.js', import.meta.url).pathname;
/** The job streamed (`layers` × `movesPerLayer` moves) `rounds` times, and how long the idle printer is watched. */
const SIZES = {
  full: { layers: 40, movesPerLayer: 50, rounds: 3, idleS: 10 },
  tiny: { layers: 2, movesPerLayer: 5, rounds: 1, idleS: 1 },
} satisfies Record<BenchSize, object>;

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function open(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

/**
 * Answers every line with `ok`, wired exactly like the simulated printer: its own process,
 * talking to a socat-made PTY through socat's standard input and output.
 */
const RESPONDER = `
const { spawn } = require('node:child_process');
const socat = spawn('socat', ['PTY,link=' + process.argv[1] + ',rawer,echo=0', 'STDIO'], { stdio: ['pipe', 'pipe', 'ignore'] });
let rx = '';
socat.stdout.on('data', (d) => {
  rx += d.toString('latin1');
  let nl;
  while ((nl = rx.indexOf('\\n')) >= 0) { rx = rx.slice(nl + 1); socat.stdin.write('ok\\n'); }
});
process.on('SIGTERM', () => { socat.kill(); process.exit(0); });`;

/** The floor: a serialport client sending numbered lines one at a time to a responder that only says `ok`. */
async function rawLineOk(dir: string, lines: string[]): Promise<number> {
  const tty = join(dir, 'ttyRAW');
  const responder = spawn(process.execPath, ['-e', RESPONDER, tty], { stdio: 'ignore' });
  await until(() => existsSync(tty), 5000, 'the responder PTY');
  const client = await open(tty);
  let rx = '';
  let waiting: (() => void) | null = null;
  client.on('data', (d: Buffer) => {
    rx += d.toString('latin1');
    if (waiting && rx.includes('ok\n')) {
      rx = '';
      const w = waiting;
      waiting = null;
      w();
    }
  });
  const t0 = performance.now();
  for (let i = 0; i < lines.length; i++) {
    await new Promise<void>((resolve) => {
      waiting = resolve;
      client.write(numbered(i + 1, lines[i]!) + '\n');
    });
  }
  const rate = lines.length / ((performance.now() - t0) / 1000);
  await new Promise((r) => client.close(r));
  responder.kill('SIGTERM');
  return rate;
}

function cpuPercent(fn: () => Promise<void>): Promise<number> {
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  return fn().then(() => {
    const u = process.cpuUsage(u0);
    return round(((u.user + u.system) / 1000 / (performance.now() - t0)) * 100, 2);
  });
}


export async function benchPrinter(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { layers, movesPerLayer, rounds, idleS } = SIZES[size];
  if (!hasSocat()) return [{ bench: 'printer-streaming', skipped: 'socat is not installed (apt-get install socat)' }];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-printer-'));
  const gcode = sampleGcode({ layers, movesPerLayer, heat: false });
  const jobLines = gcode.split('\n').filter((l) => l.trim() && !l.trim().startsWith(';'));

  // The simulated printer in its own process, on a PTY.
  const tty = join(dir, 'ttyPRINTER');
  const sim: ChildProcess = spawn(process.execPath, [cli, 'sim', 'printer', '--pty', tty], { stdio: ['pipe', 'ignore', 'ignore'] });
  await until(() => existsSync(tty), 15_000, 'the simulated printer');
  const journal = Journal.open(join(dir, 'data'));
  const printer = new Printer(printerSchema.parse({ id: 'bench', kind: 'printer', serial: { path: tty } }), journal, createLogger({ level: 'error', format: 'json' }), { checkpointMs: 5000, gcodeDir: join(dir, 'gcode') });
  printer.start();
  await until(() => printer.state === 'idle', 15_000, 'the printer to connect');

  const idleCpu = await cpuPercent(() => new Promise((r) => setTimeout(r, idleS * 1000)));

  // Floor and streaming alternate, round after round, so that drift in the machine's load
  // hits both; the medians are compared.
  const floors: number[] = [];
  const rates: number[] = [];
  const cpus: number[] = [];
  for (let round = 0; round < rounds; round++) {
    floors.push(await rawLineOk(dir, jobLines));
    cpus.push(
      await cpuPercent(async () => {
        const t0 = performance.now();
        printer.startJob('bench.gcode', gcode);
        await until(() => printer.currentJob === null, 300_000, 'the job to finish');
        rates.push(jobLines.length / ((performance.now() - t0) / 1000));
      }),
    );
  }
  await printer.stop();
  journal.close();
  sim.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });

  const [floor, rate] = [median(floors), median(rates)];
  return [
    { bench: 'printer-raw-line-ok', path: `serialport numbered line → PTY → socat → responder process writes ok → back, one at a time; median of ${rounds}`, lines: jobLines.length, linesPerSec: Math.round(floor) },
    {
      bench: 'printer-streaming',
      path: `Printer.startJob → LineProtocol → serialport → PTY → simulated Marlin (child process) → ok; median of ${rounds}, alternating with the floor`,
      lines: jobLines.length,
      linesPerSec: Math.round(rate),
      ofRawFloor: round(rate / floor, 2),
      target: '>= 0.70 of the raw line→ok floor',
      pass: rate / floor >= 0.7,
    },
    { bench: 'printer-cpu-idle', path: `gateway process, one printer connected, auto-reports every 2 s, ${idleS} s`, cpuPercentOfOneCore: idleCpu, target: '< 2 % of one core', pass: idleCpu < 2 },
    { bench: 'printer-cpu-printing', path: 'gateway process (all threads) while streaming as fast as the printer acknowledges', cpuPercentOfOneCore: median(cpus) },
  ];
}
