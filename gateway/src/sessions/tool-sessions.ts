/**
 * The imperative shell around one shared tool's session machine: badges from its readers go
 * through the access decision; the switch's relay, the meter's busy state and faults (a
 * metering node, a networked instrument) and the printer's state feed the machine; the
 * machine's outputs switch the relay, give feedback at the tool and journal the sessions
 * with what they used.
 *
 * Open sessions save their meters every few seconds (`session_checkpoints`). A session the
 * journal shows open at start was cut short by a crash or a power cut: it is closed as
 * `interrupted` with the usage of its last checkpoint, and the tool is made safe — switched
 * off, unless it is busy (a print in progress), in which case a new session for the same
 * affiliate resumes it.
 */
import { randomUUID } from 'node:crypto';
import { decideAccess, type ToolView } from '../access/decide.js';
import type { AccessStore } from '../access/store.js';
import type { Billing } from '../billing/billing.js';
import type { ToolConfig } from '../config/schema.js';
import type { BadgeReader, RelayState, SwitchReason, ToolFault, ToolMeter, ToolPrinter, ToolSwitch } from '../devices/tool-io.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { countBadge, endWindow, type BadgeWindow } from './badge-flood.js';
import { IDLE, step, type EndReason, type SessionInput, type SessionOutput, type SessionRules, type ToolSession } from './machine.js';
import { openSessionsOf, toolStatusOf, type ToolStatusRecord } from './projection.js';
import { closeInterrupted, recoveryAction, type Resume } from './recovery.js';
import { SessionStore } from './session-store.js';
import { newSession, usageOf, withBusy, withTechnician, type Checkpoint, type Meters, type OpenSession, type SessionUsage } from './usage.js';

const RELAY_REASON_OF: Record<EndReason, SwitchReason> = {
  'badge-out': 'session-end',
  handover: 'session-end',
  'idle-timeout': 'idle-timeout',
  'max-duration': 'max-duration',
  'force-stop': 'maintainer',
  fault: 'fault',
  'relay-failed': 'fault',
  'gateway-stopped': 'gateway-shutdown',
  interrupted: 'gateway-shutdown',
};

/** After the switch reports its relay, how long to wait for the printer to say whether it is printing. */
const RECOVERY_WAIT_MS = 15_000;

export interface ToolParts {
  switch: ToolSwitch;
  readers: readonly BadgeReader[];
  /** What meters the tool and says whether it is busy; null: time is measured here, from the printer's state. */
  meter: ToolMeter | null;
  printer: ToolPrinter | null;
}

export interface SessionPolicy {
  checkpointMs: number;
  useTypes: readonly string[];
  clock: { readonly synced: boolean | null };
  /** Charges each closed session, in the transaction that closes it; null: not billed. */
  billing: Billing | null;
  /** Affiliates whose badge during someone else's session counts technician time. */
  technicians: readonly string[];
  /** Why the journal cannot record a new session now (disk full, read-only), or null; `absorb` takes a write error the storage caused. */
  storage?: { refusal(): string | null; absorb(err: unknown): boolean };
}

/** A request about a tool's session that cannot be done now; `status` is the HTTP status that says why. */
export class SessionRefusal extends Error {
  constructor(
    readonly status: 400 | 409,
    message: string,
  ) {
    super(message);
  }
}

export interface ToolSessionStats {
  badges: number;
  decisions: number;
  /** Badges dropped in a flood (see badge-flood.ts). */
  floodDropped: number;
}

export class ToolSessions {
  readonly stats: ToolSessionStats = { badges: 0, decisions: 0, floodDropped: 0 };
  private state: ToolSession = IDLE;
  private open: OpenSession | null = null;
  /** Set at start until the tool has been made safe (see the file comment). */
  private recovery: { resume: Resume | null; deadline: number | null } | null = null;
  private resuming: Resume | null = null;
  /** The use type of the session openFor is opening (not an affiliate's default). */
  private pendingUseType: { owner: string; useType: string } | null = null;
  private relayKnown = false;
  private lastRelayCommand: Promise<void> = Promise.resolve();
  /** Session events waiting for a meter reading, in order. */
  private journaling: Promise<void> = Promise.resolve();
  private badgeWindow: BadgeWindow = { start: 0, count: 0 };
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly rules: SessionRules;
  private readonly log: Logger;
  private readonly unsubscribe: (() => void)[] = [];
  private readonly store: SessionStore;

  constructor(
    readonly cfg: ToolConfig,
    private readonly parts: ToolParts,
    private readonly access: AccessStore,
    private readonly journal: Journal,
    private readonly policy: SessionPolicy,
    log: Logger,
  ) {
    this.log = log.child({ tool: cfg.id });
    this.store = new SessionStore(journal, policy.billing);
    this.rules = {
      idleTimeoutMs: cfg.idleTimeoutMin * 60_000,
      maxDurationMs: cfg.maxDurationH * 3_600_000,
      warnBeforeOffMs: cfg.warnBeforeOffS * 1000,
      relayConfirmMs: 3000,
    };
  }

  start(): void {
    this.recovery = { resume: this.closeInterrupted(), deadline: null };
    const { switch: sw, meter, printer } = this.parts;
    const on = <A extends unknown[]>(emitter: { on(e: string, f: (...a: A) => void): unknown; off(e: string, f: (...a: A) => void): unknown }, event: string, f: (...a: A) => void) => {
      emitter.on(event, f);
      this.unsubscribe.push(() => emitter.off(event, f));
    };
    for (const r of this.parts.readers) on(r, 'badge', (b: { uid: string; reader: string }) => this.onBadge(b.uid, b.reader));
    on(sw, 'relay', (r: RelayState) => this.onRelay(r));
    if (meter) {
      on(meter, 'busy', () => this.onBusyChange());
      on(meter, 'fault', (f: ToolFault) => f.active && f.severe && this.apply({ type: 'fault', text: f.text }));
    }
    if (printer) {
      on(printer, 'state', (s: string) => {
        if (s === 'error') this.apply({ type: 'fault', text: 'printer fault' });
        else this.onBusyChange();
        this.resolveRecovery(false);
      });
    }
    if (sw.relayKnown) this.onRelay(sw.relayState);
    this.timers.push(
      setInterval(() => {
        this.nextBadgeWindow(endWindow(this.badgeWindow, performance.now()));
        this.resolveRecovery(false);
        this.apply({ type: 'tick' });
      }, 1000),
      setInterval(() => this.checkpoint(), this.policy.checkpointMs),
    );
  }

  /**
   * Stops cleanly: an idle tool is switched off and its session ended (`gateway-stopped`); a
   * busy one keeps power and its session stays open, checkpointed, for the next start.
   */
  async stop(): Promise<void> {
    for (const t of this.timers.splice(0)) clearInterval(t);
    for (const off of this.unsubscribe.splice(0)) off();
    if (!this.recovery) this.apply({ type: 'shutdown' });
    await Promise.race([Promise.all([this.lastRelayCommand, this.journaling]), new Promise((r) => setTimeout(r, 2000))]);
    this.checkpoint();
  }

  /** The open session with what it has used so far, or null. */
  current(): SessionUsage | null {
    return this.open ? this.usage(this.open, null) : null;
  }

  /** The tool's status as a maintainer set it, and whether it is in use now. */
  status(): ToolStatusRecord & { inUse: boolean } {
    return { ...toolStatusOf(this.journal, this.cfg.id), inUse: this.open !== null };
  }

  /** A maintainer stops the session now, busy or not. */
  forceStop(by: string): SessionUsage {
    const open = (this.open = { ...this.requireOpen(), stoppedBy: by });
    const usage = this.usage(open, new Date());
    this.apply({ type: 'force-stop', by });
    return usage;
  }

  /** Changes the running session's use type (it decides the tariff). */
  setUseType(useType: string, by: string | null): SessionUsage {
    if (!this.policy.useTypes.includes(useType)) throw new SessionRefusal(400, `unknown use type "${useType}" (this lab has ${this.policy.useTypes.join(', ')})`);
    const open = this.requireOpen();
    if (open.useType === useType) return this.usage(open, null);
    this.journal.record('session.use-type', this.cfg.id, { sessionId: open.id, useType, previous: open.useType, by });
    return this.usage((this.open = { ...open, useType }), null);
  }

  /**
   * Opens a session without a badge, for a maintainer's or admin's print job when none is open:
   * the same path as a granted badge (relay on, confirmed, then the session), attributed to
   * `owner` with `useType`, so what the job uses has an owner. Refused while a session is open
   * or starting, or when the journal cannot record one.
   */
  openFor(owner: string, useType: string, by: string): void {
    if (this.state.phase !== 'idle') throw new SessionRefusal(409, `a session is already ${this.state.phase === 'starting' ? 'starting' : 'open'} at tool "${this.cfg.id}"`);
    const refusal = this.policy.storage?.refusal();
    if (refusal) throw new SessionRefusal(409, `no session can be recorded now: ${refusal}`);
    this.pendingUseType = { owner, useType };
    this.journal.record('session.opened-for-job', this.cfg.id, { affiliateId: owner, useType, by });
    this.log.info({ owner, useType, by }, `opening a session for ${owner}'s print job`);
    this.apply({ type: 'decision', decision: { kind: 'grant', affiliateId: owner } });
  }

  private requireOpen(): OpenSession {
    if (!this.open) throw new SessionRefusal(409, `no session is running at tool "${this.cfg.id}"`);
    return this.open;
  }

  // ---- inputs ----

  private onBadge(uid: string, reader: string): void {
    this.stats.badges++;
    if (!this.nextBadgeWindow(countBadge(this.badgeWindow, performance.now())).admitted) {
      this.stats.floodDropped++;
      return;
    }
    this.resolveRecovery(true);
    this.stats.decisions++;
    let decision = decideAccess(uid, this.view(), this.access.forBadge(uid, this.cfg.id), new Date());
    // No new session the journal could not record; ending one stays possible.
    if ((decision.kind === 'grant' || decision.kind === 'handover') && this.policy.storage?.refusal()) {
      decision = { kind: 'deny', reason: 'storage-unavailable', affiliateId: decision.kind === 'grant' ? decision.affiliateId : decision.to };
    }
    // The relay first: the journal write can wait the few hundred microseconds it takes.
    this.apply({ type: 'decision', decision });
    this.journal.record('access.decision', this.cfg.id, { uid, reader, ...decision });
    this.log.info({ uid, reader, decision }, `badge ${uid}: ${decision.kind}${decision.kind === 'deny' ? ` (${decision.reason})` : ''}`);
  }

  /** Keeps the badge window, logging what a second of flood dropped. */
  private nextBadgeWindow<T extends { window: BadgeWindow; dropped: number }>(next: T): T {
    this.badgeWindow = next.window;
    if (next.dropped > 0) this.log.warn({ dropped: next.dropped }, `badge flood at the tool: ${next.dropped} badges ignored in one second`);
    return next;
  }

  private view(): ToolView {
    const sessionAffiliateId = this.state.phase === 'idle' ? null : this.state.affiliateId;
    const set = toolStatusOf(this.journal, this.cfg.id).status;
    return {
      id: this.cfg.id,
      status: set !== 'available' ? set : sessionAffiliateId ? 'in-use' : 'available',
      sessionAffiliateId,
      handover: this.cfg.handover,
      technicians: this.policy.technicians,
    };
  }

  private onRelay(r: RelayState): void {
    this.relayKnown = true;
    if (this.recovery) return this.resolveRecovery(false);
    this.apply({ type: 'relay', on: r.sensed ?? r.requested });
  }

  private busyNow(): boolean {
    return (this.parts.meter?.isBusy ?? false) || (this.parts.printer?.busy ?? false);
  }

  private onBusyChange(): void {
    const busy = this.busyNow();
    if (busy === this.state.busy) return;
    if (this.open) this.open = withBusy(this.open, busy, performance.now());
    this.apply({ type: 'busy', busy });
  }

  /**
   * Makes the tool safe after a start, once the switch has reported its relay and the printer
   * (if any) has said whether it prints, or RECOVERY_WAIT_MS later; `now` decides at once (a
   * badge cannot wait).
   */
  private resolveRecovery(now: boolean): void {
    const r = this.recovery;
    if (!r || !this.relayKnown) return;
    const printer = this.parts.printer;
    const printerKnown = !printer || !['offline', 'connecting'].includes(printer.state);
    r.deadline ??= performance.now() + RECOVERY_WAIT_MS;
    if (!now && !printerKnown && performance.now() < r.deadline) return;
    this.recovery = null;
    const relay = this.parts.switch.relayState;
    const relayOn = relay.sensed ?? relay.requested;
    const busy = this.busyNow();
    this.state = { ...this.state, busy };
    const action = recoveryAction(r.resume !== null, busy, relayOn);
    if (action === 'resume') {
      const resume = r.resume!;
      this.log.warn({ resumedFrom: resume.fromSessionId }, 'the tool is busy: the interrupted session goes on as a new session');
      this.resuming = resume;
      if (!relayOn) this.execute({ type: 'relay', on: true, reason: 'session-start' });
      this.apply({ type: 'resume', affiliateId: resume.affiliateId });
    } else if (action === 'switch-off') {
      this.log.warn('the relay is on with no session: switching the tool off');
      this.lastRelayCommand = this.parts.switch.setRelay(false, 'gateway-shutdown').catch((err: Error) => this.log.error(`relay off failed: ${err.message}`));
    } else if (action === 'leave-on') {
      this.log.warn('the tool is busy with no session to resume: left on; it is not metered until someone badges');
    }
  }

  // ---- the machine ----

  /**
   * Steps the machine. The relay and the feedback act at once; what is journaled waits, in
   * order, for a fresh reading of the meter when a session starts or ends, so that a
   * session's energy does not lag the meter's reporting interval (a handover uses one reading for
   * both sessions, so nothing is counted twice).
   */
  private apply(input: SessionInput): void {
    const r = step(this.state, input, performance.now(), this.rules);
    this.state = r.state;
    const immediate = (o: SessionOutput) => o.type === 'relay' || o.type === 'indicate' || o.type === 'technician';
    const now = r.out.filter(immediate);
    const later = r.out.filter((o) => !immediate(o));
    for (const out of now) this.execute(out);
    if (later.length === 0) return;
    const meter = this.parts.meter;
    const reading = meter && later.some((o) => o.type === 'session-started' || o.type === 'session-ended');
    this.journaling = this.journaling
      .then(async () => {
        // A later turn of the event loop: the relay command leaves before the fsync of a close.
        await new Promise((r) => setImmediate(r));
        if (reading) await meter.readMeter();
        for (const out of later) this.execute(out);
      })
      .catch((err: Error) => this.log.error({ err }, 'journaling a session failed'));
  }

  private execute(out: SessionOutput): void {
    switch (out.type) {
      case 'relay': {
        const reason = out.reason === 'session-start' ? 'session-start' : RELAY_REASON_OF[out.reason];
        this.lastRelayCommand = this.parts.switch.setRelay(out.on, reason).catch((err: Error) => this.log.error(`relay ${out.on ? 'on' : 'off'} failed: ${err.message}`));
        return;
      }
      case 'indicate':
        this.parts.switch.indicate(out.pattern, out.pattern === 'warning' ? 5000 : 1500, out.text).catch(() => {});
        return;
      case 'technician':
        return this.technician(out.affiliateId);
      case 'end-deferred':
        this.journal.record('session.end-deferred', this.cfg.id, { sessionId: this.open?.id, affiliateId: out.affiliateId, reason: out.reason, busy: out.busy, offInS: Math.max(0, Math.round((out.offAt - performance.now()) / 1000)) });
        this.log.warn({ reason: out.reason, busy: out.busy }, out.busy ? 'session end deferred: the tool is busy' : 'switching off soon');
        return;
      case 'session-started':
        return this.started(out.affiliateId, out.at);
      case 'session-ended':
        return this.ended(out.reason, out.at);
    }
  }

  /** `at`: monotonic time the machine started the session. */
  private started(affiliateId: string, at: number): void {
    const resume = this.resuming;
    this.resuming = null;
    const affiliate = this.access.get(affiliateId);
    const forJob = this.pendingUseType?.owner === affiliateId ? this.pendingUseType.useType : null;
    this.pendingUseType = null;
    const useType = resume?.useType ?? forJob ?? (affiliate?.useType && this.policy.useTypes.includes(affiliate.useType) ? affiliate.useType : this.policy.useTypes[0]!);
    const open = newSession({
      id: randomUUID(),
      affiliateId,
      useType,
      startedAt: new Date(),
      clockSyncedAtStart: this.policy.clock.synced,
      startedMono: at,
      // A resumed session measures from its predecessor's last checkpoint: the meter's counters
      // went on while the gateway was down, so that energy is neither lost nor counted twice.
      meters: resume?.meters ?? this.meterTotals(),
      filamentAtStartMm: this.parts.printer?.filamentCountersMm ?? [],
      ...(this.parts.printer && { printerJobMark: this.parts.printer.jobMark }),
      busySinceMono: this.busyNow() ? performance.now() : null,
    });
    this.open = open;
    this.journal.record('session.started', this.cfg.id, {
      sessionId: open.id,
      toolId: this.cfg.id,
      affiliateId,
      useType,
      startedAt: open.startedAt.toISOString(),
      clockSynced: open.clockSyncedAtStart,
      ...(resume ? { resumedFrom: resume.fromSessionId } : {}),
    });
    this.checkpoint();
    this.log.info({ affiliateId, useType, sessionId: open.id }, resume ? 'session resumed' : 'session started');
  }

  private technician(affiliateId: string): void {
    if (!this.open) return;
    const open = (this.open = withTechnician(this.open, affiliateId, performance.now()));
    this.journal.record('session.technician', this.cfg.id, { sessionId: open.id, technicianId: affiliateId, helping: open.technician !== null });
    this.log.info({ technicianId: affiliateId }, open.technician ? 'technician helping' : 'technician done');
  }

  /** `at`: monotonic time the machine ended the session. */
  private ended(reason: EndReason, at: number): void {
    const open = this.open;
    if (!open) return;
    const usage = this.usage(open, new Date(Date.now() - (performance.now() - at)), at);
    this.open = null;
    this.store.close(this.cfg.id, [{ ...usage, reason, ...(open.stoppedBy ? { stoppedBy: open.stoppedBy } : {}) }]);
    this.log.info({ ...usage, reason }, `session ended (${reason})`);
  }

  // ---- metering ----

  private meterTotals(): Meters {
    const t = this.parts.meter?.meterTotals;
    return { energyMwh: t?.energyMwh ?? 0, activeS: t?.activeS ?? 0 };
  }

  private checkpoint(): void {
    const open = this.open;
    if (!open) return;
    const data: Checkpoint = { usage: this.usage(open, null), meters: this.meterTotals() };
    try {
      this.store.checkpoint(open.id, this.cfg.id, data);
    } catch (err) {
      // Disk full or read-only: the session goes on, measured in memory; the next checkpoint tries again.
      if (!this.policy.storage?.absorb(err)) throw err;
    }
  }

  private usage(open: OpenSession, endedAt: Date | null, now = performance.now()): SessionUsage {
    const printer = this.parts.printer;
    const readings = {
      meters: this.meterTotals(),
      metered: this.parts.meter !== null,
      printer: printer && { filamentMm: printer.filamentCountersMm, gramsOf: (mm: number) => printer.gramsOf(mm), material: printer.materialSince(open.printerJobMark ?? printer.jobMark) },
    };
    return usageOf(open, this.cfg.id, readings, endedAt && { at: endedAt, clockSynced: this.policy.clock.synced }, now);
  }

  /**
   * Sessions the journal shows open at start were cut short: each is closed as `interrupted`
   * with the usage of its last checkpoint, in one fsynced transaction. Returns what a resumed
   * session would continue from (the newest one).
   */
  private closeInterrupted(): Resume | null {
    const open = openSessionsOf(this.journal, this.cfg.id);
    if (open.length === 0) return null;
    const { ended, resume } = closeInterrupted(open.map((s) => ({ started: s, checkpoint: this.store.lastCheckpoint<Checkpoint>(s.sessionId) })));
    this.store.close(this.cfg.id, ended);
    this.log.warn({ sessions: open.map((s) => s.sessionId) }, `closed ${open.length} session(s) interrupted by a crash or power cut, with the usage of their last checkpoint`);
    return resume;
  }
}
