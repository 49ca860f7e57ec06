import type Database from 'better-sqlite3';
import { MeterStore } from '../metering-node/meter-store.js';
import type { CounterState } from './counters.js';

/** What is kept beside the last counters: the message sequence number and the past boots. */
type StoredLast = CounterState['last'] & { seq?: number; pastBootIds?: number[] };

/**
 * Keeps each instrument's counter state in the journal database, in the rows the metering
 * nodes' meters use (the message sequence number and the past boots kept with the last
 * counters), so a gateway restart neither loses nor repeats counts. Rows saved before the past
 * boots were kept load with none.
 */
export class CounterStore {
  private readonly rows: MeterStore<StoredLast, CounterState['total']>;

  constructor(db: Database.Database) {
    this.rows = new MeterStore(db);
  }

  load(deviceId: string): CounterState | null {
    const row = this.rows.load(deviceId);
    if (!row) return null;
    const { seq, pastBootIds, ...last } = row.last;
    // a row of another device kind under this id (the id was reused) has no seq: start afresh
    if (typeof seq !== 'number') return null;
    return { bootId: row.bootId, seq, last, total: row.total, pastBootIds: Array.isArray(pastBootIds) ? pastBootIds : [] };
  }

  save(deviceId: string, state: CounterState, at: Date): void {
    this.rows.save(deviceId, { bootId: state.bootId, last: { ...state.last, seq: state.seq, pastBootIds: state.pastBootIds }, total: state.total }, at);
  }
}
