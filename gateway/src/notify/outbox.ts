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
import { quietUntil, PreferencesStore } from './preferences.js';
import { clockCondition, ledgerConditions, maintenanceConditions, monthReadyNotice, noticesFor, offlineNotice, TOLD_EVENTS, OPTIONAL_KINDS, type Condition, type Message, type Notice, type RuleContext, type Severity } from './rules.js';

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
  /** Pending, and free to go (not held through quiet hours). */
  backlog: number;
  /** Waiting for someone's quiet hours to end. */
  held: number;
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

/** A state row of `notify_incidents`. */
interface IncidentRow {
  incident: string;
  open: number;
  alert_key: string | null;
  changed_at: string;
  notice: string;
  flaps: number;
  flap_since: string | null;
  summary_due: string | null;
}

/** The notifications table: written from the journal's events after they commit, read by the drain and the CLI. */
export class NotificationStore {
  readonly preferences: PreferencesStore;

  constructor(
    private readonly journal: Journal,
    private readonly cfg: NotificationsConfig,
  ) {
    this.preferences = new PreferencesStore(journal);
  }

  /**
   * Writes a notice for every destination of its role; returns how many rows were new. An alert
   * of an incident already open is not written again; a resolution is written only when its
   * incident's alert went out. An incident that opens again within the flapping window of its
   * last change is flapping: its changes are counted, not sent, and a summary goes at the end
   * of the window (flapSummaries).
   */
  write(n: Notice, eventId: number | null, at: string): number {
    if (!n.incident) return this.insert(n, n.key, eventId, at);
    const inc = this.incident(n.incident);
    const windowMs = this.cfg.flapping.windowMin * 60_000;
    if (n.resolves) {
      if (!inc?.open) return 0;
      this.journal.prepared('UPDATE notify_incidents SET open = 0, changed_at = ? WHERE incident = ?').run(at, n.incident);
      if (inc.summary_due !== null) return 0;
      return this.insert(n, `${inc.alert_key}:resolved`, eventId, at);
    }
    if (inc?.open) return 0;
    if (inc && windowMs > 0 && (inc.summary_due !== null || Date.parse(at) - Date.parse(inc.changed_at) < windowMs)) {
      const since = inc.flap_since ?? at;
      this.journal
        .prepared('UPDATE notify_incidents SET open = 1, changed_at = ?, notice = ?, flaps = flaps + 1, flap_since = ?, summary_due = ? WHERE incident = ?')
        .run(at, JSON.stringify(n), since, inc.summary_due ?? new Date(Date.parse(at) + windowMs).toISOString(), n.incident);
      return 0;
    }
    this.journal
      .prepared(`INSERT INTO notify_incidents (incident, open, alert_key, changed_at, notice) VALUES (?, 1, ?, ?, ?)
        ON CONFLICT (incident) DO UPDATE SET open = 1, alert_key = excluded.alert_key, changed_at = excluded.changed_at, notice = excluded.notice, flaps = 0, flap_since = NULL, summary_due = NULL`)
      .run(n.incident, n.key, at, JSON.stringify(n));
    return this.insert(n, n.key, eventId, at);
  }

  /** A looked-at state: opens its incident (an alert) while active, resolves it once not. */
  condition(c: Condition, at: string): number {
    const open = this.incident(c.incident)?.open === 1;
    if (c.active && !open) return this.write({ ...c.alert, key: `${c.incident}:${at}`, incident: c.incident, resolves: false }, null, at);
    if (!c.active && open) return this.write({ ...c.resolution, key: '', incident: c.incident, resolves: true }, null, at);
    return 0;
  }

  /** Sends the summary of each incident whose flapping window is over: how often it opened, and how it is now. */
  flapSummaries(now: Date): number {
    const due = this.journal.prepared('SELECT * FROM notify_incidents WHERE summary_due IS NOT NULL AND summary_due <= ?').all(now.toISOString()) as IncidentRow[];
    let written = 0;
    for (const inc of due) {
      const last = JSON.parse(inc.notice) as Notice;
      const key = `${inc.incident}:flapping:${inc.flap_since}`;
      const openings = inc.flaps + 1;
      const state = inc.open ? 'open' : 'resolved';
      const title = `${inc.open ? '' : 'Resolved: '}${last.message.title} (flapping)`;
      const summary = `${last.message.summary} It opened ${openings} times from ${inc.flap_since} to ${inc.changed_at}; only the first was sent. It is ${state} now.`;
      const n: Notice = { ...last, key: inc.open ? key : `${key}:resolved`, kind: 'flapping', severity: inc.open ? last.severity : 'info', resolves: false, message: { ...last.message, title, summary, facts: [...last.message.facts, ['Openings', String(openings)], ['Since', String(inc.flap_since)], ['Now', state]] } };
      written += this.insert(n, n.key, null, now.toISOString());
      this.journal.prepared('UPDATE notify_incidents SET alert_key = ?, flaps = 0, flap_since = NULL, summary_due = NULL WHERE incident = ?').run(key, inc.incident);
    }
    return written;
  }

  /** When the next flapping summary is due, or null. */
  nextSummary(): string | null {
    return this.journal.prepared('SELECT MIN(summary_due) FROM notify_incidents').pluck().get() as string | null;
  }

  private incident(incident: string): IncidentRow | undefined {
    return this.journal.prepared('SELECT * FROM notify_incidents WHERE incident = ?').get(incident) as IncidentRow | undefined;
  }

  private insert(n: Notice, key: string, eventId: number | null, at: string): number {
    const message = JSON.stringify(n.affiliateId ? { ...n.message, affiliateId: n.affiliateId } : n.message);
    const insert = this.journal.prepared('INSERT OR IGNORE INTO notifications (key, incident, event_id, kind, severity, channel, address, message, created_at, hold_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    let written = 0;
    for (const d of this.destinations(n, new Date(at))) written += insert.run(key, n.incident, eventId, n.kind, n.severity, d.channel, d.address, message, at, d.holdUntil).changes;
    return written;
  }

  /**
   * Where a notice goes: the role's channels; an affiliate's e-mail to their own address, when
   * the allow-list has one. A person's choices apply to what is theirs (the channels they chose,
   * the kinds they turned off, their quiet hours); critical messages are never held or dropped.
   */
  private destinations(n: Notice, at: Date): { channel: string; address: string; holdUntil: string | null }[] {
    const critical = n.severity === 'critical';
    const prefs = n.role === 'affiliate' && n.affiliateId ? this.preferences.get(n.affiliateId) : null;
    if (prefs && !critical && (prefs.optOut as readonly string[]).includes(n.kind)) return [];
    const personHold = critical ? null : quietUntil(prefs?.quietHours, at, this.cfg.timeZone);
    return this.cfg.recipients[n.role]
      .filter((d) => critical || !prefs?.channels || prefs.channels.includes(d.channel))
      .flatMap((d) => {
        const hold = critical ? null : (personHold ?? quietUntil(d.quietHours, at, this.cfg.timeZone));
        const holdUntil = hold?.toISOString() ?? null;
        if (this.cfg.channels[d.channel]?.kind !== 'email') return [{ channel: d.channel, address: '', holdUntil }];
        const address = n.role === 'affiliate' ? (this.journal.prepared('SELECT email FROM affiliates WHERE id = ?').pluck().get(n.affiliateId) as string | null | undefined) : d.to;
        return address ? [{ channel: d.channel, address, holdUntil }] : [];
      });
  }

  /** The last event whose notices are written; null before the notifier first ran. */
  cursor(): number | null {
    return (this.journal.prepared('SELECT event_id FROM notify_cursor WHERE id = 1').pluck().get() as number | undefined) ?? null;
  }

  setCursor(eventId: number): void {
    this.journal.prepared('INSERT INTO notify_cursor (id, event_id) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id').run(eventId);
  }

  /** Destinations with something to deliver now (not held through quiet hours). */
  queues(now: Date): { channel: string; address: string }[] {
    return this.journal.prepared(`SELECT DISTINCT channel, address FROM notifications WHERE state = 'pending' AND (hold_until IS NULL OR hold_until <= ?)`).all(now.toISOString()) as { channel: string; address: string }[];
  }

  /** When the first held message may go, or null. */
  nextHold(now: Date): string | null {
    return this.journal.prepared(`SELECT MIN(hold_until) FROM notifications WHERE state = 'pending' AND hold_until > ?`).pluck().get(now.toISOString()) as string | null;
  }

  /** The oldest pending notifications of a destination that may go now, in order. */
  pending(channel: string, address: string, limit: number, now = new Date()): NotificationRow[] {
    return (this.journal.prepared(`SELECT * FROM notifications WHERE state = 'pending' AND channel = ? AND address = ? AND (hold_until IS NULL OR hold_until <= ?) ORDER BY seq LIMIT ?`).all(channel, address, now.toISOString(), limit) as RawRow[]).map(toRow);
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

  /** `held`: pending, waiting for someone's quiet hours to end (counted in pending too); the oldest pending is of those that may go. */
  counts(now = new Date()): { pending: number; held: number; delivered: number; dead: number; oldestPending: string | null } {
    const c = this.journal
      .prepared(
        `SELECT SUM(state = 'pending') AS pending, SUM(state = 'pending' AND hold_until > @now) AS held, SUM(state = 'delivered') AS delivered, SUM(state = 'dead') AS dead,
          MIN(CASE WHEN state = 'pending' AND (hold_until IS NULL OR hold_until <= @now) THEN created_at END) AS oldestPending FROM notifications`,
      )
      .get({ now: now.toISOString() }) as { pending: number | null; held: number | null; delivered: number | null; dead: number | null; oldestPending: string | null };
    return { pending: c.pending ?? 0, held: c.held ?? 0, delivered: c.delivered ?? 0, dead: c.dead ?? 0, oldestPending: c.oldestPending };
  }
}

/** Device events that mean it went away, and that it came back. */
const GONE = ['device.lost', 'device.unresponsive'];
const BACK = ['device.connected', 'device.reconnected', 'device.hello', 'device.responsive'];

/** Looked at every `checkEveryS`: states that are not events. Each is optional. */
export interface NotifierProbes {
  /** Tools with a service interval and their run hours since the last service that reset them. */
  maintenance?: () => { toolId: string; runHours: number; serviceEveryH: number }[];
  /** Is the wall clock synchronised (null: unknown). */
  clockSynced?: () => boolean | null;
  /** The ledger outbox's backlog alarm and dead letters. */
  ledger?: () => { alarm: string | null; deadLetters: number };
  /** The month that has ended and is not closed yet, or null. */
  monthToClose?: (now: Date) => string | null;
}

/** A file sent with a message (e-mail only). */
export interface Attachment {
  filename: string;
  contentType: string;
  content: string | Buffer;
}

export interface NotifierOptions {
  gateway: string;
  /** The config file's directory (file names in channels are relative to it). */
  baseDir: string;
  rules: RuleContext;
  /** The devices watched for being offline too long. */
  deviceIds: readonly string[];
  probes?: NotifierProbes;
  /** The files a message carries, made when it is sent (the month-closed mail: its statement CSV). */
  attachments?: (row: NotificationRow) => Promise<Attachment[]>;
  /** Instead of the configured channels (tests, benchmarks). */
  channels?: ReadonlyMap<string, Channel>;
  now?: () => number;
}

/**
 * Derives notices from the journal's events after they commit, from a saved cursor (the rows
 * and the cursor's move in one transaction: each event's notices are written exactly once,
 * whatever stops the gateway); watches devices offline and the states that are not events;
 * and delivers.
 */
export class Notifier {
  readonly store: NotificationStore;
  private readonly channels: ReadonlyMap<string, Channel>;
  private readonly now: () => number;
  private readonly offline = new Map<string, NodeJS.Timeout>();
  private readonly backoff = new Map<string, { until: number; delayMs: number; lastError: string }>();
  private readonly removers: (() => void)[] = [];
  private catchUpDue: NodeJS.Immediate | null = null;
  private checker: NodeJS.Timeout | null = null;
  private unsyncedSince: number | null = null;
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

  /**
   * From now on, every event worth telling gets its notices, written just after it commits (off
   * the committing call); events from before the first attach are not told.
   */
  attach(): void {
    if (this.store.cursor() === null) this.store.setCursor((this.journal.prepared('SELECT COALESCE(MAX(id), 0) FROM events').pluck().get() as number) ?? 0);
    this.removers.push(
      this.journal.afterCommit((e) => {
        if (e.deviceId && (GONE.includes(e.kind) || BACK.includes(e.kind))) this.onDevice(e);
        this.catchUpDue ??= setImmediate(() => {
          this.catchUpDue = null;
          this.catchUp();
        });
      }),
    );
  }

  /**
   * Writes the notices of the events after the cursor, and moves it, a batch a transaction.
   * Returns how many rows were written. Run after each commit and at start (what a stop left).
   */
  catchUp(): number {
    const read = this.journal.prepared(`SELECT id, at, kind, device_id AS deviceId, data FROM events WHERE id > ? AND id <= ? AND kind IN (${TOLD_EVENTS.map(() => '?').join(', ')}) ORDER BY id`);
    const batch = this.journal.db.transaction(() => {
      const from = this.store.cursor() ?? 0;
      const last = Math.min(this.journal.prepared('SELECT COALESCE(MAX(id), 0) FROM events').pluck().get() as number, from + 1000);
      if (last <= from) return null;
      let written = 0;
      for (const r of read.all(from, last, ...TOLD_EVENTS) as { id: number; at: string; kind: string; deviceId: string | null; data: string }[]) {
        const e = { ...r, data: JSON.parse(r.data) as Record<string, unknown> };
        for (const n of noticesFor(e, this.rules())) written += this.store.write(n, e.id, e.at);
      }
      this.store.setCursor(last);
      return written;
    });
    let total = 0;
    try {
      for (let n = batch(); n !== null; n = batch()) total += n;
    } catch (err) {
      // the storage refuses writes: the cursor stays, the next commit (or start) tries again
      this.log.error({ err }, `cannot write notifications: ${(err as Error).message}`);
    }
    if (total) this.kick();
    return total;
  }

  private ruleContext: RuleContext | null = null;
  private rules(): RuleContext {
    return (this.ruleContext ??= { ...this.opts.rules, jobOwner: this.opts.rules.jobOwner ?? ((printer, eventId) => this.jobOwner(printer, eventId)) });
  }

  /** Whose session a printer's job ended in: the last started at the tool that has that printer. */
  private jobOwner(printer: string, eventId: number): string | null {
    const tool = this.opts.rules.printerTools?.get(printer);
    if (!tool) return null;
    return (this.journal.prepared(`SELECT json_extract(data, '$.affiliateId') FROM events WHERE device_id = ? AND kind = 'session.started' AND id < ? ORDER BY id DESC LIMIT 1`).pluck().get(tool, eventId) as string | undefined) ?? null;
  }

  /**
   * Writes what a stop left unwritten, starts delivering and looking at states, and watches the
   * devices offline when the gateway starts: their minutes count from this start, so that a
   * device that comes back as the gateway starts is not reported.
   */
  start(): void {
    this.catchUp();
    for (const id of this.opts.deviceIds) {
      const last = this.journal.prepared(`SELECT id, at, kind, device_id AS deviceId FROM events WHERE device_id = ? AND kind IN (${[...GONE, ...BACK].map(() => '?').join(', ')}) ORDER BY id DESC LIMIT 1`).get(id, ...GONE, ...BACK) as AppendedEvent | undefined;
      if (last && GONE.includes(last.kind)) this.onDevice(last, Math.max(Date.parse(last.at), this.now()));
    }
    this.check();
    this.checker = setInterval(() => this.check(), this.cfg.checkEveryS * 1000);
    this.checker.unref();
    this.loop = this.run();
  }

  /** Looks at the states that are not events (maintenance, clock, ledger, months) and sends flapping summaries due. */
  check(): void {
    const now = new Date(this.now());
    const at = now.toISOString();
    const p = this.opts.probes ?? {};
    try {
      const conditions: Condition[] = [];
      for (const m of p.maintenance?.() ?? []) conditions.push(...maintenanceConditions(m, this.cfg.overdueFactor));
      const synced = p.clockSynced?.() ?? null;
      if (synced === false) this.unsyncedSince ??= now.getTime();
      if (synced === true) this.unsyncedSince = null;
      if (synced !== null) conditions.push(clockCondition(this.unsyncedSince !== null && now.getTime() - this.unsyncedSince >= this.cfg.clockUnsyncedAfterMin * 60_000, this.unsyncedSince === null ? null : new Date(this.unsyncedSince).toISOString()));
      if (p.ledger) conditions.push(...ledgerConditions(p.ledger()));
      const month = p.monthToClose?.(now) ?? null;
      const written = this.journal.db.transaction(() => {
        let n = 0;
        for (const c of conditions) n += this.store.condition(c, at);
        if (month) n += this.store.write(monthReadyNotice(month), null, at);
        return n + this.store.flapSummaries(now);
      })();
      if (written) this.kick();
    } catch (err) {
      this.log.error({ err }, `cannot look at the states notifications watch: ${(err as Error).message}`);
    }
  }

  /** Writes what the last commits scheduled (sent at the next start if not now), and stops. */
  async stop(): Promise<void> {
    if (!this.stopping && this.removers.length) this.catchUp();
    this.stopping = true;
    for (const r of this.removers.splice(0)) r();
    if (this.catchUpDue) clearImmediate(this.catchUpDue);
    this.catchUpDue = null;
    if (this.checker) clearInterval(this.checker);
    for (const t of this.offline.values()) clearTimeout(t);
    this.offline.clear();
    this.kick();
    await this.loop;
    for (const c of this.channels.values()) c.close();
  }

  /** The kinds this lab sends affiliates (a refused badge only with refusedBadges), which each may turn off. */
  affiliateKinds(): string[] {
    return OPTIONAL_KINDS.filter((k) => k !== 'refused-badge' || this.cfg.refusedBadges);
  }

  /** The channels affiliates are told on (what each may choose among). */
  affiliateChannels(): string[] {
    return [...new Set(this.cfg.recipients.affiliate.map((d) => d.channel))];
  }

  /** Something new to deliver, or a dead letter put back: go now rather than at the next timer. */
  kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  health(): NotificationHealth {
    const now = this.now();
    const c = this.store.counts(new Date(now));
    return {
      backlog: c.pending - c.held,
      held: c.held,
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
      const queues = this.store.queues(new Date(now));
      const until = (q: { channel: string; address: string }) => this.backoff.get(`${q.channel}\0${q.address}`)?.until ?? 0;
      const due = queues.filter((q) => until(q) <= now);
      if (due.length) {
        await Promise.all(due.map((q) => this.deliver(q.channel, q.address)));
        continue;
      }
      // every queue waits (the earliest is due next), or messages are held, or nothing: until then, or a kick
      const held = this.store.nextHold(new Date(now));
      const summary = this.store.nextSummary();
      const next = Math.min(queues.length ? Math.min(...queues.map(until)) : Infinity, held ? Date.parse(held) : Infinity, summary ? Math.max(Date.parse(summary), now + 50) : Infinity, now + 30_000);
      await this.sleep(next - now);
      if (summary && Date.parse(summary) <= this.now()) this.check();
    }
  }

  /** Delivers a destination's queue in order until it is empty or a try fails. */
  private async deliver(channel: string, address: string): Promise<void> {
    const queue = `${channel}\0${address}`;
    for (const row of this.store.pending(channel, address, 100, new Date(this.now()))) {
      if (this.stopping) return;
      const ch = this.channels.get(channel);
      try {
        if (!ch) throw new DeliveryError(`no channel "${channel}" in notifications.channels`, true);
        const d: Delivery = { seq: row.seq, key: row.key, kind: row.kind, severity: row.severity, address, message: row.message, createdAt: row.createdAt, attachments: (await this.opts.attachments?.(row)) ?? [] };
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
