/**
 * A networked badge reader (an ESP32 with an RC522, say) that publishes each tap on an MQTT
 * topic, as a badge source for the gateway. The broker connection is this device's link:
 * mqtt.js reconnects on its own, and every (re)connection subscribes again. With a status
 * topic, the reader's retained online/offline (offline being its last will) decides
 * availability as well.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { connect, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import type { DeviceHealth } from '../device.js';
import { WarnLimit } from '../../log-limit.js';
import type { InternalClientOptions } from '../../mqtt/broker.js';
import { TapFilter } from '../tap-filter.js';
import type { BadgeRead, BadgeReader } from '../tool-io.js';
import type { MqttBadgeReaderConfig } from './config.js';
import { excerpt, parseTap } from './payload.js';

export const RECONNECT_MS = 1000;
const CONNECT_TIMEOUT_MS = 10_000;
const KEEPALIVE_S = 30;
/** How long stop() waits for a clean DISCONNECT before dropping the socket. */
const END_TIMEOUT_MS = 2000;

export type ReaderStatus = 'online' | 'offline' | 'unknown';

export interface MqttBadgeReaderEvents {
  badge: [BadgeRead];
  online: [];
  offline: [reason: string];
}

export interface MqttBadgeReaderOptions {
  /** Required when the config names no url: the embedded broker's internalClientOptions. */
  connection?: InternalClientOptions;
  now?: () => Date;
  /** Monotonic milliseconds, for the repeat gap and the log limit. */
  clock?: () => number;
}

export interface MqttReaderCounters {
  /** Taps passed on as badge events. */
  taps: number;
  /** The same UID again within repeatGapMs (a card held on the reader, or a duplicate delivery). */
  repeats: number;
  /** Payloads that were not a tap. */
  malformed: number;
  /** Retained messages on the tap topic, replayed by the broker at subscription: old taps, never passed on. */
  retained: number;
  /** Broker connections after the first. */
  reconnects: number;
}

export class MqttBadgeReader extends EventEmitter<MqttBadgeReaderEvents> implements BadgeReader {
  readonly kind = 'mqtt-badge-reader';
  readonly readsBadges = true;
  readonly counters: MqttReaderCounters = { taps: 0, repeats: 0, malformed: 0, retained: 0, reconnects: 0 };
  private readonly log: Logger;
  private readonly clientId: string;
  private readonly url: string;
  private readonly connection: InternalClientOptions | null;
  private client: MqttClient | null = null;
  private brokerUp = false;
  private subscribed = false;
  private everConnected = false;
  /** Whether the last broker error was logged at warn level already (repeats go to debug while disconnected). */
  private errorLogged = false;
  private readerStatus: ReaderStatus = 'unknown';
  private available = false;
  private since: Date;
  private lastSeen: Date | null = null;
  private lastTapAt: Date | null = null;
  private lastMalformed: { at: string; problem: string } | null = null;
  private readonly taps: TapFilter;
  /** Malformed-payload warnings: the first few of a window, the rest counted into the next one logged. */
  private readonly warnings = new WarnLimit();

  private readonly now: () => Date;
  private readonly monotonicMs: () => number;

  constructor(
    private readonly cfg: MqttBadgeReaderConfig,
    private readonly journal: Journal,
    log: Logger,
    opts: MqttBadgeReaderOptions = {},
  ) {
    super();
    this.now = opts.now ?? (() => new Date());
    this.monotonicMs = opts.clock ?? (() => performance.now());
    this.log = log.child({ device: cfg.id });
    this.taps = new TapFilter(cfg.repeatGapMs);
    // Unique per device and per run: two clients with one id knock each other off the broker.
    this.connection = opts.connection ?? null;
    if (!this.connection && cfg.url === undefined) throw new Error(`${cfg.id}: no url, and no embedded broker to read from (add an mqtt section)`);
    this.clientId = this.connection?.clientId ?? `ovn-${cfg.id}-${randomBytes(4).toString('hex')}`;
    this.url = this.connection?.url ?? cfg.url!;
    this.since = this.now();
  }

  get id(): string {
    return this.cfg.id;
  }

  get isOnline(): boolean {
    return this.available;
  }

  start(): void {
    if (this.client) return;
    const client = connect(this.url, {
      clientId: this.clientId,
      username: this.connection?.username ?? this.cfg.username,
      password: this.connection?.password ?? this.cfg.password,
      // A clean session: taps queued at the broker while the gateway was away are stale, and
      // replaying them minutes later could switch a tool on for someone who has left.
      clean: true,
      // Subscriptions are made on every connection below, so that a refusal is seen each time.
      resubscribe: false,
      reconnectPeriod: RECONNECT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      keepalive: KEEPALIVE_S,
    });
    this.client = client;
    client.on('connect', () => this.onConnect(client));
    client.on('close', () => this.onClose());
    client.on('error', (err) => this.onError(err));
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = null;
    client.removeAllListeners('connect');
    client.removeAllListeners('close');
    client.removeAllListeners('message');
    // A clean DISCONNECT when connected; a broker that does not take it in time gets the socket closed.
    const timer = setTimeout(() => client.stream?.destroy(), END_TIMEOUT_MS);
    try {
      await client.endAsync(!client.connected);
    } catch (err) {
      this.log.debug({ err }, 'error while closing the broker connection');
    } finally {
      clearTimeout(timer);
      client.removeAllListeners();
      // A socket error arriving after the end has no one left to tell; it must not crash the process.
      client.on('error', () => {});
    }
    this.brokerUp = false;
    this.subscribed = false;
    this.updateAvailability('the gateway is stopping');
  }

  health(): DeviceHealth {
    return {
      id: this.cfg.id,
      kind: this.kind,
      name: this.cfg.name ?? this.cfg.id,
      state: this.available ? 'online' : 'offline',
      lastSeen: this.lastSeen?.toISOString() ?? null,
      since: this.since.toISOString(),
      detail: {
        url: this.url,
        username: this.connection?.username ?? this.cfg.username ?? null,
        clientId: this.clientId,
        topic: this.cfg.topic,
        statusTopic: this.cfg.statusTopic ?? null,
        broker: { connected: this.brokerUp, subscribed: this.subscribed },
        readerStatus: this.cfg.statusTopic === undefined ? null : this.readerStatus,
        counters: { ...this.counters },
        lastTapAt: this.lastTapAt?.toISOString() ?? null,
        lastMalformed: this.lastMalformed,
      },
    };
  }

  // ---- broker connection ----

  private onConnect(client: MqttClient): void {
    this.brokerUp = true;
    this.errorLogged = false;
    if (this.everConnected) this.counters.reconnects++;
    this.journal.record(this.everConnected ? 'device.reconnected' : 'device.connected', this.cfg.id, { target: this.url, topic: this.cfg.topic });
    this.log.info({ url: this.url, clientId: this.clientId }, `connected to the broker${this.everConnected ? ' again' : ''}`);
    this.everConnected = true;
    const topics: Record<string, { qos: 1 }> = { [this.cfg.topic]: { qos: 1 } };
    if (this.cfg.statusTopic !== undefined) topics[this.cfg.statusTopic] = { qos: 1 };
    client.subscribe(topics, (err) => {
      if (this.client !== client || !client.connected) return;
      if (err) {
        this.log.error({ err, topics: Object.keys(topics) }, `the broker refused the subscription to ${Object.keys(topics).join(' and ')}: ${err.message} (may this user read these topics?)`);
        return;
      }
      this.subscribed = true;
      this.log.debug({ topics: Object.keys(topics) }, 'subscribed');
    });
    this.updateAvailability('');
  }

  private onClose(): void {
    if (!this.brokerUp) return; // a connection attempt that failed: the link was not up
    this.brokerUp = false;
    this.subscribed = false;
    const reason = `lost the broker at ${this.url}`;
    this.journal.record('device.lost', this.cfg.id, { reason });
    this.log.warn({ url: this.url }, `${reason}; reconnecting every ${RECONNECT_MS / 1000} s`);
    this.updateAvailability(reason);
  }

  private onError(err: Error): void {
    // While the broker stays unreachable, every reconnect attempt fails the same way.
    if (this.errorLogged) return void this.log.debug({ err }, 'broker connection error');
    this.errorLogged = true;
    this.log.warn({ err, url: this.url }, `broker connection error: ${err.message}`);
  }

  // ---- messages ----

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (topic === this.cfg.topic) return this.onTap(payload, packet.retain);
    if (topic === this.cfg.statusTopic) return this.onStatus(payload);
  }

  private onTap(payload: Buffer, retained: boolean): void {
    if (retained) {
      this.counters.retained++;
      if (this.counters.retained === 1) {
        this.log.warn({ topic: this.cfg.topic }, `ignored a retained message on ${this.cfg.topic}: readers must publish taps without the retain flag, or every reconnection replays the last tap`);
      }
      return;
    }
    const parsed = parseTap(payload);
    if (!parsed.ok) return this.onMalformed(parsed.problem);
    const { uid, reader } = parsed.tap;
    const at = this.now();
    this.lastSeen = at;
    if (!this.taps.read(uid, this.monotonicMs())) {
      this.counters.repeats++;
      this.log.debug({ uid }, 'same badge again within the repeat gap; dropped');
      return;
    }
    this.counters.taps++;
    this.lastTapAt = at;
    this.log.info({ uid, topic: this.cfg.topic, ...(reader !== undefined && { readerName: reader }) }, 'badge tapped');
    try {
      this.emit('badge', { uid, reader: this.cfg.id });
    } catch (err) {
      // A failing listener must not break the MQTT client's message handling.
      this.log.error({ err, uid }, 'a badge listener failed');
    }
  }

  private onMalformed(problem: string): void {
    this.counters.malformed++;
    this.lastMalformed = { at: this.now().toISOString(), problem };
    const suppressed = this.warnings.take(this.cfg.id, this.monotonicMs());
    if (suppressed === null) return;
    const more = suppressed > 0 ? ` (${suppressed} more not logged before this one)` : '';
    this.log.warn({ topic: this.cfg.topic, problem, ...(suppressed > 0 && { suppressed }) }, `${this.cfg.id}: dropped a message on ${this.cfg.topic}: ${problem}${more}`);
  }

  private onStatus(payload: Buffer): void {
    const text = payload.toString('utf8').trim().toLowerCase();
    // An empty retained message clears the status: nothing is known any more.
    const status: ReaderStatus | null = text === '' ? 'unknown' : text === 'online' || text === 'offline' ? text : null;
    if (status === null) {
      if (this.warnings.take(this.cfg.id, this.monotonicMs()) !== null) {
        this.log.warn({ topic: this.cfg.statusTopic }, `${this.cfg.id}: ignored ${excerpt(text)} on ${this.cfg.statusTopic}: expected online or offline`);
      }
      return;
    }
    this.lastSeen = this.now();
    if (status === this.readerStatus) return;
    const was = this.readerStatus;
    this.readerStatus = status;
    this.log[status === 'offline' ? 'warn' : 'info']({ topic: this.cfg.statusTopic, status, was }, `the reader says it is ${status}`);
    if (status === 'offline') this.journal.record('device.lost', this.cfg.id, { reason: `the reader is offline (${this.cfg.statusTopic})` });
    else if (was === 'offline' && this.brokerUp) this.journal.record('device.reconnected', this.cfg.id, { target: this.url, topic: this.cfg.statusTopic });
    this.updateAvailability(`the reader is offline (${this.cfg.statusTopic})`);
  }

  // ---- availability ----

  private updateAvailability(reasonIfOffline: string): void {
    const available = this.brokerUp && this.readerStatus !== 'offline';
    if (available === this.available) return;
    this.available = available;
    this.since = this.now();
    if (available) this.emit('online');
    else this.emit('offline', reasonIfOffline);
  }
}
