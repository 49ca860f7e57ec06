/**
 * /metrics scraped by a real Prometheus (Debian's `prometheus`): the series per device and per
 * tool read back through Prometheus' HTTP API, with labels that never name an affiliate.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { MoonrakerSim } from '../simulators/src/moonraker/moonraker-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { freePort, SIM_CLOCK_RATE, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const hasPrometheus = spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;

/** The labels a series of ours may carry: bounded by the config, never a person. */
const ALLOWED_LABELS = new Set(['__name__', 'instance', 'job', 'device', 'kind', 'tool', 'use_type', 'material', 'fund', 'currency', 'heater', 'reason', 'state', 'method', 'route', 'status', 'le', 'quantile', 'version', 'major', 'minor', 'patch', 'space', 'type', 'kind']);

describe.skipIf(!hasPrometheus && process.env.CI !== 'true')('Prometheus scraping the gateway', () => {
  let gw: TestGateway;
  let prom: ChildProcess | null = null;
  let promUrl = '';
  const sims: MeteringNodeSim[] = [];
  const transports: SimTransport[] = [];
  let moonraker: MoonrakerSim;

  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    expect(body.status).toBe('success');
    return body.data.result;
  };
  const value = async (q: string): Promise<number | null> => {
    const r = await query(q);
    return r.length === 1 ? Number(r[0]!.value[1]) : null;
  };

  beforeAll(async () => {
    for (const id of ['n1', 'n2']) {
      const sim = new MeteringNodeSim({ nodeId: id, heartbeatS: 1, meterIntervalMs: 100, powerW: 300, timeScale: 60 });
      sims.push(sim);
      transports.push(await serveTcp(sim, '127.0.0.1', 0));
    }
    moonraker = await MoonrakerSim.start();
    gw = await startTestGateway({
      gateway: { http: { metricsPublic: true } },
      devices: [
        { id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transports[0]!.address } },
        { id: 'n2', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transports[1]!.address } },
        { id: 'voron', kind: 'moonraker-printer', url: moonraker.url, reconnect: { initialMs: 50, maxMs: 300 }, requestTimeoutMs: 2000 },
      ],
      tools: [
        { id: 'laser', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 },
        { id: 'printer', node: 'n2', printer: 'voron', idleTimeoutMin: 60, warnBeforeOffS: 0 },
      ],
      affiliates: [{ id: 'ada', name: 'Ada Lovelace', badges: ['04A1B2C3'], qualifications: [{ tool: 'laser' }, { tool: 'printer' }] }],
      billing: { currency: 'CAD', tools: { laser: { tariffs: { commercial: { hourlyRate: '12.00' } } } } },
    });
    await waitFor(async () => (await gw.health()).devices.every((d) => d.state === 'online'), 15_000);
    // one charged session at the laser
    sims[0]!.badge('04A1B2C3');
    await waitFor(() => gw.journal.events({ kind: 'session.started' }).length === 1);
    await new Promise((r) => setTimeout(r, 500));
    sims[0]!.badge('04A1B2C3');
    await waitFor(() => gw.journal.events({ kind: 'billing.charge' }).length === 1);

    const dir = tempDir('prometheus');
    const port = await freePort();
    const target = new URL(gw.url).host;
    writeFileSync(join(dir, 'prometheus.yml'), ['global:', '  scrape_interval: 1s', 'scrape_configs:', '  - job_name: ovn-gateway', '    metrics_path: /metrics', '    static_configs:', `      - targets: ['${target}']`, ''].join('\n'));
    prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: 'ignore' });
    promUrl = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.ok, 20_000, 'prometheus ready');
    await waitFor(async () => (await value('up{job="ovn-gateway"}')) === 1 && (await value('ovn_gateway_sessions_total{tool="laser"}')) === 1, 20_000, 'the gateway scraped');
  }, 60_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = once(prom, 'exit');
      prom.kill('SIGTERM');
      await exited;
    }
    await gw?.stop();
    for (const t of transports) await t.close();
    await moonraker?.close();
  });

  it('reads back online and faults per device', async () => {
    for (const device of ['n1', 'n2', 'voron']) expect(await value(`ovn_gateway_device_up{device="${device}"}`), device).toBe(1);
    expect((await query('ovn_gateway_device_up{kind="moonraker-printer"}')).length).toBe(1);
    expect(await value('sum(ovn_gateway_device_fault)')).toBe(0);
  });

  it('reads back power, energy, relay switches and implausible readings per device', async () => {
    expect(await value('ovn_gateway_power_watts{device="n1"}')).toBe(0); // the session has ended: the relay is off
    expect(await value('ovn_gateway_energy_joules_total{device="n1"}')).toBeGreaterThan(0);
    expect(await value('ovn_gateway_relay_switches_total{device="n1"}')).toBeGreaterThanOrEqual(2);
    expect(await value('ovn_gateway_meter_implausible_total{device="n1"}')).toBe(0);
  });

  it("reads back the printer's temperatures, job progress and filament per tool and material", async () => {
    expect(await value('ovn_gateway_printer_temperature_celsius{device="voron",heater="hotend"}')).toBeGreaterThan(0);
    expect(await value('ovn_gateway_printer_temperature_celsius{device="voron",heater="bed"}')).toBeGreaterThan(0);
    expect(await value('ovn_gateway_printer_temperature_target_celsius{device="voron",heater="hotend"}')).not.toBeNull();
    expect(await value('ovn_gateway_printer_job_progress_ratio{device="voron"}')).toBe(0);
    expect(await value('ovn_gateway_filament_grams_total{tool="printer",material="PLA"}')).toBe(0);
  });

  it('reads back sessions and charges per tool and use type, money per fund, tools in use', async () => {
    expect(await query('ovn_gateway_sessions_total')).toMatchObject([{ metric: { tool: 'laser', use_type: 'commercial' }, value: [expect.any(Number), '1'] }]);
    expect(await query('ovn_gateway_charges_total')).toMatchObject([{ metric: { tool: 'laser', use_type: 'commercial' }, value: [expect.any(Number), '1'] }]);
    const funds = await query('ovn_gateway_fund_charged');
    expect(funds.length).toBeGreaterThan(0);
    expect(funds.every((f) => f.metric.currency === 'CAD')).toBe(true);
    const charged = gw.journal.prepared('SELECT SUM(amount) FROM charge_parts').pluck().get() as number;
    expect(await value('sum(ovn_gateway_fund_charged)')).toBeCloseTo(charged / 100, 6);
    expect(await value('sum(ovn_gateway_tool_in_use)')).toBe(0);
    expect(await value('ovn_gateway_tool_available{tool="laser"}')).toBe(1);
  });

  it('labels no series by a person: every label of ours is one of a bounded few', async () => {
    const series = await query('{__name__=~"ovn_gateway_.+"}');
    expect(series.length).toBeGreaterThan(30);
    const labels = new Set(series.flatMap((s) => Object.keys(s.metric)));
    expect([...labels].filter((l) => !ALLOWED_LABELS.has(l))).toEqual([]);
    expect(JSON.stringify(series)).not.toMatch(/ada|04A1B2C3/i);
  });

  it("evaluates every query of the Grafana dashboard without error, the tools' and money's with data", async () => {
    const dash = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'deploy', 'grafana', 'ovn-gateway.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const empty: string[] = [];
    for (const p of dash.panels) {
      let rows = 0;
      for (const t of p.targets ?? []) {
        const expr = t.expr.replaceAll('$instance', '.*');
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
        const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
        expect(body.status, `${p.title}: ${expr}: ${body.error ?? ''}`).toBe('success');
        rows += body.data!.result.length;
      }
      if (p.targets && rows === 0) empty.push(p.title);
    }
    for (const title of ['Tools in use', 'Devices online', 'Power, by device', 'Money charged, by fund', 'Ledger backlog', 'Printer temperatures']) expect(empty, title).not.toContain(title);
  });
});
