/**
 * Each device's own broker credentials, in the journal database (`mqtt_credentials`): the
 * user name and client id are the device id, the password a random secret shown once when
 * it is made and stored only as a salted scrypt hash.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Journal } from '../journal/journal.js';
import { DEVICE_ID } from './topics.js';

/**
 * The secrets are 32 random bytes, so no amount of hashing cost is needed against guessing
 * them; the hash keeps a copied database from giving them away. A modest cost (4 MiB, a few
 * milliseconds) keeps a reconnect storm of hundreds of devices cheap on a Pi. The parameters
 * are stored with each hash, so they can be raised without breaking existing ones.
 */
const PARAMS = { N: 1 << 12, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
const SECRET_BYTES = 32;
/** Hashes computed at once: a connection storm must not take every libuv thread (file and DNS work share them). */
const MAX_CONCURRENT = 2;

export class CredentialsError extends Error {}

export interface MqttCredentialInfo {
  deviceId: string;
  createdAt: string;
}

interface Row {
  device_id: string;
  salt: string;
  hash: string;
  created_at: string;
}

/** A new secret: 32 random bytes, base64url (43 characters, safe in any firmware config). */
export function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

let running = 0;
const waiting: (() => void)[] = [];

async function hash(secret: Buffer | string, salt: Buffer, params: ScryptOptions & { N: number; r: number; p: number }): Promise<Buffer> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(secret, salt, KEY_BYTES, { ...params, maxmem: 256 * params.N * params.r + (1 << 20) }, (err, key) => (err ? reject(err) : resolve(key))),
    );
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** `scrypt:N:r:p:<hex>` */
function encode(key: Buffer): string {
  return `scrypt:${PARAMS.N}:${PARAMS.r}:${PARAMS.p}:${key.toString('hex')}`;
}

function decode(stored: string): { params: { N: number; r: number; p: number }; key: Buffer } | null {
  const m = /^scrypt:(\d+):(\d+):(\d+):([0-9a-f]+)$/.exec(stored);
  if (!m) return null;
  return { params: { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) }, key: Buffer.from(m[4]!, 'hex') };
}

/** Compared against when the device is unknown, so that a wrong id takes as long as a wrong secret. */
const DUMMY = { salt: randomBytes(SALT_BYTES), key: randomBytes(KEY_BYTES) };

export class MqttCredentials {
  constructor(private readonly journal: Journal) {}

  /**
   * Makes credentials for a device and returns its secret, which is not stored and cannot be
   * shown again. A device that has credentials already keeps them unless `rotate` (the old
   * secret then stops working). Journaled as `mqtt.credentials-added`, without the secret.
   */
  async add(deviceId: string, opts: { rotate?: boolean } = {}): Promise<{ secret: string; rotated: boolean }> {
    if (!DEVICE_ID.test(deviceId)) throw new CredentialsError(`"${deviceId}" is not a device id: lowercase letters, digits and dashes, starting with a letter or digit`);
    const exists = this.get(deviceId) !== null;
    if (exists && !opts.rotate) throw new CredentialsError(`${deviceId} has MQTT credentials already; --rotate replaces them (the old secret stops working)`);
    const secret = newSecret();
    const salt = randomBytes(SALT_BYTES);
    const stored = encode(await hash(secret, salt, PARAMS));
    this.journal.durably(() => {
      this.journal
        .prepared('INSERT INTO mqtt_credentials (device_id, salt, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET salt = excluded.salt, hash = excluded.hash, created_at = excluded.created_at')
        .run(deviceId, salt.toString('hex'), stored, new Date().toISOString());
      this.journal.record('mqtt.credentials-added', deviceId, { rotated: exists });
    });
    return { secret, rotated: exists };
  }

  /** Removes a device's credentials; false when it had none. Journaled as `mqtt.credentials-removed`. */
  remove(deviceId: string): boolean {
    return this.journal.durably(() => {
      const removed = this.journal.prepared('DELETE FROM mqtt_credentials WHERE device_id = ?').run(deviceId).changes > 0;
      if (removed) this.journal.record('mqtt.credentials-removed', deviceId, {});
      return removed;
    });
  }

  get(deviceId: string): MqttCredentialInfo | null {
    const row = this.journal.prepared('SELECT device_id, created_at FROM mqtt_credentials WHERE device_id = ?').get(deviceId) as Pick<Row, 'device_id' | 'created_at'> | undefined;
    return row ? { deviceId: row.device_id, createdAt: row.created_at } : null;
  }

  list(): MqttCredentialInfo[] {
    return (this.journal.prepared('SELECT device_id, created_at FROM mqtt_credentials ORDER BY device_id').all() as Pick<Row, 'device_id' | 'created_at'>[]).map((r) => ({
      deviceId: r.device_id,
      createdAt: r.created_at,
    }));
  }

  /**
   * Whether `secret` is the device's; on success, the credentials' creation time (it changes
   * when they are rotated). Unknown devices cost the same time as a wrong secret.
   */
  async verify(deviceId: string, secret: Buffer | string): Promise<{ ok: true; createdAt: string } | { ok: false }> {
    const row = this.journal.prepared('SELECT device_id, salt, hash, created_at FROM mqtt_credentials WHERE device_id = ?').get(deviceId) as Row | undefined;
    const stored = row ? decode(row.hash) : null;
    const salt = row && stored ? Buffer.from(row.salt, 'hex') : DUMMY.salt;
    const expected = stored?.key ?? DUMMY.key;
    const key = await hash(secret, salt, stored?.params ?? PARAMS);
    const match = key.length === expected.length && timingSafeEqual(key, expected);
    return match && row && stored ? { ok: true, createdAt: row.created_at } : { ok: false };
  }
}
