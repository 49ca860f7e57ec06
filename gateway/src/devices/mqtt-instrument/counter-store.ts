import type Database from 'better-sqlite3';
import type { CounterState } from './counters.js';

/**
 * Keeps each instrument's counter state in the journal database (the table the metering
 * nodes' meters use, one row a device), so a gateway restart neither loses nor repeats counts.
 */
export class CounterStore {
  private readonly get: Database.Statement<[string], { boot_id: number; last: string; total: string }>;
  private readonly put: Database.Statement<[string, number, string, string, string]>;

  constructor(db: Database.Database) {
    this.get = db.prepare('SELECT boot_id, last, total FROM node_meters WHERE device_id = ?');
    this.put = db.prepare(
      `INSERT INTO node_meters (device_id, boot_id, last, total, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET boot_id = excluded.boot_id, last = excluded.last, total = excluded.total, updated_at = excluded.updated_at`,
    );
  }

  load(deviceId: string): CounterState | null {
    const row = this.get.get(deviceId);
    if (!row) return null;
    const { seq, ...last } = JSON.parse(row.last) as CounterState['last'] & { seq?: number };
    // a row of another device kind under this id (the id was reused) has no seq: start afresh
    if (typeof seq !== 'number') return null;
    return { bootId: row.boot_id, seq, last, total: JSON.parse(row.total) as CounterState['total'] };
  }

  save(deviceId: string, state: CounterState, at: Date): void {
    this.put.run(deviceId, state.bootId, JSON.stringify({ ...state.last, seq: state.seq }), JSON.stringify(state.total), at.toISOString());
  }
}
