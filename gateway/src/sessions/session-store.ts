/**
 * Where sessions are written: the meters of open sessions in `session_checkpoints` (updated
 * in place every few seconds, not chained: a crash loses at most one interval), and the close
 * of a session — its `session.ended` event, its charge and the removal of its checkpoint — in one
 * transaction whose commit is fsynced, so a closed session survives a power cut right after.
 */
import type { Billing, SessionRecord } from '../billing/billing.js';
import type { Journal } from '../journal/journal.js';

export interface CheckpointRow<T> {
  at: string;
  data: T;
}

export class SessionStore {
  private readonly upsert;
  private readonly select;
  private readonly remove;

  constructor(
    private readonly journal: Journal,
    private readonly billing: Billing | null = null,
  ) {
    const db = journal.db;
    this.upsert = db.prepare(`INSERT INTO session_checkpoints (session_id, tool_id, at, data) VALUES (?, ?, ?, ?)
      ON CONFLICT (session_id) DO UPDATE SET at = excluded.at, data = excluded.data`);
    this.select = db.prepare('SELECT at, data FROM session_checkpoints WHERE session_id = ?');
    this.remove = db.prepare('DELETE FROM session_checkpoints WHERE session_id = ?');
  }

  checkpoint(sessionId: string, toolId: string, data: unknown, at = new Date()): void {
    this.upsert.run(sessionId, toolId, at.toISOString(), JSON.stringify(data));
  }

  lastCheckpoint<T>(sessionId: string): CheckpointRow<T> | null {
    const row = this.select.get(sessionId) as { at: string; data: string } | undefined;
    return row ? { at: row.at, data: JSON.parse(row.data) as T } : null;
  }

  /**
   * Journals `session.ended` for each, charges it and drops its checkpoint, in one fsynced
   * transaction; kept in memory and written later when the storage refuses it (disk full).
   */
  close(toolId: string, ended: readonly (SessionRecord & Record<string, unknown>)[]): void {
    this.journal.durablyOrLater(() => {
      for (const e of ended) {
        this.journal.record('session.ended', toolId, { ...e });
        this.billing?.charge(e);
        this.remove.run(e.sessionId);
      }
    });
  }
}
