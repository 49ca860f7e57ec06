/**
 * Klipper printers through Moonraker: the gateway's CPU with N printers connected and idle (the
 * simulated hosts in another process, each sending its temperatures every 250 ms as a real one
 * does), and the latency of an event from the host to the gateway: Klipper shuts down, the host
 * says so, and the gateway's printer is in `error` (its state event) and the dashboard's event
 * stream carries the alert (SSE, `/api/events`). The time starts just before the host sends.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { configSchema } from '../gateway/src/config/schema.js';
import type { MoonrakerPrinter } from '../gateway/src/devices/moonraker/driver.js';
import { startGateway, type RunningGateway } from '../gateway/src/gateway.js';
import { createToken } from '../gateway/src/http/tokens.js';
import { createLogger } from '../gateway/src/log.js';
import { percentile, round, type BenchResult, type BenchSize } from './stats.js';

const SIZES = {
  full: { printers: 20, idleS: 10, events: 200 },
  tiny: { printers: 2, idleS: 1, events: 4 },
} satisfies Record<BenchSize, object>;
const CPU_TARGET_PERCENT = 5;
const LATENCY_TARGET_MS = 100;
const ROOT = join(import.meta.dirname, '..');

class Hosts {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: Record<string, unknown>) => void>();

  private constructor(private readonly proc: ChildProcess) {
    proc.on('message', (m: Record<string, unknown>) => {
      const w = this.waiting.get(m.id as number);
      this.waiting.delete(m.id as number);
      w?.(m);
    });
  }

  static async start(): Promise<Hosts> {
    const proc = fork(join(ROOT, 'bench', 'moonraker-child.ts'), [], { cwd: ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      proc.once('message', () => resolve());
      proc.once('exit', (code) => reject(new Error(`the benchmark's hosts exited (${code}) before they were ready`)));
    });
    return new Hosts(proc);
  }

  async ask<T = Record<string, unknown>>(req: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    const m = await new Promise<Record<string, unknown>>((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.send({ ...req, id });
    });
    if (m.error) throw new Error(String(m.error));
    return m as T;
  }

  async exit(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.send({ cmd: 'exit', id: 0 });
    await gone;
  }
}

/** The dashboard's event stream: the wall-clock time each alert arrived, by its text. */
function eventStream(url: string, token: string): { alerts: Map<string, number>; close: () => void } {
  const alerts = new Map<string, number>();
  const req = request(`${url}/api/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const at = performance.timeOrigin + performance.now();
      buf += chunk;
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        if (!block.startsWith('event: alert')) continue;
        const data = JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { text: string };
        const m = /bench shutdown #(\d+)/.exec(data.text);
        if (m && !alerts.has(m[1]!)) alerts.set(m[1]!, at);
      }
    });
  });
  req.on('error', () => {});
  req.end();
  return { alerts, close: () => req.destroy() };
}

export async function benchMoonraker(sizeName: BenchSize = 'full'): Promise<BenchResult[]> {
  const size = SIZES[sizeName];
  const hosts = await Hosts.start();
  let gw: RunningGateway | null = null;
  let stream: ReturnType<typeof eventStream> | null = null;
  try {
    const { urls } = await hosts.ask<{ urls: string[] }>({ cmd: 'start', n: size.printers });
    const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-moonraker-'));
    const config = configSchema.parse({
      gateway: { dataDir: join(dir, 'data') },
      devices: urls.map((url, i) => ({ id: `k${i}`, kind: 'moonraker-printer', url, reconnect: { initialMs: 100, maxMs: 1000 } })),
    });
    const quiet = new Writable({ write: (_c, _e, done) => done() });
    gw = await startGateway({ config, file: join(dir, 'config.yaml'), baseDir: dir }, { httpPort: 0, logger: createLogger({ level: 'warn', format: 'json' }, quiet) });
    const printers = urls.map((_, i) => gw!.devices.get(`k${i}`) as MoonrakerPrinter);
    const deadline = Date.now() + 20_000;
    while (!printers.every((p) => p.state === 'idle')) {
      if (Date.now() > deadline) throw new Error('the printers did not all come online');
      await new Promise((r) => setTimeout(r, 50));
    }

    // ---- idle CPU ----
    const updates0 = printers.reduce((a, p) => a + (p.health().detail.link as { statusUpdates: number }).statusUpdates, 0);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, size.idleS * 1000));
    const cpu = process.cpuUsage(cpu0);
    const elapsedS = (performance.now() - t0) / 1000;
    const updates = printers.reduce((a, p) => a + (p.health().detail.link as { statusUpdates: number }).statusUpdates, 0) - updates0;
    const cpuPercent = round(((cpu.user + cpu.system) / 1e6 / elapsedS) * 100, 2);

    // ---- host → gateway → dashboard ----
    const { token } = createToken(gw.journal, { role: 'admin', name: 'bench' });
    stream = eventStream(gw.url, token);
    await new Promise((r) => setTimeout(r, 300));
    const toState: number[] = [];
    const toSse: number[] = [];
    for (let k = 0; k < size.events; k++) {
      const i = k % printers.length;
      const p = printers[i]!;
      if (p.state !== 'idle') await until(() => p.state === 'idle', 10_000);
      const inError = new Promise<number>((resolve) => {
        const on = (s: string) => {
          if (s !== 'error') return;
          p.off('state', on);
          resolve(performance.timeOrigin + performance.now());
        };
        p.on('state', on);
      });
      const { at } = await hosts.ask<{ at: number }>({ cmd: 'shutdown', i, text: `bench shutdown #${k}` });
      toState.push((await inError) - at);
      await until(() => stream!.alerts.has(String(k)), 5000);
      toSse.push(stream.alerts.get(String(k))! - at);
      await hosts.ask({ cmd: 'restart', i });
    }
    const p99 = (xs: number[]) => round(percentile([...xs].sort((a, b) => a - b), 99), 1);
    const p50 = (xs: number[]) => round(percentile([...xs].sort((a, b) => a - b), 50), 1);
    return [
      {
        bench: `moonraker-idle-cpu (${size.printers} printers)`,
        cpuPercentOfOneCore: cpuPercent,
        statusUpdatesPerSec: round(updates / elapsedS, 1),
        windowS: round(elapsedS, 1),
        target: `< ${CPU_TARGET_PERCENT} % of one core for 20`,
        pass: cpuPercent < CPU_TARGET_PERCENT,
      },
      { bench: 'moonraker-event-to-state', ms: p99(toState), p50Ms: p50(toState), n: toState.length, target: `p99 < ${LATENCY_TARGET_MS} ms`, pass: p99(toState) < LATENCY_TARGET_MS },
      { bench: 'moonraker-event-to-sse', ms: p99(toSse), p50Ms: p50(toSse), n: toSse.length, target: `p99 < ${LATENCY_TARGET_MS} ms`, pass: p99(toSse) < LATENCY_TARGET_MS },
    ];
  } finally {
    stream?.close();
    await gw?.stop();
    await hosts.exit();
  }
}

async function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('the benchmark waited in vain');
    await new Promise((r) => setTimeout(r, 2));
  }
}
