/**
 * The ledger outbox (DOMAIN.md §7): every journal event the ledger must know becomes
 * Valueflows records, written to `outbox` in the very transaction that appends the event,
 * and a drain loop delivers them — in order per tool, batched, at least once with stable ids
 * (so exactly once at the ledger), with exponential backoff and jitter, across restarts.
 *
 * Outcomes: delivered; retry (the tool's queue waits, then goes on where it was); permanent
 * (the record goes to the dead letters, visible in health and the CLI, never skipped in
 * silence; the tool's later records go on). A request whose answer never came may have
 * reached the ledger: before sending those records again the drain asks the ledger which of
 * them it already holds (the unknown outcome is resolved by the id, not by hope). A record is
 * in doubt from the moment it is sent, so a gateway stopped mid-request asks too.
 */
import { recordsFor } from '../../../ledger-client/src/mapping.js';
import type { LedgerRecord, LedgerTransport, Outcome } from '../../../ledger-client/src/types.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { LedgerConfig } from './config.js';

export interface OutboxRow {
  seq: number;
  recordId: string;
  eventId: number;
  toolId: string;
  record: LedgerRecord;
  state: 'pending' | 'delivered' | 'dead';
  attempts: number;
  unknown: boolean;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface OutboxHealth {
  backlog: number;
  oldestPendingAgeS: number | null;
  lastDeliveredAt: string | null;
  delivered: number;
  deadLetters: number;
  /** Why health says degraded: the backlog or its age passed the configured alarm. */
  alarm: string | null;
  /** Tools whose queue waits before the next try, and until when. */
  waiting: { toolId: string; until: string; lastError: string | null }[];
}

interface RawRow {
  seq: number;
  record_id: string;
  event_id: number;
  tool_id: string;
  record: string;
  state: OutboxRow['state'];
  attempts: number;
  unknown: number;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

const toRow = (r: RawRow): OutboxRow => ({
  seq: r.seq,
  recordId: r.record_id,
  eventId: r.event_id,
  toolId: r.tool_id,
  record: JSON.parse(r.record) as LedgerRecord,
  state: r.state,
  attempts: r.attempts,
  unknown: r.unknown === 1,
  lastError: r.last_error,
  createdAt: r.created_at,
  deliveredAt: r.delivered_at,
});

/** The outbox table: writing (inside the journal's transactions) and reading. */
export class Outbox {
  private readonly insert;
  private readonly insertDead;
  private readonly toolsStmt;

  constructor(
    private readonly journal: Journal,
    private readonly ctx: { gatewayId: string; currency: string; minorUnit: number },
  ) {
    this.insert = journal.db.prepare('INSERT OR IGNORE INTO outbox (record_id, event_id, tool_id, record, created_at) VALUES (?, ?, ?, ?, ?)');
    this.insertDead = journal.db.prepare(`INSERT OR IGNORE INTO outbox (record_id, event_id, tool_id, record, created_at, state, last_error) VALUES (?, ?, ?, ?, ?, 'dead', ?)`);
    this.toolsStmt = journal.db
      .prepare(
        `WITH RECURSIVE tools (tool_id) AS (
           SELECT (SELECT MIN(tool_id) FROM outbox WHERE state = 'pending')
           UNION ALL
           SELECT (SELECT MIN(tool_id) FROM outbox WHERE state = 'pending' AND tool_id > tools.tool_id) FROM tools WHERE tools.tool_id IS NOT NULL
         )
         SELECT tool_id FROM tools WHERE tool_id IS NOT NULL`,
      )
      .pluck();
  }

  /** From now on, every event the ledger must know is written to the outbox with it. */
  attach(onWrite: () => void): void {
    this.journal.tap((e) => {
      let records: LedgerRecord[];
      try {
        records = recordsFor(e, this.ctx);
      } catch (err) {
        // An event the mapping cannot read must not undo the session it reports: it becomes a dead letter for a person.
        this.insertDead.run(`unmapped:${e.id}`, e.id, e.deviceId ?? '', JSON.stringify(e), e.at, `cannot map ${e.kind} event ${e.id} to ledger records: ${(err as Error).message}`);
        return;
      }
      for (const r of records) this.insert.run(r.id, e.id, r.toolId, JSON.stringify(r), r.created);
      if (records.length) onWrite();
    });
  }

  private get db() {
    return this.journal.db;
  }

  /** The oldest pending records of a tool, in order. */
  pending(toolId: string, limit: number): OutboxRow[] {
    return (this.journal.prepared(`SELECT * FROM outbox WHERE state = 'pending' AND tool_id = ? ORDER BY seq LIMIT ?`).all(toolId, limit) as RawRow[]).map(toRow);
  }

  /**
   * The tools with pending records, in order of tool id. One index seek per tool (the next
   * tool id after the last), not a DISTINCT over every pending record: the drain asks before
   * each round, and that scan grew with the backlog (7-20 ms a round at 100,000 records).
   */
  toolsWithPending(): string[] {
    return this.toolsStmt.all() as string[];
  }

  /**
   * Marks a batch in doubt before it is sent (a tool's pending records from one seq to another):
   * a gateway that stops before their outcome is settled asks the ledger for them at its next
   * start rather than sending them again, which a ledger that does not deduplicate (any
   * Valueflows GraphQL server) would store twice.
   */
  sending(toolId: string, fromSeq: number, toSeq: number): void {
    this.journal.prepared(`UPDATE outbox SET unknown = 1 WHERE state = 'pending' AND tool_id = ? AND seq BETWEEN ? AND ? AND unknown = 0`).run(toolId, fromSeq, toSeq);
  }

  /** Applies a batch's outcomes in one transaction. */
  settle(outcomes: readonly Outcome[], now: Date): void {
    const delivered = this.journal.prepared(`UPDATE outbox SET state = 'delivered', delivered_at = ?, unknown = 0, attempts = attempts + 1 WHERE record_id = ?`);
    const dead = this.journal.prepared(`UPDATE outbox SET state = 'dead', last_error = ?, unknown = 0, attempts = attempts + 1 WHERE record_id = ?`);
    const retry = this.journal.prepared(`UPDATE outbox SET unknown = 1, last_error = ?, attempts = attempts + 1 WHERE record_id = ?`);
    this.db.transaction(() => {
      for (const o of outcomes) {
        if (o.kind === 'delivered') delivered.run(now.toISOString(), o.id);
        else if (o.kind === 'permanent') dead.run(o.message, o.id);
        else retry.run(o.message, o.id);
      }
    })();
  }

  deadLetters(): OutboxRow[] {
    return (this.journal.prepared(`SELECT * FROM outbox WHERE state = 'dead' ORDER BY seq`).all() as RawRow[]).map(toRow);
  }

  /** Puts a dead letter back in its tool's queue (after the cause was fixed at the ledger or in the config). */
  retryDead(seq: number): OutboxRow {
    const r = this.journal.prepared(`UPDATE outbox SET state = 'pending', unknown = 1 WHERE seq = ? AND state = 'dead'`).run(seq);
    if (r.changes === 0) throw new Error(`no dead letter ${seq} (see ovn-gateway ledger dead-letters)`);
    return toRow(this.journal.prepared('SELECT * FROM outbox WHERE seq = ?').get(seq) as RawRow);
  }

  /**
   * Puts every dead letter back in its queue, in their original order: records that depend on
   * a refused one (a session's events on its Process) were refused with it and go again after it.
   */
  retryAllDead(): number {
    return this.journal.prepared(`UPDATE outbox SET state = 'pending', unknown = 1 WHERE state = 'dead'`).run().changes;
  }

  /** Records created in [from, to), in order: what the gateway says the ledger should hold. */
  recordsBetween(from: string, to: string): LedgerRecord[] {
    return (this.journal.prepared(`SELECT record FROM outbox WHERE created_at >= ? AND created_at < ? AND state != 'dead' ORDER BY seq`).pluck().all(from, to) as string[]).map((r) => JSON.parse(r) as LedgerRecord);
  }

  counts(): { pending: number; delivered: number; dead: number; oldestPending: string | null; lastDeliveredAt: string | null } {
    const c = this.journal
      .prepared(
        `SELECT SUM(state = 'pending') AS pending, SUM(state = 'delivered') AS delivered, SUM(state = 'dead') AS dead,
                MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldestPending, MAX(delivered_at) AS lastDeliveredAt FROM outbox`,
      )
      .get() as { pending: number | null; delivered: number | null; dead: number | null; oldestPending: string | null; lastDeliveredAt: string | null };
    return { pending: c.pending ?? 0, delivered: c.delivered ?? 0, dead: c.dead ?? 0, oldestPending: c.oldestPending, lastDeliveredAt: c.lastDeliveredAt };
  }
}

/** Delivers the outbox: one loop, each tool's queue in order, waiting tools skipped until their time. */
export class OutboxDrain {
  private running = false;
  private stopping = false;
  private wake: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;
  private readonly backoff = new Map<string, { until: number; delayMs: number }>();
  private alarmed: string | null = null;

  constructor(
    readonly outbox: Outbox,
    private readonly transport: LedgerTransport,
    private readonly cfg: Pick<LedgerConfig, 'batchSize' | 'backoff' | 'alarm'>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** New records were written: deliver them now rather than at the next timer. */
  kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Stops after the batch in flight (its outcome is settled, or left unknown for the next start). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.kick();
    await this.loop;
  }

  health(): OutboxHealth {
    const c = this.outbox.counts();
    const age = c.oldestPending ? Math.max(0, Math.round((this.now() - Date.parse(c.oldestPending)) / 1000)) : null;
    const alarm =
      c.pending > this.cfg.alarm.backlog
        ? `${c.pending} records wait for the ledger (alarm above ${this.cfg.alarm.backlog})`
        : age !== null && age > this.cfg.alarm.ageS
          ? `the oldest record has waited ${age} s for the ledger (alarm above ${this.cfg.alarm.ageS} s)`
          : null;
    if (alarm !== this.alarmed) {
      if (alarm) this.log.warn({ backlog: c.pending, oldestPendingAgeS: age }, alarm);
      else this.log.info('the ledger backlog is back under its alarm');
      this.alarmed = alarm;
    }
    return {
      backlog: c.pending,
      oldestPendingAgeS: age,
      lastDeliveredAt: c.lastDeliveredAt,
      delivered: c.delivered,
      deadLetters: c.dead,
      alarm,
      waiting: [...this.backoff].filter(([, b]) => b.until > this.now()).map(([toolId, b]) => ({ toolId, until: new Date(b.until).toISOString(), lastError: this.outbox.pending(toolId, 1)[0]?.lastError ?? null })),
    };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let worked = false;
      // When the first waiting tool may try again, from the same readings that made it wait: a
      // backoff that ends between two readings of the clock is not taken for no backoff at all.
      let nextTry = this.now() + 30_000;
      for (const toolId of this.outbox.toolsWithPending()) {
        if (this.stopping) break;
        if (!((this.backoff.get(toolId)?.until ?? 0) > this.now())) worked = (await this.deliver(toolId)) || worked;
        nextTry = Math.min(nextTry, this.backoff.get(toolId)?.until ?? Infinity);
      }
      if (this.stopping) break;
      if (!worked) await this.sleep(nextTry);
    }
    this.running = false;
  }

  /** Sends one batch of a tool's queue; false when the tool must wait. */
  private async deliver(toolId: string): Promise<boolean> {
    let rows = this.outbox.pending(toolId, this.cfg.batchSize);
    if (rows.length === 0) return false;
    try {
      const unknown = rows.filter((r) => r.unknown).map((r) => r.record);
      if (unknown.length) {
        const held = await this.transport.lookup(unknown);
        if (held.size) {
          this.outbox.settle([...held].map((id) => ({ kind: 'delivered', id })), new Date(this.now()));
          rows = rows.filter((r) => !held.has(r.recordId));
        }
      }
      if (rows.length === 0) return true;
      this.outbox.sending(toolId, rows[0]!.seq, rows.at(-1)!.seq);
      const outcomes = await this.transport.send(rows.map((r) => r.record));
      this.outbox.settle(outcomes, new Date(this.now()));
      for (const o of outcomes) if (o.kind === 'permanent') this.log.error({ toolId, recordId: o.id }, `the ledger refused record ${o.id}: ${o.message} (a dead letter now: ovn-gateway ledger dead-letters)`);
      const retry = outcomes.find((o): o is Extract<Outcome, { kind: 'retry' }> => o.kind === 'retry');
      if (retry) return this.wait(toolId, retry.message, retry.retryAfterMs);
      this.backoff.delete(toolId);
      return true;
    } catch (err) {
      // A transport that throws instead of answering: the whole batch's outcome is unknown.
      this.outbox.settle(rows.map((r) => ({ kind: 'retry', id: r.recordId, message: (err as Error).message })), new Date(this.now()));
      return this.wait(toolId, (err as Error).message);
    }
  }

  private wait(toolId: string, message: string, retryAfterMs?: number): false {
    const prev = this.backoff.get(toolId);
    const delayMs = Math.min(this.cfg.backoff.maxMs, prev ? prev.delayMs * 2 : this.cfg.backoff.initialMs);
    // Full jitter on the upper half, so that gateways cut off together do not come back together.
    const waitMs = retryAfterMs ?? delayMs / 2 + Math.random() * (delayMs / 2);
    this.backoff.set(toolId, { until: this.now() + waitMs, delayMs });
    this.log.warn({ toolId, waitMs: Math.round(waitMs), reason: message }, `ledger delivery for ${toolId} waits ${Math.round(waitMs / 1000)} s: ${message}`);
    return false;
  }

  private sleep(until: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, Math.max(10, until - this.now()));
    }).finally(() => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    });
  }

  get isRunning(): boolean {
    return this.running;
  }
}

