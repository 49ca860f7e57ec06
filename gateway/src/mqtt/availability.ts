/**
 * Whether each device is there. A device is online while it is connected, has not said it is
 * offline (its retained status, or its last will) and, with heartbeatTimeoutS, has published
 * lately; the broker publishes the availability (retained) only when it changes. A device
 * reconnecting replaces its old connection: the will of the replaced one, or an offline status
 * of an older session, is stale and ignored.
 */
import type { Client } from 'aedes';
import type { Logger } from '../log.js';
import type { Authentication } from './authentication.js';
import type { BrokerConfig } from './config.js';
import type { BrokerMetrics } from './metrics.js';
import type { Availability, Status } from './schemas.js';

/** A device as the broker sees it, for the health API. */
export interface DeviceLink {
  deviceId: string;
  connected: boolean;
  address: string | null;
  availability: Availability | null;
  session: number | null;
  lastSeen: string | null;
}

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

export class DeviceAvailability {
  private readonly devices = new Map<string, DeviceState>();

  constructor(
    private readonly cfg: BrokerConfig,
    private readonly auth: Authentication,
    private readonly metrics: BrokerMetrics,
    private readonly log: Logger,
    /** Monotonic milliseconds, for the heartbeat. */
    private readonly clock: () => number,
    private readonly now: () => Date,
    private readonly broker: {
      /** False while the broker stops: the disconnections it causes are no news. */
      running(): boolean;
      /** A device's availability changed: to be published and told. */
      changed(deviceId: string, availability: Availability): void;
    },
  ) {}

  /** aedes' `client` event: a device connected (it replaces any older connection of its own). */
  readonly onClient = (client: Client): void => {
    const p = this.auth.principalOf(client);
    if (p?.kind !== 'device') return;
    const dev = this.device(p.deviceId);
    dev.client = client;
    dev.lastClient = client;
    dev.address = p.address;
    dev.reported = 'unknown';
    dev.lastError = null;
    dev.lastMessageMs = this.clock();
    this.log.info({ device: p.deviceId, address: p.address }, `${p.deviceId} connected from ${p.address}`);
    this.decide(p.deviceId, dev);
  };

  readonly onClientDisconnect = (client: Client): void => {
    const p = this.auth.principalOf(client);
    if (p?.kind !== 'device') return;
    const dev = this.devices.get(p.deviceId);
    if (!dev || dev.client !== client) return; // replaced by a newer connection of the same device
    dev.client = null;
    this.log.info({ device: p.deviceId, reason: dev.lastError }, `${p.deviceId} disconnected${dev.lastError ? ` (${dev.lastError})` : ''}`);
    // A device reconnecting takes over from its old connection, which closes just before the
    // new one registers: decided a moment later, that is no flap to offline and back.
    setImmediate(() => {
      if (this.broker.running()) this.decide(p.deviceId, dev);
    });
  };

  readonly onClientError = (client: Client, err: Error): void => {
    this.failed(client, err.message);
    this.log.debug({ clientId: client.id, err: err.message }, 'client error');
  };

  /** Why a device's connection ends (an error, revoked credentials), for the log line and the reason when it has ended. */
  failed(client: Client, reason: string): void {
    const p = this.auth.principalOf(client);
    if (p?.kind !== 'device') return;
    const dev = this.devices.get(p.deviceId);
    if (dev?.client === client) dev.lastError = reason;
  }

  /** A valid message from the device: it is alive. */
  heard(deviceId: string): void {
    const dev = this.device(deviceId);
    dev.lastMessageMs = this.clock();
    dev.lastSeen = this.now();
  }

  /** The status a device published; false, counted and set aside, when it is stale. */
  reported(from: Client, deviceId: string, topic: string, status: Status): boolean {
    const dev = this.device(deviceId);
    const stale = from !== dev.lastClient || (status.state === 'offline' && status.session !== undefined && dev.session !== null && status.session < dev.session);
    if (stale) {
      // the usual will of a connection that a reconnecting device replaced: counted, not worth a warning
      this.metrics.rejected['stale-status']++;
      this.log.debug({ device: deviceId, topic, session: status.session, current: dev.session }, `${deviceId}: ignored a stale ${status.state} status (from a replaced connection, or an older session)`);
      return false;
    }
    if (status.session !== undefined) dev.session = status.session;
    dev.reported = status.state;
    return true;
  }

  /** Decides the device's availability again, after what it sent. */
  update(deviceId: string): void {
    this.decide(deviceId, this.device(deviceId));
  }

  /** Connected devices that fell silent past heartbeatTimeoutS go offline. */
  checkHeartbeats(): void {
    for (const [id, dev] of this.devices) if (dev.client) this.decide(id, dev);
  }

  /** The devices' current connections. */
  *clients(): Generator<Client> {
    for (const dev of this.devices.values()) if (dev.client) yield dev.client;
  }

  /** The broker has stopped: no connection is left. */
  disconnectedAll(): void {
    for (const d of this.devices.values()) d.client = null;
  }

  isConnected(deviceId: string): boolean {
    return !!this.devices.get(deviceId)?.client;
  }

  availabilityOf(deviceId: string): Availability | null {
    return this.devices.get(deviceId)?.availability ?? null;
  }

  counts(): { online: number; offline: number; connected: number } {
    let online = 0;
    let connected = 0;
    for (const d of this.devices.values()) {
      if (d.availability?.state === 'online') online++;
      if (d.client) connected++;
    }
    return { online, offline: this.devices.size - online, connected };
  }

  links(): DeviceLink[] {
    return [...this.devices].map(([deviceId, d]) => ({
      deviceId,
      connected: d.client !== null,
      address: d.address,
      availability: d.availability,
      session: d.session,
      lastSeen: d.lastSeen?.toISOString() ?? null,
    }));
  }

  private device(deviceId: string): DeviceState {
    let dev = this.devices.get(deviceId);
    if (!dev) {
      dev = { client: null, lastClient: null, address: null, reported: 'unknown', session: null, lastMessageMs: this.clock(), lastSeen: null, lastError: null, availability: null };
      this.devices.set(deviceId, dev);
    }
    return dev;
  }

  private decide(deviceId: string, dev: DeviceState): void {
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
    this.broker.changed(deviceId, availability);
  }
}
