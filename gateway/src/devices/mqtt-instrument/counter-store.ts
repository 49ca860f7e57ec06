import type Database from 'better-sqlite3';
import { MeterStore } from '../metering-node/meter-store.js';
import { COUNTERS, type CounterState } from './counters.js';

/**
 * Keeps each instrument's counter state in the journal database, in the rows the metering
 * nodes' meters use (with the message sequence number), so a gateway restart neither loses nor
 * repeats counts.
 */
export class CounterStore {
  private readonly rows: MeterStore;

  constructor(db: Database.Database) {
    this.rows = new MeterStore(db);
  }

  load(deviceId: string): CounterState | null {
    const row = this.rows.load(deviceId, COUNTERS);
    // a row of another device kind under this id (the id was reused) has no seq: start afresh
    if (row?.seq === undefined) return null;
    return { ...row, seq: row.seq };
  }

  save(deviceId: string, state: CounterState, at: Date): void {
    this.rows.save(deviceId, state, at);
  }
}
