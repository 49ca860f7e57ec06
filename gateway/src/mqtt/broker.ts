/**
 * The embedded MQTT broker (aedes): networked instruments and badge readers connect to it,
 * each with its own credentials, and the gateway reads them through a typed in-process API.
 *
 * This class composes the parts and runs their lifecycle; each concern is a module of its own,
 * most of them aedes hooks:
 *   listeners.ts       MQTT over TCP, TLS and WebSocket
 *   packet-guard.ts    a packet larger than maxPacketBytes ends the connection before aedes buffers it
 *   authentication.ts  `preConnect` (attempts per address) and `authenticate` (who the client is)
 *   authorization.ts   `authorizePublish` and `authorizeSubscribe`: the topic rules of topics.ts,
 *                      and device messages valid against schemas.ts
 *   availability.ts    whether each device is there, published when it changes
 *   commands.ts        commands and their replies; `authorizeForward` holds back a late command
 *   metrics.ts         the counters of the health summary, and the log of refusals
 * A device's accepted message reaches the gateway's listeners in `published`, once aedes has it.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import type { BrokerConfig } from './config.js';
import { Authentication } from './authentication.js';
import { Authorization, type Accepted } from './authorization.js';
import { DeviceAvailability, type DeviceLink } from './availability.js';
import { CommandError, Commands } from './commands.js';
import { MqttCredentials } from './credentials.js';
import { Listeners, type ListenAddresses } from './listeners.js';
import { BrokerMetrics } from './metrics.js';
import { addressOf, GuardedConnection } from './packet-guard.js';
import {
  sessionEventSchema,
  type Availability,
  type Badge,
  type CommandInput,
  type Health,
  type Reply,
  type SessionEvent,
  type Status,
  type Telemetry,
} from './schemas.js';
import { topicsFor, type Topics } from './topics.js';

/** How often connected devices' credentials are compared with the database (removed or rotated ones are disconnected). */
const REVOCATION_CHECK_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;
/** A client that stops reading is disconnected after this, so that it cannot stall delivery to the others. */
const DRAIN_TIMEOUT_MS = 30_000;

export interface BrokerEvents {
  telemetry: [deviceId: string, telemetry: Telemetry];
  status: [deviceId: string, status: Status];
  badge: [deviceId: string, badge: Badge];
  reply: [deviceId: string, reply: Reply];
  availability: [deviceId: string, availability: Availability];
}

export interface BrokerOptions {
  /** TLS files are relative to it (the config file's directory). */
  baseDir?: string;
  now?: () => Date;
  /** Monotonic milliseconds, for rate limits and heartbeats. */
  clock?: () => number;
  revocationCheckMs?: number;
}

export interface PublishOptions {
  retain?: boolean;
  qos?: 0 | 1 | 2;
}

export interface InternalClientOptions {
  url: string;
  clientId: string;
  username: string;
  password: string;
}

export interface BrokerHealth extends Health {
  listening: ListenAddresses;
  devices: Health['devices'] & { links: DeviceLink[] };
  /** Replies that matched no waiting command (late or unknown transaction). */
  unmatchedReplies: number;
  /** Commands not delivered because they were older than the command timeout. */
  expiredCommands: number;
}

export class EmbeddedBroker extends EventEmitter<BrokerEvents> {
  readonly topics: Topics;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly clock: () => number;
  private readonly metrics: BrokerMetrics;
  private readonly network: Listeners;
  private readonly auth: Authentication;
  private readonly authorization: Authorization;
  private readonly availability: DeviceAvailability;
  private readonly commands: Commands;
  private aedes: Aedes | null = null;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private startedAt = 0;

  constructor(
    private readonly cfg: BrokerConfig,
    journal: Journal,
    log: Logger,
    private readonly opts: BrokerOptions = {},
  ) {
    super();
    // every networked-instrument driver listens (and picks its own device's messages)
    this.setMaxListeners(0);
    this.topics = topicsFor(cfg.baseTopic);
    this.log = log.child({ component: 'mqtt' });
    this.now = opts.now ?? (() => new Date());
    this.clock = opts.clock ?? (() => performance.now());
    this.metrics = new BrokerMetrics(this.log, this.clock);
    this.network = new Listeners(cfg, opts.baseDir ?? '.', this.log, this.accept);
    this.auth = new Authentication(cfg, new MqttCredentials(journal), this.metrics, this.log, this.clock);
    this.authorization = new Authorization(cfg, this.topics, this.auth, this.metrics);
    this.availability = new DeviceAvailability(cfg, this.auth, this.metrics, this.log, this.clock, this.now, {
      running: () => this.running,
      changed: (deviceId, availability) => {
        this.publish(this.topics.availability(deviceId), availability, { retain: true, qos: 1 }).catch((err: Error) => this.log.debug({ err }, 'availability not published'));
        this.emitSafely('availability', deviceId, availability);
      },
    });
    this.commands = new Commands((deviceId, payload) => this.publishBuffer(this.topics.command(deviceId), payload, { qos: 1 }), cfg.commandTimeoutMs, this.metrics, this.log, this.clock);
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    if (this.aedes) return;
    this.stopping = false;
    this.startedAt = this.clock();
    const aedes = await Aedes.createBroker({
      connectTimeout: CONNECT_TIMEOUT_MS,
      drainTimeout: DRAIN_TIMEOUT_MS,
      preConnect: this.auth.preConnect,
      authenticate: this.auth.authenticate,
      authorizePublish: this.authorization.authorizePublish,
      authorizeSubscribe: this.authorization.authorizeSubscribe,
      authorizeForward: this.authorizeForward,
      published: this.published,
    });
    this.aedes = aedes;
    aedes.on('client', this.availability.onClient);
    aedes.on('clientDisconnect', this.availability.onClientDisconnect);
    aedes.on('clientError', this.availability.onClientError);
    aedes.on('connectionError', (c, err) => this.log.debug({ err: err.message, address: addressOf(c) }, 'connection error before CONNECT was accepted'));
    aedes.on('unsubscribe', this.authorization.unsubscribed);
    // aedes reports persistence failures as 'error' events; unhandled, they would end the process.
    (aedes as EventEmitter).on('error', (err: Error) => this.log.error({ err }, 'broker error'));
    try {
      await this.network.listen();
      await this.publish(this.topics.gatewayState, { state: 'online', version: VERSION, at: this.now().toISOString() }, { retain: true, qos: 1 });
    } catch (err) {
      await this.stop();
      throw err;
    }
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.cfg.healthIntervalS * 1000, () => void this.publish(this.topics.health, this.summary(), { retain: true, qos: 0 }).catch(() => {}));
    every(this.opts.revocationCheckMs ?? REVOCATION_CHECK_MS, () => this.checkRevocations());
    if (this.cfg.heartbeatTimeoutS !== undefined) every(Math.min(1000, (this.cfg.heartbeatTimeoutS * 1000) / 4), () => this.availability.checkHeartbeats());
    void this.publish(this.topics.health, this.summary(), { retain: true, qos: 0 }).catch(() => {});
    const a = this.addresses;
    this.log.info({ ...a, baseTopic: this.cfg.baseTopic }, `MQTT broker on ${[a.tcp, a.tls, a.websocket].filter(Boolean).join(', ')}, topics under ${this.cfg.baseTopic}/`);
  }

  private get running(): boolean {
    return this.aedes !== null && !this.stopping;
  }

  /** Says `offline` on the gateway state topic, disconnects every client and closes the listeners. */
  async stop(): Promise<void> {
    if (!this.aedes) return;
    this.stopped ??= this.close(this.aedes);
    await this.stopped;
  }

  private async close(aedes: Aedes): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (!aedes.closed) await this.publish(this.topics.gatewayState, { state: 'offline', version: VERSION, at: this.now().toISOString() }, { retain: true, qos: 1 }).catch(() => {});
    this.stopping = true;
    this.commands.stop();
    const closed = this.network.close();
    await new Promise<void>((r) => aedes.close(() => r()));
    this.network.endConnections();
    await closed;
    aedes.removeAllListeners();
    this.aedes = null;
    this.availability.disconnectedAll();
    this.stopped = null;
    this.log.info('MQTT broker stopped');
  }

  get addresses(): ListenAddresses {
    return this.network.addresses;
  }

  /**
   * Connection options for one of the gateway's own MQTT clients (a bridge to another broker,
   * a dashboard): it may publish and subscribe anywhere (but `$SYS/…`), and its secret lives
   * only in this process.
   */
  internalClientOptions(name: string): InternalClientOptions {
    return { url: this.network.localUrl, ...this.auth.internalLogin(name) };
  }

  /**
   * Credentials for a simulated device played inside the gateway's process (a simulated lab):
   * the device's own id and rules, a secret that lives only in this process for this run, never
   * stored nor journaled. Real devices get theirs from `ovn-gateway devices add-mqtt`.
   */
  simulatedDeviceCredentials(deviceId: string): { url: string; password: string } {
    return { url: this.network.localUrl, password: this.auth.simulatedSecret(deviceId) };
  }

  /** A new connection: through the packet-size guard into aedes. */
  private readonly accept = (inner: Duplex, address: string): void => {
    const aedes = this.aedes;
    if (!aedes || this.stopping) return void inner.destroy();
    let client: Client | null = null;
    const conn = new GuardedConnection(inner, this.cfg.maxPacketBytes, address, (size) => {
      const who = client?.id ? `${client.id} (${address})` : address;
      this.metrics.reject('packet-too-large', client?.id ?? address, `${who} sent a packet of ${size < 0 ? 'a malformed length' : `${size} bytes`}, more than maxPacketBytes (${this.cfg.maxPacketBytes}); disconnected`, { address, size });
    });
    conn.on('error', () => {}); // aedes listens too; this one only keeps a reset from being unhandled
    client = aedes.handle(conn);
  };

  // ---- aedes hooks ----

  private readonly authorizeForward = (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
    const forwarded = this.commands.authorizeForward(client, packet);
    if (forwarded) this.metrics.counters.out++;
    return forwarded;
  };

  private readonly published = (packet: AedesPublishPacket, _client: Client, done: (err?: Error | null) => void): void => {
    const a = this.authorization.take(packet);
    if (a && !this.stopping) this.dispatch(a);
    done(null);
  };

  /** Devices whose credentials were removed or rotated since they connected are disconnected. */
  private checkRevocations(): void {
    for (const { client, reason } of this.auth.revoked(this.availability.clients())) {
      this.availability.failed(client, reason);
      client.close();
    }
  }

  // ---- device messages ----

  private dispatch(a: Accepted): void {
    this.availability.heard(a.deviceId);
    if (a.kind === 'status' && !this.availability.reported(a.from, a.deviceId, a.topic, a.value)) return;
    this.metrics.counters.dispatched++;
    switch (a.kind) {
      case 'telemetry':
        this.emitSafely('telemetry', a.deviceId, a.value);
        break;
      case 'badge':
        this.emitSafely('badge', a.deviceId, a.value);
        break;
      case 'reply':
        this.commands.settle(a.deviceId, a.value);
        this.emitSafely('reply', a.deviceId, a.value);
        break;
      case 'status':
        this.emitSafely('status', a.deviceId, a.value);
        break;
    }
    this.availability.update(a.deviceId);
  }

  private emitSafely<E extends keyof BrokerEvents>(event: E, ...args: BrokerEvents[E]): void {
    try {
      (this.emit as (e: E, ...a: BrokerEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      // a failing consumer must not break the broker's message handling
      this.log.error({ err, event, device: args[0] }, `a ${event} listener failed`);
    }
  }

  // ---- the gateway's side ----

  /** Publishes from the gateway itself (no ACL): objects as JSON, strings and buffers as they are. */
  publish(topic: string, payload: unknown, opts: PublishOptions = {}): Promise<void> {
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    return this.publishBuffer(topic, body, opts);
  }

  private publishBuffer(topic: string, payload: Buffer, opts: PublishOptions): Promise<void> {
    const aedes = this.aedes;
    if (!aedes || aedes.closed) return Promise.reject(new Error('the MQTT broker is not running'));
    return new Promise((resolve, reject) =>
      aedes.publish({ cmd: 'publish', topic, payload, qos: opts.qos ?? 0, retain: opts.retain ?? false, dup: false }, (err) => (err ? reject(err) : resolve())),
    );
  }

  /**
   * Sends a command to a device and resolves with its reply (`ok` says whether it was carried
   * out), matched by a transaction id the broker chooses. Rejects with a CommandError when the
   * device is not connected, when no reply comes within the timeout, or when the broker stops.
   */
  async command(deviceId: string, command: CommandInput, opts: { timeoutMs?: number } = {}): Promise<Reply> {
    if (!this.running) throw new CommandError('the MQTT broker is not running', deviceId, 'stopped');
    if (!this.availability.isConnected(deviceId)) throw new CommandError(`${deviceId} is not connected to the broker`, deviceId, 'offline');
    return this.commands.request(deviceId, command, opts.timeoutMs);
  }

  /** Publishes a session event (validated) on the sessions topic. */
  publishSessionEvent(event: SessionEvent): Promise<void> {
    return this.publish(this.topics.sessions, sessionEventSchema.parse(event), { qos: 1 });
  }

  isConnected(deviceId: string): boolean {
    return this.availability.isConnected(deviceId);
  }

  availabilityOf(deviceId: string): Availability | null {
    return this.availability.availabilityOf(deviceId);
  }

  /** What the health topic carries, plus the listeners and each device's link. */
  health(): BrokerHealth {
    const summary = this.summary();
    return { ...summary, listening: this.addresses, devices: { ...summary.devices, links: this.availability.links() }, unmatchedReplies: this.metrics.counters.unmatchedReplies, expiredCommands: this.metrics.counters.expiredCommands };
  }

  private summary(): Health {
    const { online, offline, connected } = this.availability.counts();
    return {
      at: this.now().toISOString(),
      uptimeS: Math.round((this.clock() - this.startedAt) / 1000),
      clients: { connected: this.aedes?.connectedClients ?? 0, devices: connected },
      devices: { online, offline },
      messages: { in: this.metrics.counters.in, out: this.metrics.counters.out, dispatched: this.metrics.counters.dispatched },
      rejected: { ...this.metrics.rejected },
    };
  }
}
