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
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { splitHostPort } from '../config/common.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { WarnLimit } from '../log-limit.js';
import { VERSION } from '../version.js';
import type { BrokerConfig } from './config.js';
import { DEVICE_ID, MqttCredentials, newSecret } from './credentials.js';
import { RateLimit } from './limits.js';
import { GuardedConnection } from './packet-guard.js';
import {
  commandSchema,
  DEVICE_PAYLOADS,
  REJECTION_REASONS,
  sessionEventSchema,
  type Availability,
  type Badge,
  type CommandInput,
  type Health,
  type RejectionReason,
  type Reply,
  type SessionEvent,
  type Status,
  type Telemetry,
} from './schemas.js';
import { INTERNAL_PREFIX, isInternalClient, mayPublish, maySubscribe, parseDeviceTopic, topicsFor, type DeviceTopicKind, type Topics } from './topics.js';

/** Where refused and invalid messages go: a `$` topic, which no wildcard subscription matches and no device may subscribe to. */
const DROPPED_TOPIC = '$ovn/dropped';
/** How often connected devices' credentials are compared with the database (removed or rotated ones are disconnected). */
const REVOCATION_CHECK_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;
/** A client that stops reading is disconnected after this, so that it cannot stall delivery to the others. */
const DRAIN_TIMEOUT_MS = 30_000;
/** The `createdAt` of a simulated device's principal: its credentials are not in the database, so never revoked by it. */
const SIMULATED = 'simulated';

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

/** A device as the broker sees it, for the health API. */
export interface DeviceLink {
  deviceId: string;
  connected: boolean;
  address: string | null;
  availability: Availability | null;
  session: number | null;
  lastSeen: string | null;
}

export interface BrokerHealth extends Health {
  listening: { tcp: string | null; tls: string | null; websocket: string | null };
  devices: Health['devices'] & { links: DeviceLink[] };
  /** Replies that matched no waiting command (late or unknown transaction). */
  unmatchedReplies: number;
  /** Commands not delivered because they were older than the command timeout. */
  expiredCommands: number;
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly deviceId: string,
    readonly reason: 'offline' | 'timeout' | 'stopped',
  ) {
    super(message);
  }
}

type Principal = { kind: 'internal' } | { kind: 'device'; deviceId: string; createdAt: string; address: string };

type Accepted = { from: Client; deviceId: string; topic: string } & (
  | { kind: 'telemetry'; value: Telemetry }
  | { kind: 'status'; value: Status }
  | { kind: 'badge'; value: Badge }
  | { kind: 'reply'; value: Reply }
);

interface DeviceState {
  client: Client | null;
  /** The newest connection, kept after it closed: its will is the current one. */
  lastClient: Client | null;
  address: string | null;
  reported: 'online' | 'offline' | 'unknown';
  session: number | null;
  lastMessageMs: number;
  lastSeen: Date | null;
  lastError: string | null;
  availability: Availability | null;
}

interface PendingCommand {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

const authError = (message: string, returnCode: 2 | 3 | 4 | 5): AuthenticateError => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

export class EmbeddedBroker extends EventEmitter<BrokerEvents> {
  readonly topics: Topics;
  private readonly log: Logger;
  private readonly credentials: MqttCredentials;
  private readonly now: () => Date;
  private readonly clock: () => number;
  private readonly internalSecret = randomBytes(32).toString('base64url');
  /** Secrets of simulated devices played inside this process, for this run only. */
  private readonly simulated = new Map<string, string>();
  /** Prefix of this run's command transactions, so that ids never repeat across restarts. */
  private readonly runId = randomBytes(3).toString('hex');
  private readonly connectionRate: RateLimit;
  private readonly warnings = new WarnLimit();
  private readonly principals = new WeakMap<Client, Principal>();
  private readonly subscriptions = new WeakMap<Client, Set<string>>();
  private readonly accepted = new WeakMap<object, Accepted>();
  /** Command payloads and the monotonic time after which they must not reach the device. */
  private readonly commandDeadlines = new WeakMap<Buffer, number>();
  private readonly devices = new Map<string, DeviceState>();
  private readonly pending = new Map<string, PendingCommand>();
  private readonly counters = { in: 0, out: 0, dispatched: 0, unmatchedReplies: 0, expiredCommands: 0 };
  private readonly rejected = Object.fromEntries(REJECTION_REASONS.map((r) => [r, 0])) as Record<RejectionReason, number>;
  private aedes: Aedes | null = null;
  private servers: { tcp: NetServer | null; tls: TlsServer | null; http: HttpServer | null; ws: WebSocketServer | null } = { tcp: null, tls: null, http: null, ws: null };
  private readonly sockets = new Set<Duplex>();
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private startedAt = 0;
  private txCounter = 0;

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
    this.credentials = new MqttCredentials(journal);
    this.now = opts.now ?? (() => new Date());
    this.clock = opts.clock ?? (() => performance.now());
    this.connectionRate = new RateLimit(cfg.connectionsPerMinute);
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    if (this.aedes) return;
    this.stopping = false;
    this.startedAt = this.clock();
    const aedes = await Aedes.createBroker({
      connectTimeout: CONNECT_TIMEOUT_MS,
      drainTimeout: DRAIN_TIMEOUT_MS,
      preConnect: this.preConnect,
      authenticate: this.authenticate,
      authorizePublish: this.authorizePublish,
      authorizeSubscribe: this.authorizeSubscribe,
      authorizeForward: this.authorizeForward,
      published: this.published,
    });
    this.aedes = aedes;
    aedes.on('client', (c) => this.onClient(c));
    aedes.on('clientDisconnect', (c) => this.onClientDisconnect(c));
    aedes.on('clientError', (c, err) => this.onClientError(c, err));
    aedes.on('connectionError', (c, err) => this.log.debug({ err: err.message, address: addressOf(c) }, 'connection error before CONNECT was accepted'));
    aedes.on('unsubscribe', (topics, c) => {
      const subs = this.subscriptions.get(c);
      for (const t of topics) subs?.delete(t);
    });
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
    if (this.cfg.heartbeatTimeoutS !== undefined) every(Math.min(1000, (this.cfg.heartbeatTimeoutS * 1000) / 4), () => this.checkHeartbeats());
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
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new CommandError('the broker stopped before the reply', key.slice(0, key.indexOf('\n')), 'stopped'));
    }
    this.pending.clear();
    const { tcp, tls, http, ws } = this.servers;
    const closed = [tcp, tls, http].filter((s) => s !== null).map((s) => new Promise<void>((r) => s.close(() => r())));
    ws?.close();
    await new Promise<void>((r) => aedes.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await Promise.all(closed);
    aedes.removeAllListeners();
    this.servers = { tcp: null, tls: null, http: null, ws: null };
    this.aedes = null;
    for (const d of this.devices.values()) d.client = null;
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
    return { url: `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`, clientId: `${INTERNAL_PREFIX}-${name}`, username: INTERNAL_PREFIX, password: this.internalSecret };
  }

  /**
   * Credentials for a simulated device played inside the gateway's process (a simulated lab):
   * the device's own id and rules, a secret that lives only in this process for this run, never
   * stored nor journaled. Real devices get theirs from `ovn-gateway devices add-mqtt`.
   */
  simulatedDeviceCredentials(deviceId: string): { url: string; password: string } {
    let secret = this.simulated.get(deviceId);
    if (secret === undefined) this.simulated.set(deviceId, (secret = newSecret()));
    return { url: this.internalClientOptions('simulated').url, password: secret };
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
      this.reject('packet-too-large', client?.id ?? address, `${who} sent a packet of ${size < 0 ? 'a malformed length' : `${size} bytes`}, more than maxPacketBytes (${this.cfg.maxPacketBytes}); disconnected`, { address, size });
    });
    this.sockets.add(inner);
    inner.once('close', () => this.sockets.delete(inner));
    conn.on('error', () => {}); // aedes listens too; this one only keeps a reset from being unhandled
    client = aedes.handle(conn);
  }

  // ---- aedes hooks ----

  private readonly preConnect = (client: Client, _packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void => {
    const address = addressOf(client);
    if (this.connectionRate.take(address, this.clock())) return done(null, true);
    this.reject('rate-limited', address, `refused a connection from ${address}: more than ${this.cfg.connectionsPerMinute} a minute (connectionsPerMinute); closed before CONNACK`, { address });
    done(new Error('connection rate exceeded'), false);
  };

  private readonly authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void => {
    const address = addressOf(client);
    const refuse = (reason: RejectionReason, code: 2 | 4 | 5, why: string) => {
      this.reject(reason, address, `refused the connection of ${JSON.stringify(username ?? '')} (client id ${JSON.stringify(client.id)}) from ${address}: ${why} (CONNACK ${code})`, { address, username, clientId: client.id });
      done(authError(why, code), null);
    };
    if (username === undefined || password === undefined) return refuse('anonymous', 5, 'anonymous clients are not allowed: connect with the device id and its secret (ovn-gateway devices add-mqtt)');
    if (username === INTERNAL_PREFIX) {
      if (!sameSecret(password, this.internalSecret)) return refuse('bad-credentials', 4, 'bad user name or password');
      if (!isInternalClient(client.id)) return refuse('client-id-mismatch', 2, `the gateway's clients use client ids starting with ${INTERNAL_PREFIX}`);
      this.principals.set(client, { kind: 'internal' });
      return done(null, true);
    }
    if (!DEVICE_ID.test(username)) return refuse('bad-credentials', 4, 'bad user name or password');
    if (client.id !== username) return refuse('client-id-mismatch', 2, 'the client id must be the device id, the same as the user name');
    const simulated = this.simulated.get(username);
    if (simulated !== undefined && sameSecret(password, simulated)) {
      this.principals.set(client, { kind: 'device', deviceId: username, createdAt: SIMULATED, address });
      return done(null, true);
    }
    this.credentials.verify(username, password).then(
      (r) => {
        if (!r.ok) return refuse('bad-credentials', 4, 'bad user name or password');
        this.principals.set(client, { kind: 'device', deviceId: username, createdAt: r.createdAt, address });
        done(null, true);
      },
      (err: Error) => {
        this.log.error({ err, device: username }, 'checking MQTT credentials failed');
        done(authError('server unavailable', 3), null);
      },
    );
  };

  private readonly authorizePublish = (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void => {
    const principal = client ? this.principals.get(client) : undefined;
    if (!client || !principal) {
      // a will left by a connection of an earlier broker run: nobody vouches for it
      drop(packet);
      return done(null);
    }
    const topic = packet.topic;
    if (principal.kind === 'internal') {
      if (!mayPublish(client.id, topic, this.cfg.baseTopic)) {
        this.reject('publish-denied', client.id, `${client.id}: may not publish on ${topic} ($SYS topics belong to the broker); dropped`, { clientId: client.id, topic });
        drop(packet);
        return done(null);
      }
      this.counters.in++;
      return done(null);
    }
    const deviceId = principal.deviceId;
    if (!mayPublish(deviceId, topic, this.cfg.baseTopic)) {
      this.reject('publish-denied', deviceId, `${deviceId}: may not publish on ${topic} (a device publishes only on ${this.topics.base}/devices/${deviceId}/telemetry, status, badge and reply); dropped`, {
        device: deviceId,
        topic,
      });
      drop(packet);
      return done(null);
    }
    const kind = parseDeviceTopic(topic, this.cfg.baseTopic)!.kind as DeviceTopicKind;
    const parsed = parsePayload(kind, packet.payload);
    if (!parsed.ok) {
      this.reject(parsed.reason, deviceId, `${deviceId}: dropped a message on ${topic}: ${parsed.problem}`, { device: deviceId, topic, problem: parsed.problem });
      drop(packet);
      return done(null);
    }
    // Only the status is state: a retained tap or reply would be replayed to every new subscriber.
    if (packet.retain && kind !== 'status') packet.retain = false;
    this.counters.in++;
    this.accepted.set(packet, { from: client, deviceId, topic, kind, value: parsed.value } as Accepted);
    done(null);
  };

  private readonly authorizeSubscribe = (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    const principal = this.principals.get(client);
    const who = principal?.kind === 'device' ? principal.deviceId : client.id;
    if (!principal || !maySubscribe(client.id, sub.topic, this.cfg.baseTopic)) {
      const own = principal?.kind === 'device' ? ` (a device subscribes only to ${this.topics.command(principal.deviceId)})` : '';
      this.reject('subscribe-denied', who, `${who}: may not subscribe to ${sub.topic}${own}; refused (SUBACK 0x80)`, { clientId: client.id, topic: sub.topic });
      return done(null, null);
    }
    let subs = this.subscriptions.get(client);
    if (!subs) this.subscriptions.set(client, (subs = new Set()));
    if (!subs.has(sub.topic) && subs.size >= this.cfg.maxSubscriptionsPerClient) {
      this.reject('subscription-cap', who, `${who}: holds ${subs.size} subscriptions already (maxSubscriptionsPerClient); refused ${sub.topic} (SUBACK 0x80)`, { clientId: client.id, topic: sub.topic });
      return done(null, null);
    }
    subs.add(sub.topic);
    done(null, sub);
  };

  private readonly authorizeForward = (_client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
    const deadline = this.commandDeadlines.get(packet.payload as Buffer);
    if (deadline !== undefined && this.clock() > deadline) {
      // queued for a device that was away: the gateway has given up on it, the device must not act on it now
      this.counters.expiredCommands++;
      return null;
    }
    this.counters.out++;
    return packet;
  };

  private readonly published = (packet: AedesPublishPacket, _client: Client, done: (err?: Error | null) => void): void => {
    const a = this.accepted.get(packet);
    if (a) {
      this.accepted.delete(packet);
      if (!this.stopping) this.dispatch(a);
    }
    done(null);
  };

  // ---- clients and availability ----

  private onClient(client: Client): void {
    const p = this.principals.get(client);
    if (p?.kind !== 'device') return;
    const dev = this.device(p.deviceId);
    dev.client = client;
    dev.lastClient = client;
    dev.address = p.address;
    dev.reported = 'unknown';
    dev.lastError = null;
    dev.lastMessageMs = this.clock();
    this.log.info({ device: p.deviceId, address: p.address }, `${p.deviceId} connected from ${p.address}`);
    this.updateAvailability(p.deviceId, dev);
  }

  private onClientDisconnect(client: Client): void {
    const p = this.principals.get(client);
    if (p?.kind !== 'device') return;
    const dev = this.devices.get(p.deviceId);
    if (!dev || dev.client !== client) return; // replaced by a newer connection of the same device
    dev.client = null;
    this.log.info({ device: p.deviceId, reason: dev.lastError }, `${p.deviceId} disconnected${dev.lastError ? ` (${dev.lastError})` : ''}`);
    // A device reconnecting takes over from its old connection, which closes just before the
    // new one registers: decided a moment later, that is no flap to offline and back.
    setImmediate(() => {
      if (!this.stopping && this.aedes) this.updateAvailability(p.deviceId, dev);
    });
  }

  private onClientError(client: Client, err: Error): void {
    const p = this.principals.get(client);
    if (p?.kind === 'device') {
      const dev = this.devices.get(p.deviceId);
      if (dev?.client === client) dev.lastError = err.message;
    }
    this.log.debug({ clientId: client.id, err: err.message }, 'client error');
  }

  private device(deviceId: string): DeviceState {
    let dev = this.devices.get(deviceId);
    if (!dev) {
      dev = { client: null, lastClient: null, address: null, reported: 'unknown', session: null, lastMessageMs: this.clock(), lastSeen: null, lastError: null, availability: null };
      this.devices.set(deviceId, dev);
    }
    return dev;
  }

  private updateAvailability(deviceId: string, dev: DeviceState): void {
    let reason = '';
    if (!dev.client) reason = dev.lastError ? `disconnected from the broker (${dev.lastError})` : 'disconnected from the broker';
    else if (dev.reported === 'offline') reason = 'the device said it is offline';
    else if (this.cfg.heartbeatTimeoutS !== undefined && this.clock() - dev.lastMessageMs > this.cfg.heartbeatTimeoutS * 1000) {
      reason = `published nothing for ${this.cfg.heartbeatTimeoutS} s (heartbeatTimeoutS)`;
    }
    const state = reason ? 'offline' : 'online';
    if (dev.availability?.state === state) return;
    const availability: Availability = { state, since: this.now().toISOString(), ...(reason && { reason }) };
    dev.availability = availability;
    (state === 'online' ? this.log.info : this.log.warn).call(this.log, { device: deviceId, reason }, `${deviceId} is ${state}${reason ? `: ${reason}` : ''}`);
    this.publish(this.topics.availability(deviceId), availability, { retain: true, qos: 1 }).catch((err: Error) => this.log.debug({ err }, 'availability not published'));
    this.emitSafely('availability', deviceId, availability);
  }

  private checkHeartbeats(): void {
    for (const [id, dev] of this.devices) if (dev.client) this.updateAvailability(id, dev);
  }

  /** Devices whose credentials were removed or rotated since they connected are disconnected. */
  private checkRevocations(): void {
    const current = new Map(this.credentials.list().map((c) => [c.deviceId, c.createdAt]));
    for (const [id, dev] of this.devices) {
      const p = dev.client ? this.principals.get(dev.client) : undefined;
      if (p?.kind !== 'device' || p.createdAt === SIMULATED || current.get(id) === p.createdAt) continue;
      this.log.warn({ device: id }, `${id}: its MQTT credentials were ${current.has(id) ? 'replaced' : 'removed'}; disconnected`);
      dev.lastError = current.has(id) ? 'credentials replaced' : 'credentials removed';
      dev.client!.close();
    }
  }

  // ---- device messages ----

  private dispatch(a: Accepted): void {
    const dev = this.device(a.deviceId);
    dev.lastMessageMs = this.clock();
    dev.lastSeen = this.now();
    this.counters.dispatched++;
    switch (a.kind) {
      case 'telemetry':
        this.emitSafely('telemetry', a.deviceId, a.value);
        break;
      case 'badge':
        this.emitSafely('badge', a.deviceId, a.value);
        break;
      case 'reply': {
        const key = `${a.deviceId}\n${a.value.transaction}`;
        const p = this.pending.get(key);
        if (p) {
          this.pending.delete(key);
          clearTimeout(p.timer);
          p.resolve(a.value);
        } else {
          this.counters.unmatchedReplies++;
          this.log.debug({ device: a.deviceId, transaction: a.value.transaction }, 'a reply that no command is waiting for (late, or not ours)');
        }
        this.emitSafely('reply', a.deviceId, a.value);
        break;
      }
      case 'status': {
        const s = a.value;
        const stale = a.from !== dev.lastClient || (s.state === 'offline' && s.session !== undefined && dev.session !== null && s.session < dev.session);
        if (stale) {
          // the usual will of a connection that a reconnecting device replaced: counted, not worth a warning
          this.counters.dispatched--;
          this.rejected['stale-status']++;
          this.log.debug({ device: a.deviceId, topic: a.topic, session: s.session, current: dev.session }, `${a.deviceId}: ignored a stale ${s.state} status (from a replaced connection, or an older session)`);
          return;
        }
        if (s.session !== undefined) dev.session = s.session;
        dev.reported = s.state;
        this.emitSafely('status', a.deviceId, s);
        break;
      }
    }
    this.updateAvailability(a.deviceId, dev);
  }

  private emitSafely<E extends keyof BrokerEvents>(event: E, ...args: BrokerEvents[E]): void {
    try {
      (this.emit as (e: E, ...a: BrokerEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      // a failing consumer must not break the broker's message handling
      this.log.error({ err, event, device: args[0] }, `a ${event} listener failed`);
    }
  }

  /** Counts a refusal and logs it, a few a window per device or address. */
  private reject(reason: RejectionReason, key: string, message: string, fields: Record<string, unknown>): void {
    this.rejected[reason]++;
    const suppressed = this.warnings.take(key, this.clock());
    if (suppressed === null) return;
    const more = suppressed > 0 ? ` (${suppressed} more about ${key} not logged before this one)` : '';
    this.log.warn({ ...fields, reason, ...(suppressed > 0 && { suppressed }) }, message + more);
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
    if (!this.devices.get(deviceId)?.client) throw new CommandError(`${deviceId} is not connected to the broker`, deviceId, 'offline');
    const transaction = `${this.runId}-${++this.txCounter}`;
    const cmd = commandSchema.parse({ ...command, transaction });
    const timeoutMs = opts.timeoutMs ?? this.cfg.commandTimeoutMs;
    const payload = Buffer.from(JSON.stringify(cmd));
    this.commandDeadlines.set(payload, this.clock() + timeoutMs);
    const key = `${deviceId}\n${transaction}`;
    const reply = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new CommandError(`no reply from ${deviceId} to ${cmd.command} within ${timeoutMs} ms (transaction ${transaction})`, deviceId, 'timeout'));
      }, timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
    });
    try {
      await this.publishBuffer(this.topics.command(deviceId), payload, { qos: 1 });
    } catch (err) {
      const p = this.pending.get(key);
      if (p) clearTimeout(p.timer);
      this.pending.delete(key);
      reply.catch(() => {});
      throw err;
    }
    return reply;
  }

  /** Publishes a session event (validated) on the sessions topic. */
  publishSessionEvent(event: SessionEvent): Promise<void> {
    return this.publish(this.topics.sessions, sessionEventSchema.parse(event), { qos: 1 });
  }

  isConnected(deviceId: string): boolean {
    return !!this.devices.get(deviceId)?.client;
  }

  availabilityOf(deviceId: string): Availability | null {
    return this.devices.get(deviceId)?.availability ?? null;
  }

  /** What the health topic carries, plus the listeners and each device's link. */
  health(): BrokerHealth {
    const summary = this.summary();
    const links: DeviceLink[] = [...this.devices].map(([deviceId, d]) => ({
      deviceId,
      connected: d.client !== null,
      address: d.address,
      availability: d.availability,
      session: d.session,
      lastSeen: d.lastSeen?.toISOString() ?? null,
    }));
    return { ...summary, listening: this.addresses, devices: { ...summary.devices, links }, unmatchedReplies: this.counters.unmatchedReplies, expiredCommands: this.counters.expiredCommands };
  }

  private summary(): Health {
    let online = 0;
    let connected = 0;
    for (const d of this.devices.values()) {
      if (d.availability?.state === 'online') online++;
      if (d.client) connected++;
    }
    return {
      at: this.now().toISOString(),
      uptimeS: Math.round((this.clock() - this.startedAt) / 1000),
      clients: { connected: this.aedes?.connectedClients ?? 0, devices: connected },
      devices: { online, offline: this.devices.size - online },
      messages: { in: this.counters.in, out: this.counters.out, dispatched: this.counters.dispatched },
      rejected: { ...this.rejected },
    };
  }
}

/** Acknowledged (so the client does not send it again) and delivered to no one. */
function drop(packet: PublishPacket): void {
  packet.topic = DROPPED_TOPIC;
  packet.retain = false;
}

function addressOf(client: Client): string {
  return (client.conn as Partial<GuardedConnection>).remoteAddress ?? 'unknown';
}

function sameSecret(given: Buffer, expected: string): boolean {
  // hashed first, so that the comparison takes the same time whatever the lengths
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

type Parsed = { ok: true; value: unknown } | { ok: false; reason: 'malformed' | 'invalid'; problem: string };

function parsePayload(kind: DeviceTopicKind, payload: Buffer | string): Parsed {
  if (payload.length === 0) return { ok: false, reason: 'malformed', problem: 'empty payload (expected a JSON object)' };
  let text: string;
  try {
    text = typeof payload === 'string' ? payload : utf8.decode(payload);
  } catch {
    return { ok: false, reason: 'malformed', problem: `not UTF-8 text: ${payload.length} bytes of binary data` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const excerpt = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
    return { ok: false, reason: 'malformed', problem: `not JSON (${(err as Error).message}): ${excerpt}` };
  }
  const r = DEVICE_PAYLOADS[kind].safeParse(json);
  if (r.success) return { ok: true, value: r.data };
  const problem = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'payload'}: ${i.message}`).join('; ');
  return { ok: false, reason: 'invalid', problem: `not a valid ${kind} message: ${problem}` };
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

