/**
 * The upstream bridge: an MQTT client to the network's broker that reports this gateway's
 * state, its devices' availability, session events and health under a configured prefix.
 *
 *   <prefix>/gateway/state                 retained   online / offline (offline is also the last will)
 *   <prefix>/gateway/health                retained   health summary, every healthIntervalS
 *   <prefix>/gateway/dropped               no         how many events were dropped while disconnected, and since when
 *   <prefix>/devices/<id>/availability     retained   online / unresponsive / fault / offline, only when it changes
 *   <prefix>/sessions                      no         session and tool events from the journal
 *
 * Everything goes through one bounded queue, drained while connected. While disconnected,
 * a retained message replaces the queued one of its topic (only the latest state matters);
 * past the bound the oldest event is dropped, counted and reported on reconnection. Usage
 * itself is not lost: the ledger outbox, not MQTT, is its record.
 */
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Journal, JournalEvent } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { bridgeClientId, type BridgeConfig } from './bridge-config.js';

export interface BridgeSources {
  health: () => unknown;
  devices: () => { id: string; state: string }[];
}

export interface BridgeOptions {
  /** How often device availability is compared with what was last published. */
  pollMs?: number;
  /** Pause between reconnection attempts. */
  reconnectMs?: number;
}

export interface BridgeHealth {
  url: string;
  connected: boolean;
  /** Messages waiting for the connection. */
  queued: number;
  /** Events dropped since start because the queue was full. */
  dropped: number;
  lastError: string | null;
}

interface Outgoing {
  topic: string;
  payload: string;
  retain: boolean;
}

/** Journal kinds worth telling the network about, and the fields of each that travel. */
const EVENT_FIELDS: Record<string, readonly string[]> = {
  'session.started': ['affiliateId', 'useType'],
  'session.ended': ['affiliateId', 'reason', 'activeS', 'energyWh'],
  'tool.status': ['status', 'reason'],
  'tool.pooled': ['sessionId', 'multiplier'],
};

/** The small JSON of an event on `<prefix>/sessions`, or null for kinds that are not published. */
export function sessionMessage(e: JournalEvent): Record<string, unknown> | null {
  const fields = EVENT_FIELDS[e.kind];
  if (!fields) return null;
  const msg: Record<string, unknown> = { event: e.kind, tool: e.deviceId, at: e.at, journalId: e.id };
  for (const f of fields) if (e.data[f] !== undefined) msg[f] = e.data[f];
  return msg;
}

/**
 * A FIFO bounded by count. Retained messages are coalesced per topic; when full, the oldest
 * non-retained message goes first (state is cheaper to lose than nothing, but an event is
 * not coming again while a newer state is queued).
 */
export class BoundedQueue {
  private items: Outgoing[] = [];
  dropped = 0;
  droppedSince: Date | null = null;

  constructor(private readonly bound: number) {}

  get length(): number {
    return this.items.length;
  }

  push(m: Outgoing, now: Date): void {
    if (m.retain) this.items = this.items.filter((q) => !(q.retain && q.topic === m.topic));
    this.items.push(m);
    while (this.items.length > this.bound) {
      const i = this.items.findIndex((q) => !q.retain);
      this.items.splice(i >= 0 ? i : 0, 1);
      this.dropped++;
      this.droppedSince ??= now;
    }
  }

  shift(): Outgoing | undefined {
    return this.items.shift();
  }

  /** The drops since the last report, and forgets them. */
  takeDropped(): { dropped: number; since: Date } | null {
    if (this.dropped === 0 || !this.droppedSince) return null;
    const r = { dropped: this.dropped, since: this.droppedSince };
    this.dropped = 0;
    this.droppedSince = null;
    return r;
  }
}

export class UpstreamBridge {
  private client: MqttClient | null = null;
  private readonly queue: BoundedQueue;
  private readonly availability = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private droppedTotal = 0;
  private lastError: string | null = null;
  private flushScheduled = false;
  private stopped = false;
  private readonly topic: { state: string; health: string; dropped: string; sessions: string; availability: (id: string) => string };

  constructor(
    private readonly cfg: BridgeConfig,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly sources: BridgeSources,
    private readonly opts: BridgeOptions = {},
  ) {
    this.queue = new BoundedQueue(cfg.bufferMessages);
    const p = cfg.prefix;
    this.topic = {
      state: `${p}/gateway/state`,
      health: `${p}/gateway/health`,
      dropped: `${p}/gateway/dropped`,
      sessions: `${p}/sessions`,
      availability: (id) => `${p}/devices/${id}/availability`,
    };
  }

  start(): void {
    const options: IClientOptions = {
      clientId: bridgeClientId(this.cfg),
      clean: true,
      keepalive: 30,
      reconnectPeriod: this.opts.reconnectMs ?? 2000,
      connectTimeout: 10_000,
      // Offline messages are kept (and bounded) by the queue here, not by mqtt.js.
      queueQoSZero: false,
      will: { topic: this.topic.state, payload: Buffer.from('offline'), qos: 1, retain: true },
      ...(this.cfg.username !== undefined ? { username: this.cfg.username } : {}),
      ...(this.cfg.password !== undefined ? { password: this.cfg.password } : {}),
    };
    const client = connect(this.cfg.url, options);
    this.client = client;
    let wasConnected = false;
    client.on('connect', () => {
      wasConnected = true;
      this.lastError = null;
      this.log.info({ url: this.cfg.url, queued: this.queue.length }, `connected to the upstream broker ${this.cfg.url}`);
      this.onConnect(client);
    });
    client.on('close', () => {
      if (wasConnected && !this.stopped) this.log.warn({ url: this.cfg.url }, `lost the upstream broker ${this.cfg.url}; buffering up to ${this.cfg.bufferMessages} messages`);
      wasConnected = false;
    });
    client.on('error', (err) => {
      if (err.message !== this.lastError) this.log.warn({ err: err.message, url: this.cfg.url }, `upstream broker ${this.cfg.url}: ${err.message}`);
      this.lastError = err.message;
    });

    this.journal.afterCommit((e) => {
      // Once the event's transaction has committed: enqueue only, never throw back into the journal.
      if (this.stopped) return;
      try {
        const msg = sessionMessage(e);
        if (msg) this.send(this.topic.sessions, JSON.stringify(msg), false);
      } catch {
        // an event that cannot be serialised is not worth failing the journal for
      }
    });
    this.pollDevices();
    this.timers.push(setInterval(() => this.pollDevices(), this.opts.pollMs ?? 2000));
    this.publishHealth();
    this.timers.push(setInterval(() => this.publishHealth(), this.cfg.healthIntervalS * 1000));
  }

  health(): BridgeHealth {
    return { url: this.cfg.url, connected: this.client?.connected ?? false, queued: this.queue.length, dropped: this.droppedTotal, lastError: this.lastError };
  }

  /** Publishes `offline` itself (a clean DISCONNECT suppresses the will), then disconnects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      this.flush(client);
      await client.publishAsync(this.topic.state, 'offline', { qos: 1, retain: true }).catch((err: Error) => this.log.warn({ err: err.message }, 'offline state not published upstream'));
    }
    if (this.queue.length) this.log.warn({ queued: this.queue.length }, `${this.queue.length} messages for the upstream broker not delivered at stop`);
    await client.endAsync(!client.connected);
  }

  private send(topic: string, payload: string, retain: boolean): void {
    const before = this.queue.dropped;
    this.queue.push({ topic, payload, retain }, new Date());
    this.droppedTotal += this.queue.dropped - before;
    if (!this.flushScheduled && this.client?.connected) {
      // Not now: a journal tap must return at once.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (this.client) this.flush(this.client);
      });
    }
  }

  private onConnect(client: MqttClient): void {
    this.publish(client, { topic: this.topic.state, payload: 'online', retain: true });
    const lost = this.queue.takeDropped();
    if (lost) {
      const report = { dropped: lost.dropped, since: lost.since.toISOString(), at: new Date().toISOString() };
      this.log.warn(report, `dropped ${lost.dropped} messages for the upstream broker while disconnected (since ${report.since})`);
      this.publish(client, { topic: this.topic.dropped, payload: JSON.stringify(report), retain: false });
    }
    this.flush(client);
  }

  private flush(client: MqttClient): void {
    while (client.connected && this.queue.length) this.publish(client, this.queue.shift()!);
  }

  private publish(client: MqttClient, m: Outgoing): void {
    // QoS 1: what is handed over while connected is resent by mqtt.js if the connection drops before PUBACK.
    client.publish(m.topic, m.payload, { qos: 1, retain: m.retain }, (err) => {
      if (err && !this.stopped) this.log.debug({ err: err.message, topic: m.topic }, 'upstream publish failed');
    });
  }

  private pollDevices(): void {
    let devices: { id: string; state: string }[];
    try {
      devices = this.sources.devices();
    } catch (err) {
      this.log.warn({ err }, 'device availability not read for the upstream broker');
      return;
    }
    for (const d of devices) {
      if (this.availability.get(d.id) === d.state) continue;
      this.availability.set(d.id, d.state);
      this.send(this.topic.availability(d.id), d.state, true);
    }
  }

  private publishHealth(): void {
    let summary: unknown;
    try {
      summary = this.sources.health();
    } catch (err) {
      this.log.warn({ err }, 'health not read for the upstream broker');
      return;
    }
    this.send(this.topic.health, JSON.stringify({ at: new Date().toISOString(), version: VERSION, summary }), true);
  }
}
