/**
 * Print-host streaming and the printer driver's CPU cost, against the simulated printer over
 * a PTY (needs socat), on a dense curve of short segments (a planner at `--time-scale 1000`
 * runs them faster than any serial line feeds them, so the line is what is measured):
 * - acknowledged lines per second while streaming a job, next to the raw line→ok round trip
 *   over the same kind of PTY measured in the same run (target: ≥ 70 % of that floor);
 * - the same with a firmware that says ADVANCED_OK, several lines in flight (target: ≥ 1.5× the
 *   floor, which no host that waits for each ok can reach), and Printrun's printcore streaming
 *   the same file to the same simulated printer beside it (left out, with a note, when it is
 *   not installed);
 * - CPU used by the gateway process for one printer, idle and printing (target idle: < 2 % of
 *   one core). The simulator runs in a child process so its work is not counted.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { printerSchema } from '../gateway/src/config/schema.js';
import { Printer } from '../gateway/src/devices/printer/driver.js';
import { numbered } from '../gateway/src/devices/printer/line-protocol.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { hasSocat } from '../simulators/src/transports.js';
import { median, round, type BenchResult, type BenchSize } from './stats.js';

const cli = new URL('../bin/ovn-gateway.js', import.meta.url).pathname;
/** The job streamed (`layers` × `movesPerLayer` moves) `rounds` times, and how long the idle printer is watched. */
const SIZES = {
  full: { layers: 6, movesPerLayer: 1000, rounds: 3, idleS: 10 },
  tiny: { layers: 1, movesPerLayer: 40, rounds: 1, idleS: 1 },
} satisfies Record<BenchSize, object>;
/** Simulated seconds per real second: a 0.4 mm segment at 40 mm/s takes the planner 10 µs. */
const TIME_SCALE = 1000;
const PRINTCORE = '/usr/bin/printcore';

/** A dense curve, as slicers write round walls: `layers` circles of `movesPerLayer` segments, absolute E. */
function denseCurve(layers: number, movesPerLayer: number): string {
  const out = ['; dense curve', 'G28', 'G90', 'M82', 'G92 E0', 'G1 Z0.3 F3000'];
  const r = (movesPerLayer * 0.4) / (2 * Math.PI);
  for (let layer = 0; layer < layers; layer++) {
    out.push(`; LAYER ${layer}`, `G1 Z${(0.3 + layer * 0.2).toFixed(2)} F600`, `G1 X${(100 + r).toFixed(3)} Y100 F9000`, 'G92 E0');
    for (let m = 1; m <= movesPerLayer; m++) {
      const a = (2 * Math.PI * m) / movesPerLayer;
      out.push(`G1 X${(100 + r * Math.cos(a)).toFixed(3)} Y${(100 + r * Math.sin(a)).toFixed(3)} E${(m * 0.0133).toFixed(5)} F2400`);
    }
  }
  out.push('G91', 'G1 E-2 F2400', 'G1 Z10', 'G90', 'M84');
  return out.join('\n') + '\n';
}

/** Streams a file with Printrun's printcore library (Debian's printrun) and says how long the print took, seconds. */
const PRINTCORE_RUN = `
import sys, time
from printrun.printcore import printcore
from printrun import gcoder
port, path = sys.argv[1], sys.argv[2]
p = printcore(port, 115200)
t = time.time()
while not p.online:
    if time.time() - t > 30: sys.exit('printcore: the printer did not come online')
    time.sleep(0.01)
gcode = gcoder.LightGCode([l.strip() for l in open(path)])
t0 = time.perf_counter()
p.startprint(gcode)
while p.printing: time.sleep(0.002)
dt = time.perf_counter() - t0
try: p.disconnect()
except Exception: pass
print(dt)
`;

function printcoreSeconds(tty: string, file: string): Promise<number> {
  return new Promise((resolve, reject) =>
    execFile('/usr/bin/python3', ['-c', PRINTCORE_RUN, tty, file], { timeout: 600_000 }, (err, stdout, stderr) => {
      const s = Number(stdout.trim().split('\n').at(-1));
      if (err || !Number.isFinite(s)) reject(new Error(`printcore failed: ${err?.message ?? ''} ${stderr.slice(-300)}`));
      else resolve(s);
    }),
  );
}

/** The simulated printer in its own process, on a PTY, at the bench's time scale. */
async function simPrinter(tty: string, advancedOk: boolean): Promise<ChildProcess> {
  const sim = spawn(process.execPath, [cli, 'sim', 'printer', '--pty', tty, '--time-scale', String(TIME_SCALE), ...(advancedOk ? ['--advanced-ok'] : [])], { stdio: ['pipe', 'ignore', 'ignore'] });
  await until(() => existsSync(tty), 15_000, 'the simulated printer');
  return sim;
}

async function streamJob(printer: Printer, gcode: string, lines: number): Promise<number> {
  const t0 = performance.now();
  printer.startJob('bench.gcode', gcode);
  await until(() => printer.currentJob === null, 300_000, 'the job to finish');
  return lines / ((performance.now() - t0) / 1000);
}

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
  const gcode = denseCurve(layers, movesPerLayer);
  const jobLines = gcode.split('\n').filter((l) => l.trim() && !l.trim().startsWith(';'));
  const file = join(dir, 'bench.gcode');
  writeFileSync(file, gcode);

  // The simulated printer in its own process, on a PTY: one without ADVANCED_OK, one with, and
  // one with for printcore (a port has one host at a time).
  const [tty, ttyAdv, ttyPeer] = ['ttyPRINTER', 'ttyADVOK', 'ttyPEER'].map((n) => join(dir, n)) as [string, string, string];
  const sims = [await simPrinter(tty, false), await simPrinter(ttyAdv, true)];
  const peer = existsSync(PRINTCORE);
  if (peer) sims.push(await simPrinter(ttyPeer, true));
  const floors: number[] = [];
  const rates: number[] = [];
  const advRates: number[] = [];
  const peerRates: number[] = [];
  const cpus: number[] = [];
  let inFlight = 0;
  let idleCpu = 0;
  try {
    const journal = Journal.open(join(dir, 'data'));
    const log = createLogger({ level: 'error', format: 'json' });
    const printer = new Printer(printerSchema.parse({ id: 'bench', kind: 'printer', serial: { path: tty } }), journal, log, { checkpointMs: 5000, gcodeDir: join(dir, 'gcode') });
    const advanced = new Printer(printerSchema.parse({ id: 'bench-adv', kind: 'printer', serial: { path: ttyAdv } }), journal, log, { checkpointMs: 5000, gcodeDir: join(dir, 'gcode-adv') });
    printer.start();
    await until(() => printer.state === 'idle', 15_000, 'the printer to connect');

    idleCpu = await cpuPercent(() => new Promise((r) => setTimeout(r, idleS * 1000)));
    advanced.start();
    await until(() => advanced.state === 'idle', 15_000, 'the printer with ADVANCED_OK to connect');

    // Floor and streaming alternate, round after round, so that drift in the machine's load
    // hits both; the medians are compared.
    for (let round = 0; round < rounds; round++) {
      floors.push(await rawLineOk(dir, jobLines));
      cpus.push(
        await cpuPercent(async () => {
          rates.push(await streamJob(printer, gcode, jobLines.length));
        }),
      );
      advRates.push(await streamJob(advanced, gcode, jobLines.length));
      inFlight = (advanced.health().detail.protocol as { maxInFlight: number }).maxInFlight;
      if (peer) peerRates.push(jobLines.length / (await printcoreSeconds(ttyPeer, file)));
    }
    await printer.stop();
    await advanced.stop();
    journal.close();
  } finally {
    // a failed run leaves no simulator behind
    for (const sim of sims) sim.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }

  const [floor, rate, adv] = [median(floors), median(rates), median(advRates)];
  const printcore: BenchResult[] = peer
    ? [
        {
          bench: 'printer-printcore',
          path: `Printrun's printcore (Debian printrun, Python) streaming the same file to the same simulated printer (ADVANCED_OK, --time-scale ${TIME_SCALE}); median of ${rounds}`,
          lines: jobLines.length,
          linesPerSec: Math.round(median(peerRates)),
          advancedOkLead: round(adv / median(peerRates), 2),
        },
      ]
    : [];
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
    {
      bench: 'printer-streaming-advanced-ok',
      path: `Printer.startJob → LineProtocol, up to ${inFlight} lines in flight within the free slots each ok reports and 127 bytes → PTY → simulated Marlin with ADVANCED_OK (child process, --time-scale ${TIME_SCALE}); median of ${rounds}, alternating with the floor`,
      lines: jobLines.length,
      linesPerSec: Math.round(adv),
      ofRawFloor: round(adv / floor, 2),
      target: '>= 1.5x the raw line→ok floor',
      pass: adv / floor >= 1.5,
      ...(!peer && { peer: "no printcore figure: Printrun's printcore is not installed (apt-get install printrun)" }),
    },
    ...printcore,
    { bench: 'printer-cpu-idle', path: `gateway process, one printer connected, auto-reports every 2 s, ${idleS} s`, cpuPercentOfOneCore: idleCpu, target: '< 2 % of one core', pass: idleCpu < 2 },
    { bench: 'printer-cpu-printing', path: 'gateway process (all threads) while streaming as fast as the printer acknowledges', cpuPercentOfOneCore: median(cpus) },
  ];
}
