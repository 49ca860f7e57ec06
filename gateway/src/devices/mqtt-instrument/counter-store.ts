import type Database from 'better-sqlite3';
import { MeterStore } from '../metering-node/meter-store.js';
import type { CounterState } from './counters.js';

/**
 * Keeps each instrument's counter state in the journal database, in the rows the metering
 * nodes' meters use (the message sequence number kept with the last counters), so a gateway
 * restart neither loses nor repeats counts.
 */
export class CounterStore {
  private readonly rows: MeterStore<CounterState['last'] & { seq?: number }, CounterState['total']>;

  constructor(db: Database.Database) {
    this.rows = new MeterStore(db);
  }

  load(deviceId: string): CounterState | null {
    const row = this.rows.load(deviceId);
    if (!row) return null;
    const { seq, ...last } = row.last;
    // a row of another device kind under this id (the id was reused) has no seq: start afresh
    if (typeof seq !== 'number') return null;
    return { bootId: row.bootId, seq, last, total: row.total };
  }

  save(deviceId: string, state: CounterState, at: Date): void {
    this.rows.save(deviceId, { bootId: state.bootId, last: { ...state.last, seq: state.seq }, total: state.total }, at);
  }
}
