/**
 * Who a connection is, decided in aedes' `preConnect` and `authenticate` hooks. Connection
 * attempts are limited per address before any password is checked. A device proves itself
 * with the secret of its stored credentials (credentials.ts): CONNACK 4 for a wrong one, 5 for
 * none, 2 when the client id is not the user name. The gateway's own clients, and simulated
 * devices played inside its process, hold secrets that live only in this process for this run.
 * The principal left on each client is what the topic rules and availability go by.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthenticateError, Client, ConnectPacket } from 'aedes';
import type { Logger } from '../log.js';
import type { BrokerConfig } from './config.js';
import { newSecret, type MqttCredentials } from './credentials.js';
import { RateLimit } from './limits.js';
import type { BrokerMetrics } from './metrics.js';
import { addressOf } from './packet-guard.js';
import type { RejectionReason } from './schemas.js';
import { DEVICE_ID, INTERNAL_PREFIX, isInternalClient } from './topics.js';

/** The `createdAt` of a simulated device's principal: its credentials are not in the database, so never revoked by it. */
const SIMULATED = 'simulated';

export type Principal = { kind: 'internal' } | { kind: 'device'; deviceId: string; createdAt: string; address: string };

const authError = (message: string, returnCode: 2 | 3 | 4 | 5): AuthenticateError => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

export class Authentication {
  private readonly internalSecret = randomBytes(32).toString('base64url');
  /** Secrets of simulated devices played inside this process, for this run only. */
  private readonly simulated = new Map<string, string>();
  private readonly principals = new WeakMap<Client, Principal>();
  private readonly connectionRate: RateLimit;

  constructor(
    private readonly cfg: BrokerConfig,
    private readonly credentials: MqttCredentials,
    private readonly metrics: BrokerMetrics,
    private readonly log: Logger,
    private readonly clock: () => number,
  ) {
    this.connectionRate = new RateLimit(cfg.connectionsPerMinute);
  }

  /** Who an authenticated client is; undefined before (or without) authentication. */
  principalOf(client: Client): Principal | undefined {
    return this.principals.get(client);
  }

  /** The login of one of the gateway's own clients: it may publish and subscribe anywhere (but `$SYS/…`). */
  internalLogin(name: string): { clientId: string; username: string; password: string } {
    return { clientId: `${INTERNAL_PREFIX}-${name}`, username: INTERNAL_PREFIX, password: this.internalSecret };
  }

  /** A simulated device's secret, made the first time it is asked for, never stored nor journaled. */
  simulatedSecret(deviceId: string): string {
    let secret = this.simulated.get(deviceId);
    if (secret === undefined) this.simulated.set(deviceId, (secret = newSecret()));
    return secret;
  }

  readonly preConnect = (client: Client, _packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void => {
    const address = addressOf(client);
    if (this.connectionRate.take(address, this.clock())) return done(null, true);
    this.metrics.reject('rate-limited', address, `refused a connection from ${address}: more than ${this.cfg.connectionsPerMinute} a minute (connectionsPerMinute); closed before CONNACK`, { address });
    done(new Error('connection rate exceeded'), false);
  };

  readonly authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void => {
    const address = addressOf(client);
    const refuse = (reason: RejectionReason, code: 2 | 4 | 5, why: string) => {
      this.metrics.reject(reason, address, `refused the connection of ${JSON.stringify(username ?? '')} (client id ${JSON.stringify(client.id)}) from ${address}: ${why} (CONNACK ${code})`, { address, username, clientId: client.id });
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

  /** The devices' connections whose credentials were removed or rotated since they connected, and why (each logged). */
  *revoked(connected: Iterable<Client>): Generator<{ client: Client; reason: string }> {
    const current = new Map(this.credentials.list().map((c) => [c.deviceId, c.createdAt]));
    for (const client of connected) {
      const p = this.principals.get(client);
      if (p?.kind !== 'device' || p.createdAt === SIMULATED || current.get(p.deviceId) === p.createdAt) continue;
      this.log.warn({ device: p.deviceId }, `${p.deviceId}: its MQTT credentials were ${current.has(p.deviceId) ? 'replaced' : 'removed'}; disconnected`);
      yield { client, reason: current.has(p.deviceId) ? 'credentials replaced' : 'credentials removed' };
    }
  }
}

function sameSecret(given: Buffer, expected: string): boolean {
  // hashed first, so that the comparison takes the same time whatever the lengths
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
