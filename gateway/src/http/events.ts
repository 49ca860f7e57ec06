/**
 * Live updates as Server-Sent Events on `/api/events`: `tool` (a tool view, on change),
 * `session` (a running session's meters and cost every TICK_MS, once with `ended: true` and
 * the final charge), `device` (on a change of state) and `alert` (device lost or silent,
 * faults, meter readings set aside as implausible, a print job's material to check, ledger
 * alarms). Fed by the journal's events and a short timer; affiliates receive only their own
 * sessions. Clients are bounded, and one that stops reading is dropped rather than buffered.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { JournalEvent } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { AppContext } from './context.js';
import type { SessionUsage } from '../sessions/usage.js';
import { HttpError } from './errors.js';
import { chargeCost, liveSession, toolState, toolView } from './views.js';

export const TICK_MS = 2000;
export const MAX_CLIENTS = 50;
/** Streams one token, and one affiliate with all their tokens, may hold at once (a few tabs and a phone). */
export const MAX_PER_TOKEN = 4;
/** Streams kept for staff roles: affiliates together never hold more than MAX_CLIENTS minus this. */
export const STAFF_SHARE = 10;
/** Unsent bytes after which a client that does not read is dropped. */
const MAX_BUFFERED = 1024 * 1024;
const PING_EVERY_TICKS = 8;

interface Client {
  res: ServerResponse;
  tokenId: string | null;
  /** An affiliate token's affiliate: only their sessions. */
  affiliate: string | null;
}

export interface Alert {
  level: 'warning' | 'error';
  text: string;
  at: string;
  toolId?: string;
  deviceId?: string;
}

export class EventHub {
  private readonly clients = new Set<Client>();
  private readonly toolState = new Map<string, string>();
  private readonly deviceState = new Map<string, string>();
  private ledgerAlarm: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;
  private stopped = false;
  private unlisten: (() => void) | null = null;

  constructor(
    private readonly ctx: AppContext,
    private readonly log: Logger,
    private readonly maxClients = MAX_CLIENTS,
  ) {}

  start(): void {
    // Called once the event's transaction has committed (a rolled-back close is never announced).
    this.unlisten = this.ctx.journal.afterCommit((e) => {
      if (!this.stopped && this.clients.size > 0) setImmediate(() => this.onEvent(e));
    });
    for (const t of this.ctx.tools.values()) this.toolState.set(t.cfg.id, this.toolKey(t.cfg.id));
    for (const d of this.ctx.devices.values()) this.deviceState.set(d.id, d.health().state);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes over the request's socket for the event stream. */
  connect(req: FastifyRequest, reply: FastifyReply): void {
    const client: Client = { res: reply.raw, tokenId: req.auth?.id ?? null, affiliate: req.auth?.role === 'affiliate' ? req.auth.affiliateId : null };
    this.admit(client);
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    reply.raw.write('retry: 3000\n\n');
    this.clients.add(client);
    req.raw.socket.setTimeout(0);
    const drop = () => this.clients.delete(client);
    req.raw.on('close', drop);
    reply.raw.on('close', drop);
    // What there is now, so a page has everything at once.
    for (const t of this.ctx.tools.values()) this.send(client, 'tool', toolView(this.ctx, t, client.affiliate));
    for (const d of this.ctx.devices.values()) this.send(client, 'device', this.deviceView(d.id));
  }

  /** Refuses a stream past the limits: per token, per affiliate, affiliates together, everyone. */
  private admit(client: Client): void {
    const refuse = (status: number, message: string) => new HttpError(status, 'too-many-clients', `${message}; close another tab or try again later`, { 'retry-after': '10' });
    let ofToken = 0;
    let ofAffiliate = 0;
    let affiliates = 0;
    for (const c of this.clients) {
      if (c.tokenId === client.tokenId) ofToken++;
      if (c.affiliate !== null) affiliates++;
      if (client.affiliate !== null && c.affiliate === client.affiliate) ofAffiliate++;
    }
    if (ofToken >= MAX_PER_TOKEN) throw refuse(429, `this token already holds ${MAX_PER_TOKEN} event streams, the most one token may`);
    if (ofAffiliate >= MAX_PER_TOKEN) throw refuse(429, `affiliate ${client.affiliate} already holds ${MAX_PER_TOKEN} event streams, the most one affiliate may`);
    if (client.affiliate !== null && affiliates >= this.maxClients - STAFF_SHARE) throw refuse(503, `affiliates hold ${affiliates} event streams, the most they may together (the rest is kept for staff)`);
    if (this.clients.size >= this.maxClients) throw refuse(503, `the gateway serves ${this.maxClients} event streams at most`);
  }

  stop(): void {
    this.stopped = true;
    this.unlisten?.();
    if (this.timer) clearInterval(this.timer);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private send(c: Client, event: string, data: unknown): void {
    if (c.res.writableLength > MAX_BUFFERED) {
      this.log.warn('an event stream client does not read; dropped');
      c.res.destroy();
      this.clients.delete(c);
      return;
    }
    c.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private sendSession(affiliateId: string, data: unknown): void {
    for (const c of this.clients) if (c.affiliate === null || c.affiliate === affiliateId) this.send(c, 'session', data);
  }

  private sendTool(toolId: string): void {
    const t = this.ctx.tools.get(toolId);
    if (!t) return;
    this.toolState.set(toolId, this.toolKey(toolId));
    // one view per kind of viewer: everyone but affiliates sees the same
    const views = new Map<string | null, ReturnType<typeof toolView>>();
    for (const c of this.clients) {
      if (!views.has(c.affiliate)) views.set(c.affiliate, toolView(this.ctx, t, c.affiliate));
      this.send(c, 'tool', views.get(c.affiliate));
    }
  }

  private alert(a: Omit<Alert, 'at'>): void {
    for (const c of this.clients) this.send(c, 'alert', { ...a, at: new Date().toISOString() });
  }

  private deviceView(id: string) {
    const h = this.ctx.devices.get(id)!.health();
    return { id: h.id, kind: h.kind, name: h.name, state: h.state, lastSeen: h.lastSeen, since: h.since };
  }

  /** What a tool event reports, without the meters (those come as session events). */
  private toolKey(toolId: string): string {
    const s = toolState(this.ctx, this.ctx.tools.get(toolId)!);
    return JSON.stringify([s.status, s.statusReason, s.online, s.relayOn, s.busy, s.inUse]);
  }

  private onEvent(e: JournalEvent): void {
    if (this.stopped) return;
    const id = e.deviceId;
    switch (e.kind) {
      case 'session.started':
      case 'session.use-type': {
        const u = id ? this.ctx.tools.get(id)?.current() : null;
        if (u) this.sendSession(u.affiliateId, liveSession(this.ctx.billing, u));
        if (id) this.sendTool(id);
        break;
      }
      case 'session.ended': {
        const d = e.data as Pick<SessionUsage, 'sessionId' | 'toolId' | 'affiliateId' | 'useType' | 'startedAt' | 'durationS' | 'activeS' | 'energyWh' | 'filamentG' | 'material'>;
        const ended = { sessionId: d.sessionId, toolId: d.toolId, affiliateId: d.affiliateId, useType: d.useType, startedAt: d.startedAt, elapsedS: d.durationS, activeS: d.activeS, energyWh: d.energyWh, filamentG: d.filamentG, material: d.material ?? null };
        this.sendSession(d.affiliateId, { ...ended, ended: true, endedAt: e.data.endedAt ?? null, reason: e.data.reason ?? null, cost: chargeCost(this.ctx.journal, this.ctx.billing, d.sessionId) });
        if (id) this.sendTool(id);
        break;
      }
      case 'tool.status':
        if (id) this.sendTool(id);
        break;
      case 'device.lost':
        if (id) this.alert({ level: 'warning', text: `${id}: lost (${String(e.data.reason ?? 'no answer')})`, deviceId: id });
        break;
      case 'device.unresponsive':
        if (id) this.alert({ level: 'warning', text: `${id}: not answering (silent for ${Math.round(Number(e.data.silentMs) / 1000)} s)`, deviceId: id });
        break;
      case 'device.fault':
        // a node's fault below severity 2 is a warning; a printer's fault is always a halt
        if (id) this.alert({ level: typeof e.data.severity === 'number' && e.data.severity < 2 ? 'warning' : 'error', text: `${id}: ${String(e.data.text ?? e.data.code ?? 'fault')}`, deviceId: id });
        break;
      case 'printer.material-flagged':
        if (id) this.alert({ level: 'warning', text: `${id}: ${String(e.data.file)}: material to check (${String(e.data.source)}): ${String(e.data.text)}`, deviceId: id });
        break;
      case 'meter.implausible':
        // journaled at most once a minute a device, so the alerts are too
        if (id) this.alert({ level: 'warning', text: `${id}: ${String(e.data.text)}`, deviceId: id });
        break;
    }
  }

  private tick(): void {
    if (this.clients.size === 0) return;
    for (const t of this.ctx.tools.values()) {
      const u = t.current();
      if (u) this.sendSession(u.affiliateId, liveSession(this.ctx.billing, u));
      if (this.toolKey(t.cfg.id) !== this.toolState.get(t.cfg.id)) this.sendTool(t.cfg.id);
    }
    for (const d of this.ctx.devices.values()) {
      const state = d.health().state;
      if (state === this.deviceState.get(d.id)) continue;
      this.deviceState.set(d.id, state);
      for (const c of this.clients) this.send(c, 'device', this.deviceView(d.id));
    }
    const alarm = this.ctx.ledger?.health().alarm ?? null;
    if (alarm !== this.ledgerAlarm) {
      this.ledgerAlarm = alarm;
      if (alarm) this.alert({ level: 'warning', text: `ledger: ${alarm}` });
    }
    if (++this.ticks % PING_EVERY_TICKS === 0) for (const c of this.clients) c.res.write(': ping\n\n');
  }
}
