import type Database from 'better-sqlite3';
import type { MeterState } from './meter.js';

/** What a stored meter row holds: the boot, the last counters of that boot, the totals over every boot. */
export interface StoredMeter<Last = MeterState['last'], Total = MeterState['total']> {
  bootId: number;
  last: Last;
  total: Total;
}

/**
 * Keeps each device's meter state in the journal database (`node_meters`, one row a device),
 * so a gateway restart neither loses nor repeats counts. Metering nodes store their
 * MeterState; other metering devices store their own counters in the same shape.
 */
export class MeterStore<Last = MeterState['last'], Total = MeterState['total']> {
  private readonly get: Database.Statement<[string], { boot_id: number; last: string; total: string }>;
  private readonly put: Database.Statement<[string, number, string, string, string]>;

  constructor(db: Database.Database) {
    this.get = db.prepare('SELECT boot_id, last, total FROM node_meters WHERE device_id = ?');
    this.put = db.prepare(
      `INSERT INTO node_meters (device_id, boot_id, last, total, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET boot_id = excluded.boot_id, last = excluded.last, total = excluded.total, updated_at = excluded.updated_at`,
    );
  }

  load(deviceId: string): StoredMeter<Last, Total> | null {
    const row = this.get.get(deviceId);
    return row ? { bootId: row.boot_id, last: JSON.parse(row.last) as Last, total: JSON.parse(row.total) as Total } : null;
  }

  save(deviceId: string, state: StoredMeter<Last, Total>, at: Date): void {
    this.put.run(deviceId, state.bootId, JSON.stringify(state.last), JSON.stringify(state.total), at.toISOString());
  }
}
