/**
 * The embedded MQTT broker (aedes): networked instruments and badge readers connect to it,
 * each with its own credentials, and the gateway reads them through a typed in-process API.
 *
 * Security is in aedes' hooks: `preConnect` limits connection attempts per address before
 * any password is checked; `authenticate` checks the device's secret (CONNACK 4 for a wrong
 * one, 5 for none, 2 when the client id is not the user name); `authorizePublish` and
 * `authorizeSubscribe` apply the topic rules of topics.ts and cap subscriptions. A packet
 * larger than maxPacketBytes ends the connection before the broker buffers it
 * (packet-guard.ts). What a device publishes is validated against its schema; a message
 * that is refused or invalid is acknowledged (so that the device does not send it again
 * forever) and delivered to no one, and it is counted and logged naming the device, the
 * topic and the problem.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { splitHostPort } from '../config/common.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import type { BrokerConfig } from './config.js';
import { Authentication } from './authentication.js';
import { Authorization, type Accepted } from './authorization.js';
import { DeviceAvailability, type DeviceLink } from './availability.js';
import { CommandError, Commands } from './commands.js';
import { MqttCredentials } from './credentials.js';
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
  listening: { tcp: string | null; tls: string | null; websocket: string | null };
  devices: Health['devices'] & { links: DeviceLink[] };
  /** Replies that matched no waiting command (late or unknown transaction). */
  unmatchedReplies: number;
  /** Commands not delivered because they were older than the command timeout. */
  expiredCommands: number;
}

export class EmbeddedBroker extends EventEmitter<BrokerEvents> {
  readonly topics: Topics;
  private readonly log: Logger;
  private readonly auth: Authentication;
  private readonly now: () => Date;
  private readonly clock: () => number;
  private readonly authorization: Authorization;
  private readonly availability: DeviceAvailability;
  private readonly commands: Commands;
  private readonly metrics: BrokerMetrics;
  private aedes: Aedes | null = null;
  private servers: { tcp: NetServer | null; tls: TlsServer | null; http: HttpServer | null; ws: WebSocketServer | null } = { tcp: null, tls: null, http: null, ws: null };
  private readonly sockets = new Set<Duplex>();
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
    this.auth = new Authentication(cfg, new MqttCredentials(journal), this.metrics, this.log, this.clock);
    this.authorization = new Authorization(cfg, this.topics, this.auth, this.metrics);
    this.availability = new DeviceAvailability(cfg, this.auth, this.metrics, this.log, this.clock, this.now, {
      running: () => this.aedes !== null && !this.stopping,
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
      await this.listen();
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
    const { tcp, tls, http, ws } = this.servers;
    const closed = [tcp, tls, http].filter((s) => s !== null).map((s) => new Promise<void>((r) => s.close(() => r())));
    ws?.close();
    await new Promise<void>((r) => aedes.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await Promise.all(closed);
    aedes.removeAllListeners();
    this.servers = { tcp: null, tls: null, http: null, ws: null };
    this.aedes = null;
    this.availability.disconnectedAll();
    this.stopped = null;
    this.log.info('MQTT broker stopped');
  }

  get addresses(): BrokerHealth['listening'] {
    const at = (s: NetServer | HttpServer | null, scheme: string, path = '') => {
      const a = s?.address() as AddressInfo | null | undefined;
      if (!a) return null;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      return `${scheme}://${host}:${a.port}${path}`;
    };
    return { tcp: at(this.servers.tcp, 'mqtt'), tls: at(this.servers.tls, 'mqtts'), websocket: at(this.servers.http, 'ws', '/mqtt') };
  }

  /**
   * Connection options for one of the gateway's own MQTT clients (a bridge to another broker,
   * a dashboard): it may publish and subscribe anywhere (but `$SYS/…`), and its secret lives
   * only in this process.
   */
  internalClientOptions(name: string): InternalClientOptions {
    const a = this.servers.tcp?.address() as AddressInfo | null | undefined;
    const host = !a ? splitHostPort(this.cfg.listen).host : a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '::1' : a.address;
    const port = a?.port ?? splitHostPort(this.cfg.listen).port;
    return { url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`, ...this.auth.internalLogin(name) };
  }

  /**
   * Credentials for a simulated device played inside the gateway's process (a simulated lab):
   * the device's own id and rules, a secret that lives only in this process for this run, never
   * stored nor journaled. Real devices get theirs from `ovn-gateway devices add-mqtt`.
   */
  simulatedDeviceCredentials(deviceId: string): { url: string; password: string } {
    return { url: this.internalClientOptions('simulated').url, password: this.auth.simulatedSecret(deviceId) };
  }

  private async listen(): Promise<void> {
    const { host, port } = splitHostPort(this.cfg.listen);
    const tcp = createNetServer({ noDelay: true }, (socket) => this.accept(socket, socket.remoteAddress ?? 'unknown'));
    this.servers.tcp = tcp;
    await listenOn(tcp, host, port, 'mqtt.listen');
    if (this.cfg.tls) {
      const read = (key: 'cert' | 'key') => {
        const file = resolve(this.opts.baseDir ?? '.', this.cfg.tls![key]);
        try {
          return readFileSync(file);
        } catch (err) {
          throw new Error(`mqtt.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
      };
      const tls = createTlsServer({ cert: read('cert'), key: read('key'), noDelay: true });
      tls.on('secureConnection', (socket) => this.accept(socket, socket.remoteAddress ?? 'unknown'));
      // A failed handshake (a client that does not trust the certificate) concerns that client only.
      tls.on('tlsClientError', (err, socket) => this.log.debug({ err: err.message, address: socket.remoteAddress }, 'TLS handshake failed'));
      this.servers.tls = tls;
      await listenOn(tls, host, this.cfg.tls.port, 'mqtt.tls.port');
    }
    if (this.cfg.websocket) {
      const http = createHttpServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n'));
      // One WebSocket message may carry several MQTT packets; the guard still applies to each.
      const ws = new WebSocketServer({ server: http, maxPayload: Math.max(4 * this.cfg.maxPacketBytes, 65_536) });
      ws.on('connection', (socket, req) => {
        const stream = createWebSocketStream(socket);
        stream.on('error', () => {}); // reported through the guard; a reset must not be an uncaught error
        this.accept(stream, req.socket.remoteAddress ?? 'unknown');
      });
      this.servers.http = http;
      this.servers.ws = ws;
      await listenOn(http, host, this.cfg.websocket.port, 'mqtt.websocket.port');
    }
  }

  /** A new connection: through the packet-size guard into aedes. */
  private accept(inner: Duplex, address: string): void {
    const aedes = this.aedes;
    if (!aedes || this.stopping) return void inner.destroy();
    let client: Client | null = null;
    const conn = new GuardedConnection(inner, this.cfg.maxPacketBytes, address, (size) => {
      const who = client?.id ? `${client.id} (${address})` : address;
      this.metrics.reject('packet-too-large', client?.id ?? address, `${who} sent a packet of ${size < 0 ? 'a malformed length' : `${size} bytes`}, more than maxPacketBytes (${this.cfg.maxPacketBytes}); disconnected`, { address, size });
    });
    this.sockets.add(inner);
    inner.once('close', () => this.sockets.delete(inner));
    conn.on('error', () => {}); // aedes listens too; this one only keeps a reset from being unhandled
    client = aedes.handle(conn);
  }

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
    if (!this.aedes || this.stopping) throw new CommandError('the MQTT broker is not running', deviceId, 'stopped');
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

function listenOn(server: NetServer | HttpServer, host: string, port: number, key: string): Promise<void> {
  return new Promise((resolveListen, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new Error(`${key}: cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use (another broker running? pick another port)' : err.message}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolveListen();
    });
  });
}

