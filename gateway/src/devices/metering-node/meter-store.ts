import type Database from 'better-sqlite3';
import type { BootMeter, PastBoot, Track } from './meter.js';

/** What a meter row's `last` column holds: the current boot's counters, when it was last heard of, the boots before it; a networked instrument's seq too. */
interface StoredBoot<N extends string> {
  tracks: Record<N, Track>;
  seenAt: number;
  past: PastBoot<N>[];
  seq?: number;
}

/** The `last` column of a row saved by an earlier version: the last counters alone (and an instrument's seq and past boot ids). */
type EarlierLast = Record<string, number> & { seq?: number; pastBootIds?: number[] };

export type StoredMeter<N extends string> = BootMeter<N> & { seq?: number };

/**
 * Keeps each metering device's meter state in the journal database (`node_meters`, one row a
 * device), so a gateway restart neither loses nor repeats counts. Clock readings in the state
 * are the gateway's steady clock (clock.ts), which carries on from one run to the next.
 */
export class MeterStore {
  private readonly get: Database.Statement<[string], { boot_id: number; last: string; total: string; updated_at: string }>;
  private readonly put: Database.Statement<[string, number, string, string, string]>;

  constructor(db: Database.Database) {
    this.get = db.prepare('SELECT boot_id, last, total, updated_at FROM node_meters WHERE device_id = ?');
    this.put = db.prepare(
      `INSERT INTO node_meters (device_id, boot_id, last, total, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET boot_id = excluded.boot_id, last = excluded.last, total = excluded.total, updated_at = excluded.updated_at`,
    );
  }

  /** The device's state, or null when there is none with these counters (a row of another kind of device under a reused id). */
  load<N extends string>(deviceId: string, names: readonly N[]): StoredMeter<N> | null {
    const row = this.get.get(deviceId);
    if (!row) return null;
    const last = JSON.parse(row.last) as object;
    const total = JSON.parse(row.total) as Record<N, number>;
    if (!names.every((n) => typeof total[n] === 'number')) return null;
    if ('tracks' in last) {
      const boot = last as StoredBoot<N>;
      return { bootId: row.boot_id, tracks: boot.tracks, total, seenAt: boot.seenAt, past: boot.past, ...(boot.seq !== undefined && { seq: boot.seq }) };
    }
    // An earlier version's row: each counter's last good value dates from the row's last update, with no allowance left.
    const at = Date.parse(row.updated_at);
    const earlier = last as EarlierLast;
    return {
      bootId: row.boot_id,
      tracks: Object.fromEntries(names.map((n) => [n, { value: earlier[n] ?? 0, at, creditS: 0 }])) as Record<N, Track>,
      total,
      seenAt: at,
      past: (earlier.pastBootIds ?? []).map((bootId) => ({ bootId, last: null })),
      ...(earlier.seq !== undefined && { seq: earlier.seq }),
    };
  }

  save<N extends string>(deviceId: string, state: StoredMeter<N>, at: Date): void {
    const last: StoredBoot<N> = { tracks: state.tracks, seenAt: state.seenAt, past: state.past, ...(state.seq !== undefined && { seq: state.seq }) };
    this.put.run(deviceId, state.bootId, JSON.stringify(last), JSON.stringify(state.total), at.toISOString());
  }
}
