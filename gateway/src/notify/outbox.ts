/**
 * Notifications, delivered durably. A notice is written to `notifications` in the transaction
 * that appends the event causing it (a journal tap, as the ledger outbox is), one row per
 * destination, deduplicated by key; a drain loop off the hot path delivers each destination's
 * queue in order, waits with backoff when it fails, and goes on after a restart where it was.
 * After `maxAttempts` failed tries, or at once when the receiver refuses for good, a row becomes
 * a dead letter with the reason (ovn-gateway notify dead-letters), and its queue goes on.
 *
 * Delivery is at least once: a gateway stopped between a send and its record sends it again at
 * its next start, with the same key (X-OVN-Delivery, Matrix txnId, e-mail Message-ID).
 */
import type { AppendedEvent, Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { createChannel, DeliveryError, type Channel, type Delivery } from './channels.js';
import type { NotificationsConfig } from './config.js';
import { noticesFor, offlineNotice, type Message, type Notice, type RuleContext, type Severity } from './rules.js';

export interface NotificationRow {
  seq: number;
  key: string;
  incident: string | null;
  eventId: number | null;
  kind: string;
  severity: Severity;
  channel: string;
  address: string;
  message: Message;
  state: 'pending' | 'delivered' | 'dead';
  attempts: number;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface NotificationHealth {
  backlog: number;
  oldestPendingAgeS: number | null;
  delivered: number;
  deadLetters: number;
  /** Destinations whose queue waits before the next try, and why. */
  waiting: { channel: string; address: string; until: string; lastError: string | null }[];
}

type RawRow = Omit<NotificationRow, 'message' | 'eventId' | 'lastError' | 'createdAt' | 'deliveredAt'> & { message: string; event_id: number | null; last_error: string | null; created_at: string; delivered_at: string | null };

const toRow = ({ event_id, last_error, created_at, delivered_at, message, ...r }: RawRow): NotificationRow => ({
  ...r,
  eventId: event_id,
  lastError: last_error,
  createdAt: created_at,
  deliveredAt: delivered_at,
  message: JSON.parse(message) as Message,
});

/** The notifications table: written inside the journal's transactions, read by the drain and the CLI. */
export class NotificationStore {
  constructor(
    private readonly journal: Journal,
    private readonly cfg: NotificationsConfig,
  ) {}

  /**
   * Writes a notice for every destination of its role; returns how many rows were new. A
   * resolution is written only when an alert of its incident went out and was not resolved yet.
   */
  write(n: Notice, eventId: number | null, at: string): number {
    let key = n.key;
    if (n.resolves) {
      const last = this.journal.prepared('SELECT key FROM notifications WHERE incident = ? ORDER BY seq DESC LIMIT 1').pluck().get(n.incident) as string | undefined;
      if (last === undefined || last.endsWith(':resolved')) return 0;
      key = `${last}:resolved`;
    }
    const message = JSON.stringify(n.affiliateId ? { ...n.message, affiliateId: n.affiliateId } : n.message);
    const insert = this.journal.prepared('INSERT OR IGNORE INTO notifications (key, incident, event_id, kind, severity, channel, address, message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    let written = 0;
    for (const d of this.destinations(n)) written += insert.run(key, n.incident, eventId, n.kind, n.severity, d.channel, d.address, message, at).changes;
    return written;
  }

  /** Where a notice goes: the role's channels; an affiliate's e-mail to their own address, when the allow-list has one. */
  private destinations(n: Notice): { channel: string; address: string }[] {
    return this.cfg.recipients[n.role].flatMap((d) => {
      if (this.cfg.channels[d.channel]?.kind !== 'email') return [{ channel: d.channel, address: '' }];
      const address = n.role === 'affiliate' ? (this.journal.prepared('SELECT email FROM affiliates WHERE id = ?').pluck().get(n.affiliateId) as string | null | undefined) : d.to;
      return address ? [{ channel: d.channel, address }] : [];
    });
  }

  /** Destinations with something to deliver. */
  queues(): { channel: string; address: string }[] {
    return this.journal.prepared(`SELECT DISTINCT channel, address FROM notifications WHERE state = 'pending'`).all() as { channel: string; address: string }[];
  }

  /** The oldest pending notifications of a destination, in order. */
  pending(channel: string, address: string, limit: number): NotificationRow[] {
    return (this.journal.prepared(`SELECT * FROM notifications WHERE state = 'pending' AND channel = ? AND address = ? ORDER BY seq LIMIT ?`).all(channel, address, limit) as RawRow[]).map(toRow);
  }

  delivered(seq: number, now: Date): void {
    this.journal.prepared(`UPDATE notifications SET state = 'delivered', delivered_at = ?, attempts = attempts + 1 WHERE seq = ?`).run(now.toISOString(), seq);
  }

  failed(seq: number, error: string, dead: boolean): void {
    this.journal.prepared(`UPDATE notifications SET state = CASE WHEN ? THEN 'dead' ELSE state END, last_error = ?, attempts = attempts + 1 WHERE seq = ?`).run(dead ? 1 : 0, error, seq);
  }

  deadLetters(): NotificationRow[] {
    return (this.journal.prepared(`SELECT * FROM notifications WHERE state = 'dead' ORDER BY seq`).all() as RawRow[]).map(toRow);
  }

  /** Puts a dead letter back in its queue with its tries counted afresh, once the cause is fixed. */
  retryDead(seq: number): NotificationRow {
    const r = this.journal.prepared(`UPDATE notifications SET state = 'pending', attempts = 0 WHERE seq = ? AND state = 'dead'`).run(seq);
    if (r.changes === 0) throw new Error(`no dead letter ${seq} (see ovn-gateway notify dead-letters)`);
    return toRow(this.journal.prepared('SELECT * FROM notifications WHERE seq = ?').get(seq) as RawRow);
  }

  retryAllDead(): number {
    return this.journal.prepared(`UPDATE notifications SET state = 'pending', attempts = 0 WHERE state = 'dead'`).run().changes;
  }

  counts(): { pending: number; delivered: number; dead: number; oldestPending: string | null } {
    const c = this.journal
      .prepared(`SELECT SUM(state = 'pending') AS pending, SUM(state = 'delivered') AS delivered, SUM(state = 'dead') AS dead, MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldestPending FROM notifications`)
      .get() as { pending: number | null; delivered: number | null; dead: number | null; oldestPending: string | null };
    return { pending: c.pending ?? 0, delivered: c.delivered ?? 0, dead: c.dead ?? 0, oldestPending: c.oldestPending };
  }
}

/** Device events that mean it went away, and that it came back. */
const GONE = ['device.lost', 'device.unresponsive'];
const BACK = ['device.connected', 'device.reconnected', 'device.hello', 'device.responsive'];

export interface NotifierOptions {
  gateway: string;
  /** The config file's directory (file names in channels are relative to it). */
  baseDir: string;
  rules: RuleContext;
  /** The devices watched for being offline too long. */
  deviceIds: readonly string[];
  /** Instead of the configured channels (tests, benchmarks). */
  channels?: ReadonlyMap<string, Channel>;
  now?: () => number;
}

/** Writes notices with the events that cause them, watches devices offline, and delivers. */
export class Notifier {
  readonly store: NotificationStore;
  private readonly channels: ReadonlyMap<string, Channel>;
  private readonly now: () => number;
  private readonly offline = new Map<string, NodeJS.Timeout>();
  private readonly backoff = new Map<string, { until: number; delayMs: number; lastError: string }>();
  private readonly removers: (() => void)[] = [];
  private written = false;
  private stopping = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly journal: Journal,
    private readonly cfg: NotificationsConfig,
    private readonly opts: NotifierOptions,
    private readonly log: Logger,
  ) {
    this.store = new NotificationStore(journal, cfg);
    this.channels = opts.channels ?? new Map(Object.entries(cfg.channels).map(([name, c]) => [name, createChannel(c, opts.gateway, opts.baseDir)]));
    this.now = opts.now ?? Date.now;
  }

  /** From now on, every event worth telling is written with its notices; call before anything records. */
  attach(): void {
    this.journal.tap((e) => {
      for (const n of noticesFor(e, this.opts.rules)) if (this.store.write(n, e.id, e.at) > 0) this.written = true;
    });
    this.removers.push(
      this.journal.afterCommit((e) => {
        if (e.deviceId && (GONE.includes(e.kind) || BACK.includes(e.kind))) this.onDevice(e);
        if (this.written) {
          this.written = false;
          this.kick();
        }
      }),
    );
  }

  /**
   * Starts delivering, and watches the devices offline when the gateway starts: their minutes
   * count from this start, so that a device that comes back as the gateway starts is not reported.
   */
  start(): void {
    for (const id of this.opts.deviceIds) {
      const last = this.journal.prepared(`SELECT id, at, kind, device_id AS deviceId FROM events WHERE device_id = ? AND kind IN (${[...GONE, ...BACK].map(() => '?').join(', ')}) ORDER BY id DESC LIMIT 1`).get(id, ...GONE, ...BACK) as AppendedEvent | undefined;
      if (last && GONE.includes(last.kind)) this.onDevice(last, Math.max(Date.parse(last.at), this.now()));
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const r of this.removers.splice(0)) r();
    for (const t of this.offline.values()) clearTimeout(t);
    this.offline.clear();
    this.kick();
    await this.loop;
    for (const c of this.channels.values()) c.close();
  }

  /** Something new to deliver, or a dead letter put back: go now rather than at the next timer. */
  kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  health(): NotificationHealth {
    const c = this.store.counts();
    const now = this.now();
    return {
      backlog: c.pending,
      oldestPendingAgeS: c.oldestPending ? Math.max(0, Math.round((now - Date.parse(c.oldestPending)) / 1000)) : null,
      delivered: c.delivered,
      deadLetters: c.dead,
      waiting: [...this.backoff].filter(([, b]) => b.until > now).map(([q, b]) => {
        const [channel, address] = q.split('\0') as [string, string];
        return { channel, address, until: new Date(b.until).toISOString(), lastError: b.lastError };
      }),
    };
  }

  /** A device gone starts its timer (from `fromMs`); one back stops it, and resolves an offline alert that went out. */
  private onDevice(e: Pick<AppendedEvent, 'id' | 'at' | 'kind' | 'deviceId'>, fromMs = Date.parse(e.at)): void {
    const id = e.deviceId!;
    if (GONE.includes(e.kind)) {
      if (this.offline.has(id)) return;
      const dueMs = fromMs + this.cfg.offlineAfterMin * 60_000 - this.now();
      const timer = setTimeout(() => {
        this.offline.delete(id);
        this.writeNow(offlineNotice(id, e.at, e.id, false));
      }, Math.max(0, dueMs));
      timer.unref();
      this.offline.set(id, timer);
      return;
    }
    clearTimeout(this.offline.get(id));
    this.offline.delete(id);
    const lost = this.journal.prepared(`SELECT at FROM events WHERE device_id = ? AND kind IN (${GONE.map(() => '?').join(', ')}) ORDER BY id DESC LIMIT 1`).pluck().get(id, ...GONE) as string | undefined;
    if (lost) this.writeNow(offlineNotice(id, lost, 0, true));
  }

  /** A notice no event carries (a timer's): written in a transaction of its own. */
  private writeNow(n: Notice): void {
    try {
      const written = this.journal.db.transaction(() => this.store.write(n, null, new Date(this.now()).toISOString()))();
      if (written) this.kick();
    } catch (err) {
      this.log.error({ err, key: n.key }, `cannot write the notification ${n.key}: ${(err as Error).message}`);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const now = this.now();
      const queues = this.store.queues();
      const until = (q: { channel: string; address: string }) => this.backoff.get(`${q.channel}\0${q.address}`)?.until ?? 0;
      const due = queues.filter((q) => until(q) <= now);
      if (due.length) await Promise.all(due.map((q) => this.deliver(q.channel, q.address)));
      // every queue waits (the earliest is due next) or none has anything: until then, or a kick
      else await this.sleep(queues.length ? Math.min(...queues.map(until)) - now : 30_000);
    }
  }

  /** Delivers a destination's queue in order until it is empty or a try fails. */
  private async deliver(channel: string, address: string): Promise<void> {
    const queue = `${channel}\0${address}`;
    for (const row of this.store.pending(channel, address, 100)) {
      if (this.stopping) return;
      const ch = this.channels.get(channel);
      try {
        if (!ch) throw new DeliveryError(`no channel "${channel}" in notifications.channels`, true);
        const d: Delivery = { seq: row.seq, key: row.key, kind: row.kind, severity: row.severity, address, message: row.message, createdAt: row.createdAt };
        await ch.send(d);
        this.store.delivered(row.seq, new Date(this.now()));
        this.backoff.delete(queue);
      } catch (err) {
        const e = err instanceof DeliveryError ? err : new DeliveryError((err as Error).message, false);
        const dead = e.permanent || row.attempts + 1 >= this.cfg.maxAttempts;
        this.store.failed(row.seq, e.message, dead);
        if (dead) {
          this.log.error({ seq: row.seq, key: row.key, channel }, `notification ${row.seq} (${row.kind}) to ${channel}${address ? ` ${address}` : ''} is a dead letter after ${row.attempts + 1} tries: ${e.message} (ovn-gateway notify dead-letters)`);
          continue;
        }
        this.wait(queue, e);
        return;
      }
    }
  }

  private wait(queue: string, e: DeliveryError): void {
    const prev = this.backoff.get(queue);
    const delayMs = Math.min(this.cfg.backoff.maxMs, prev ? prev.delayMs * 2 : this.cfg.backoff.initialMs);
    // jitter on the upper half, so that destinations cut off together do not come back together
    const waitMs = e.retryAfterMs ?? delayMs / 2 + Math.random() * (delayMs / 2);
    this.backoff.set(queue, { until: this.now() + waitMs, delayMs, lastError: e.message });
    this.log.warn({ queue: queue.replace('\0', ' '), waitMs: Math.round(waitMs) }, `notifications to ${queue.replace('\0', ' ').trim()} wait ${Math.round(waitMs / 1000)} s: ${e.message}`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, Math.max(1, ms));
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
