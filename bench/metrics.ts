/**
 * A `/metrics` scrape of a large lab: 50 tools and 200 devices (190 networked instruments on
 * the embedded broker, each played by a simulated rig reporting telemetry, and 10 Klipper
 * printers followed through simulated Moonraker hosts), scraped over HTTP as Prometheus does.
 * The simulators run in a process of their own (`ovn-gateway sim lab`), as the devices of a
 * real lab are elsewhere: the gateway's process does only the gateway's work. Reports the
 * scrape's latency (target p99 < 20 ms) and its size (< 200 KB).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../gateway/src/config/load.js';
import { startGateway } from '../gateway/src/gateway.js';
import { percentile, round, type BenchResult, type BenchSize } from './stats.js';

const SIZES = {
  full: { tools: 50, instruments: 190, printers: 10, warmup: 20, scrapes: 200 },
  tiny: { tools: 4, instruments: 6, printers: 2, warmup: 2, scrapes: 5 },
} satisfies Record<BenchSize, object>;
const TARGET_MS = 20;
const TARGET_KB = 200;
const CLI = fileURLToPath(new URL('../bin/ovn-gateway.js', import.meta.url));

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  return port;
}

export async function benchMetrics(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const n = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-metrics-'));
  const instrument = (i: number) => `i${String(i).padStart(3, '0')}`;
  const hosts = await Promise.all(Array.from({ length: n.printers }, async () => `127.0.0.1:${await freePort()}`));
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      gateway: { dataDir: './data', http: { port: 0, metricsPublic: true }, log: { level: 'error', format: 'json' } },
      // every rig connects from loopback: the per-address limit would hold most of them back
      mqtt: { listen: `127.0.0.1:${await freePort()}`, baseTopic: 'ovn/bench', connectionsPerMinute: 10_000 },
      devices: [...Array.from({ length: n.instruments }, (_, i) => ({ id: instrument(i), kind: 'mqtt-instrument' })), ...hosts.map((h, i) => ({ id: `p${i}`, kind: 'moonraker-printer', url: `http://${h}` }))],
      simulators: [...Array.from({ length: n.instruments }, (_, i) => ({ kind: 'rig', device: instrument(i) })), ...hosts.map((listen) => ({ kind: 'moonraker', listen }))],
      tools: Array.from({ length: n.tools }, (_, i) => ({ id: `tool-${i}`, switch: instrument(i), meter: instrument(i), ...(i < n.printers ? { printer: `p${i}` } : {}) })),
    }),
  );
  // the simulators first: `sim lab` makes the rigs' credentials in the journal the gateway then opens
  const sims = spawn(process.execPath, [CLI, 'sim', 'lab', '--config', file], { stdio: ['pipe', 'ignore', 'pipe'] });
  const stopSims = async () => {
    if (sims.exitCode !== null || sims.signalCode !== null) return;
    const exited = once(sims, 'exit');
    sims.kill('SIGTERM');
    await exited;
  };
  let said = '';
  const ready = new Promise<void>((resolve, reject) => {
    sims.stderr.on('data', (b: Buffer) => {
      said += b.toString();
      if (said.includes('simulated lab:')) resolve();
    });
    sims.once('exit', (code) => reject(new Error(`sim lab exited (${String(code)}): ${said}`)));
  });
  let gw: Awaited<ReturnType<typeof startGateway>>;
  try {
    await ready;
    gw = await startGateway(loadConfig(file), { logger: pino({ level: 'silent' }) });
  } catch (err) {
    await stopSims();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  try {
    const devices = [...gw.devices.values()];
    const deadline = Date.now() + 60_000;
    while (devices.some((d) => d.health().state !== 'online') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const online = devices.filter((d) => d.health().state === 'online').length;
    const scrape = async () => {
      const t0 = performance.now();
      const res = await fetch(`${gw.url}/metrics`);
      const body = await res.text();
      if (!res.ok) throw new Error(`/metrics: HTTP ${res.status}`);
      return { ms: performance.now() - t0, bytes: Buffer.byteLength(body), series: body.split('\n').filter((l) => l && !l.startsWith('#')).length };
    };
    for (let i = 0; i < n.warmup; i++) await scrape();
    // the gateway's own work on the devices' messages, without scrapes: subtracted below
    const idle0 = process.cpuUsage();
    const idleWall0 = performance.now();
    await new Promise((r) => setTimeout(r, size === 'full' ? 3000 : 200));
    const idleCpu = process.cpuUsage(idle0);
    const idleMsPerMs = (idleCpu.user + idleCpu.system) / 1000 / (performance.now() - idleWall0);
    const samples: { ms: number; bytes: number; series: number }[] = [];
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < n.scrapes; i++) samples.push(await scrape());
    const cpu = process.cpuUsage(cpu0);
    // this process's CPU over the scrapes (the gateway's own work meanwhile and the client's included), per scrape
    const cpuMsPerScrape = round((cpu.user + cpu.system) / 1000 / n.scrapes, 2);
    const wall = performance.now() - wall0;
    const busyPercent = round(((cpu.user + cpu.system) / 1000 / wall) * 100);
    // the scrape's own CPU: this process's less what it spent on the devices while idle, at the same rate
    const scrapeCpuMs = round(((cpu.user + cpu.system) / 1000 - idleMsPerMs * wall) / n.scrapes, 2);
    const idlePercent = round(idleMsPerMs * 100);
    const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
    const p99 = percentile(ms, 99);
    const kb = Math.max(...samples.map((s) => s.bytes)) / 1024;
    const shape = { cpuMsPerScrape, scrapeCpuMs, busyPercent, idlePercent, tools: n.tools, devices: devices.length, devicesOnline: online, series: samples.at(-1)!.series, scrapes: n.scrapes };
    return [
      { bench: 'metrics-scrape', target: `p99 < ${TARGET_MS} ms`, pass: p99 < TARGET_MS, p50Us: round(percentile(ms, 50) * 1000), p99Us: round(p99 * 1000), ...shape },
      { bench: 'metrics-size', target: `< ${TARGET_KB} KB`, pass: kb < TARGET_KB, kb: round(kb), ...shape },
    ];
  } finally {
    await gw.stop();
    await stopSims();
    rmSync(dir, { recursive: true, force: true });
  }
}
