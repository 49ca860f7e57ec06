/**
 * `/metrics` in the Prometheus text format (prom-client), for the monitoring a lab already
 * runs. Most figures are read from the parts when scraped (each device's health once per
 * scrape); relay switches are counted as they happen, sessions, charges and money per fund
 * from the journal's new rows at each scrape, and HTTP latency is observed per route. One
 * registry per app, so two gateways in one process (tests) do not share figures.
 *
 * Labels are few and bounded by the config: device, kind, tool, use type, material, fund,
 * heater. Never an affiliate: who uses a tool is for the journal, not for a time series.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DeviceHealth } from '../devices/device.js';
import { isToolSwitch, type RelayState, type ToolMeter, type ToolPrinter } from '../devices/tool-io.js';
import type { AppContext } from './context.js';
import { toolDevices } from './tool-figures.js';

/** Sessions, charges and money per fund, counted from the journal's rows past a watermark (each row once). */
class JournalTotals {
  readonly sessions = new Map<string, { tool: string; useType: string; n: number }>();
  readonly charges = new Map<string, { tool: string; useType: string; n: number }>();
  /** Minor units per fund (account), corrections included. */
  readonly funds = new Map<string, number>();
  private lastEvent = 0;
  private lastCharge = 0;

  constructor(private readonly ctx: AppContext) {}

  update(): void {
    const j = this.ctx.journal;
    const started = j
      .prepared("SELECT id, device_id AS tool, json_extract(data, '$.useType') AS useType FROM events WHERE kind = 'session.started' AND id > ? ORDER BY id")
      .all(this.lastEvent) as { id: number; tool: string | null; useType: string | null }[];
    for (const r of started) {
      this.lastEvent = r.id;
      bump(this.sessions, r.tool ?? 'unknown', r.useType ?? 'unknown', 1);
    }
    const charges = j.prepared("SELECT event_id AS id, kind, tool_id AS tool, use_type AS useType FROM charges WHERE event_id > ? ORDER BY event_id").all(this.lastCharge) as { id: number; kind: string; tool: string; useType: string }[];
    if (charges.length === 0) return;
    const from = this.lastCharge;
    for (const c of charges) if (c.kind === 'charge') bump(this.charges, c.tool, c.useType, 1);
    this.lastCharge = charges.at(-1)!.id;
    const parts = j.prepared('SELECT account, SUM(amount) AS amount FROM charge_parts WHERE event_id > ? AND event_id <= ? GROUP BY account').all(from, this.lastCharge) as { account: string; amount: number }[];
    for (const p of parts) this.funds.set(p.account, (this.funds.get(p.account) ?? 0) + p.amount);
  }
}

function bump(m: Map<string, { tool: string; useType: string; n: number }>, tool: string, useType: string, n: number): void {
  const key = `${tool}\u0000${useType}`;
  const row = m.get(key);
  if (row) row.n += n;
  else m.set(key, { tool, useType, n });
}

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

export class Metrics {
  readonly registry = new Registry();
  private readonly http: Histogram<'method' | 'route' | 'status'>;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly outbox: Record<'backlog' | 'oldestAgeS' | 'deadLetters', Gauge>;
  /** Each device's health, read once at the start of a scrape. */
  private healths = new Map<string, DeviceHealth>();
  private readonly totals: JournalTotals;

  constructor(
    private readonly ctx: AppContext,
    /** Open event streams (SSE clients). */
    streams: () => number,
  ) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'ovn_gateway_' });
    const devices = [...ctx.devices.values()];
    const healths = () => this.healths;
    const health = (d: { id: string; health(): DeviceHealth }) => healths().get(d.id) ?? d.health();
    this.totals = new JournalTotals(ctx);
    const totals = this.totals;
    new Gauge({
      name: 'ovn_gateway_devices_online',
      help: 'Devices online, by kind',
      labelNames: ['kind'],
      registers: [r],
      collect() {
        this.reset();
        for (const d of devices) this.inc({ kind: d.kind }, health(d).state === 'online' ? 1 : 0);
      },
    });
    new Gauge({ name: 'ovn_gateway_devices', help: 'Devices configured, by kind', labelNames: ['kind'], registers: [r], collect() {
      this.reset();
      for (const d of devices) this.inc({ kind: d.kind });
    } });
    new Gauge({ name: 'ovn_gateway_sessions_active', help: 'Sessions open now', registers: [r], collect() {
      this.set([...ctx.tools.values()].filter((t) => t.current() !== null).length);
    } });
    const relays = new Counter({ name: 'ovn_gateway_relay_switches_total', help: 'Relay switches (on or off) seen since start, by device', labelNames: ['device'], registers: [r] });
    for (const d of devices) {
      if (!isToolSwitch(d)) continue;
      relays.inc({ device: d.id }, 0);
      let last: boolean | null = d.relayKnown ? d.relayState.requested : null;
      const onRelay = (s: RelayState) => {
        if (last !== null && s.requested !== last) relays.inc({ device: d.id });
        last = s.requested;
      };
      d.on('relay', onRelay);
      this.unsubscribe.push(() => d.off('relay', onRelay));
    }
    // ---- per device ----
    new Gauge({ name: 'ovn_gateway_device_up', help: 'Whether the device is online (1) or not (0: offline, unresponsive or in fault)', labelNames: ['device', 'kind'], registers: [r], collect() {
      this.reset();
      for (const d of devices) this.set({ device: d.id, kind: d.kind }, health(d).state === 'online' ? 1 : 0);
    } });
    new Gauge({ name: 'ovn_gateway_device_fault', help: 'Whether the device reports a fault (1) or not (0)', labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of devices) this.set({ device: d.id }, health(d).state === 'fault' ? 1 : 0);
    } });
    const meters = devices.filter((d): d is typeof d & ToolMeter => 'meterTotals' in d);
    new Gauge({ name: 'ovn_gateway_power_watts', help: 'Power the metered tool draws now, by device (absent until the meter reported it)', labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of meters) {
        const w = num(health(d).detail.powerW);
        if (w !== null) this.set({ device: d.id }, w);
      }
    } });
    new Counter({ name: 'ovn_gateway_energy_joules_total', help: "Energy the metered tool used, over every boot of the meter (the device's own counters), by device", labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of meters) this.inc({ device: d.id }, d.meterTotals.energyMwh * 3.6);
    } });
    const printers = devices.filter((d): d is typeof d & ToolPrinter => 'filamentCountersMm' in d);
    new Gauge({ name: 'ovn_gateway_printer_temperature_celsius', help: 'A printer heater\'s temperature now, by device and heater (hotend, bed, chamber, tool0…)', labelNames: ['device', 'heater'], registers: [r], collect() {
      this.reset();
      for (const d of printers) for (const [heater, t] of heaters(health(d).detail.temperatures)) this.set({ device: d.id, heater }, t.actual);
    } });
    new Gauge({ name: 'ovn_gateway_printer_temperature_target_celsius', help: "A printer heater's target temperature (0: off), by device and heater", labelNames: ['device', 'heater'], registers: [r], collect() {
      this.reset();
      for (const d of printers) for (const [heater, t] of heaters(health(d).detail.temperatures)) this.set({ device: d.id, heater }, t.target);
    } });
    new Gauge({ name: 'ovn_gateway_printer_job_progress_ratio', help: "The running print job's progress, 0–1, by device (0: no job)", labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of printers) {
        const job = health(d).detail.job as { state?: string; progress?: number } | null | undefined;
        this.set({ device: d.id }, job && (job.state === 'printing' || job.state === 'paused') ? (num(job.progress) ?? 0) : 0);
      }
    } });
    // ---- per tool ----
    const tools = [...ctx.tools.values()];
    new Gauge({ name: 'ovn_gateway_tool_in_use', help: 'Whether a session is open at the tool (1) or not (0)', labelNames: ['tool'], registers: [r], collect() {
      this.reset();
      for (const t of tools) this.set({ tool: t.cfg.id }, t.current() !== null ? 1 : 0);
    } });
    new Gauge({ name: 'ovn_gateway_tool_available', help: 'Whether the tool may be used (1) or is blocked or in maintenance (0)', labelNames: ['tool'], registers: [r], collect() {
      this.reset();
      for (const t of tools) this.set({ tool: t.cfg.id }, t.status().status === 'available' ? 1 : 0);
    } });
    new Counter({ name: 'ovn_gateway_filament_grams_total', help: "Filament the tool's printer metered since the gateway started, by tool and material", labelNames: ['tool', 'material'], registers: [r], collect() {
      this.reset();
      for (const t of tools) {
        const p = toolDevices(ctx, t).printer as (ToolPrinter & { health(): DeviceHealth }) | null;
        if (!p || !('filamentCountersMm' in p)) continue;
        const material = (health(p).detail.filament as { material?: unknown } | undefined)?.material;
        this.inc({ tool: t.cfg.id, material: typeof material === 'string' ? material : 'unknown' }, p.gramsOf(p.filamentCountersMm.reduce((a, b) => a + b, 0)));
      }
    } });
    new Counter({ name: 'ovn_gateway_sessions_total', help: 'Sessions started, by tool and use type (from the journal, since it began)', labelNames: ['tool', 'use_type'], registers: [r], collect() {
      this.reset();
      for (const row of totals.sessions.values()) this.inc({ tool: row.tool, use_type: row.useType }, row.n);
    } });
    new Counter({ name: 'ovn_gateway_charges_total', help: 'Sessions charged, by tool and use type (from the journal, since it began; corrections not counted)', labelNames: ['tool', 'use_type'], registers: [r], collect() {
      this.reset();
      for (const row of totals.charges.values()) this.inc({ tool: row.tool, use_type: row.useType }, row.n);
    } });
    const billing = ctx.billing;
    new Gauge({ name: 'ovn_gateway_fund_charged', help: 'Money charged to each fund (material, maintenance, infrastructure, co-owner, technician) since the journal began, corrections included, in major units of the currency', labelNames: ['fund', 'currency'], registers: [r], collect() {
      this.reset();
      if (!billing) return;
      for (const [fund, minor] of totals.funds) this.set({ fund, currency: billing.cfg.currency }, minor / 10 ** billing.cfg.minorUnit);
    } });
    new Counter({ name: 'ovn_gateway_serial_errors_total', help: 'Serial link errors (failed opens, errors on an open link), by device', labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of devices) {
        const link = health(d).detail.link as { errors?: number } | undefined;
        if (typeof link?.errors === 'number') this.inc({ device: d.id }, link.errors);
      }
    } });
    new Counter({ name: 'ovn_gateway_meter_implausible_total', help: 'Meter readings with a counter set aside as physically implausible, since start, by device', labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of devices) {
        const n = health(d).detail.implausibleReadings;
        if (typeof n === 'number') this.inc({ device: d.id }, n);
      }
    } });
    new Counter({ name: 'ovn_gateway_mqtt_errors_total', help: 'MQTT messages and connections refused by the embedded broker (by reason), and messages the upstream bridge dropped', labelNames: ['reason'], registers: [r], collect() {
      this.reset();
      for (const [reason, n] of Object.entries(ctx.broker?.health().rejected ?? {})) this.inc({ reason }, n);
      if (ctx.bridge) this.inc({ reason: 'bridge-dropped' }, ctx.bridge.health().dropped);
    } });
    // the outbox's three figures from one look at it (its health reads the outbox table), set in text()
    this.outbox = {
      backlog: new Gauge({ name: 'ovn_gateway_outbox_backlog', help: 'Records waiting for the ledger', registers: [r] }),
      oldestAgeS: new Gauge({ name: 'ovn_gateway_outbox_oldest_age_seconds', help: 'Age of the oldest record waiting for the ledger (0: none)', registers: [r] }),
      deadLetters: new Gauge({ name: 'ovn_gateway_outbox_dead_letters', help: 'Records the ledger refused, waiting for a person', registers: [r] }),
    };
    new Gauge({ name: 'ovn_gateway_notifications', help: 'Notifications to people, by state: pending (the backlog), held (for quiet hours), dead (dead letters); 0 without notifications', labelNames: ['state'], registers: [r], collect() {
      const h = ctx.notifier?.health();
      this.set({ state: 'pending' }, h?.backlog ?? 0);
      this.set({ state: 'held' }, h?.held ?? 0);
      this.set({ state: 'dead' }, h?.deadLetters ?? 0);
    } });
    new Gauge({ name: 'ovn_gateway_notifications_oldest_age_seconds', help: 'Age of the oldest notification waiting to be delivered (0: none)', registers: [r], collect() {
      this.set(ctx.notifier?.health().oldestPendingAgeS ?? 0);
    } });
    new Gauge({ name: 'ovn_gateway_event_streams', help: 'Open event streams (/api/events)', registers: [r], collect() {
      this.set(streams());
    } });
    this.http = new Histogram({
      name: 'ovn_gateway_http_request_duration_seconds',
      help: 'HTTP request latency, by route',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
  }

  /** The scrape: every figure as of now, in the Prometheus text format. */
  async text(): Promise<string> {
    this.healths = new Map([...this.ctx.devices.values()].map((d) => [d.id, d.health()]));
    this.totals.update();
    const ledger = this.ctx.ledger?.health();
    this.outbox.backlog.set(ledger?.backlog ?? 0);
    this.outbox.oldestAgeS.set(ledger?.oldestPendingAgeS ?? 0);
    this.outbox.deadLetters.set(ledger?.deadLetters ?? 0);
    try {
      return await this.registry.metrics();
    } finally {
      this.healths = new Map();
    }
  }

  /** For the onResponse hook. */
  observe(req: FastifyRequest, reply: FastifyReply): void {
    // the route pattern, not the URL: one series per route whatever the ids
    const route = req.routeOptions.url ?? 'unmatched';
    if (route === '/api/events') return; // a stream's duration is not a latency
    this.http.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }
}

/** A printer's heaters with a reading, named for a label. */
function heaters(x: unknown): [string, { actual: number; target: number }][] {
  const t = x as { hotend?: Heater; bed?: Heater; chamber?: Heater; tools?: Heater[] } | null | undefined;
  if (!t) return [];
  const out: [string, Heater | undefined][] = [['hotend', t.hotend], ['bed', t.bed], ['chamber', t.chamber], ...(t.tools ?? []).slice(0, 8).map((h, i): [string, Heater] => [`tool${i}`, h])];
  return out.filter((e): e is [string, Heater] => e[1] !== undefined && Number.isFinite(e[1].actual)).map(([k, h]) => [k, { actual: h.actual, target: Number.isFinite(h.target) ? h.target : 0 }]);
}

interface Heater {
  actual: number;
  target: number;
}
