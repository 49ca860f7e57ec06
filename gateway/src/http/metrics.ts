/**
 * `/metrics` in the Prometheus text format (prom-client), for the monitoring a lab already
 * runs. Most figures are read from the parts when scraped; relay switches are counted as
 * they happen, and HTTP latency is observed per route. One registry per app, so two
 * gateways in one process (tests) do not share figures.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isToolSwitch, type RelayState } from '../devices/tool-io.js';
import type { AppContext } from './context.js';

export class Metrics {
  readonly registry = new Registry();
  private readonly http: Histogram<'method' | 'route' | 'status'>;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly outbox: Record<'backlog' | 'oldestAgeS' | 'deadLetters', Gauge>;

  constructor(
    private readonly ctx: AppContext,
    /** Open event streams (SSE clients). */
    streams: () => number,
  ) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'ovn_gateway_' });
    const devices = [...ctx.devices.values()];
    new Gauge({
      name: 'ovn_gateway_devices_online',
      help: 'Devices online, by kind',
      labelNames: ['kind'],
      registers: [r],
      collect() {
        this.reset();
        for (const d of devices) this.inc({ kind: d.kind }, d.health().state === 'online' ? 1 : 0);
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
    new Counter({ name: 'ovn_gateway_serial_errors_total', help: 'Serial link errors (failed opens, errors on an open link), by device', labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of devices) {
        const link = d.health().detail.link as { errors?: number } | undefined;
        if (typeof link?.errors === 'number') this.inc({ device: d.id }, link.errors);
      }
    } });
    new Counter({ name: 'ovn_gateway_meter_implausible_total', help: 'Meter readings with a counter set aside as physically implausible, since start, by device', labelNames: ['device'], registers: [r], collect() {
      this.reset();
      for (const d of devices) {
        const n = d.health().detail.implausibleReadings;
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
    const ledger = this.ctx.ledger?.health();
    this.outbox.backlog.set(ledger?.backlog ?? 0);
    this.outbox.oldestAgeS.set(ledger?.oldestPendingAgeS ?? 0);
    this.outbox.deadLetters.set(ledger?.deadLetters ?? 0);
    return this.registry.metrics();
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
