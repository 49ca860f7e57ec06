/**
 * The imperative shell around one shared tool's session machine: badges from its metering
 * node go through the access decision, the node's relay, busy input and faults (and the
 * printer's state) feed the machine, and the machine's outputs switch the relay, give
 * feedback at the tool and journal the sessions with what they used.
 */
import { randomUUID } from 'node:crypto';
import { INDICATE_PATTERN, RELAY_REASON } from '../../../firmware-protocol/src/index.js';
import { decideAccess } from '../access/decide.js';
import type { AccessStore } from '../access/store.js';
import type { ToolConfig } from '../config/schema.js';
import type { MeteringNode } from '../devices/metering-node/driver.js';
import type { MeterCounters } from '../devices/metering-node/meter.js';
import type { Printer } from '../devices/printer/driver.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { IDLE, step, type EndReason, type SessionInput, type SessionOutput, type SessionRules, type ToolSession } from './machine.js';

const RELAY_REASON_OF: Record<EndReason, (typeof RELAY_REASON)[number]> = {
  'badge-out': 'session-end',
  handover: 'session-end',
  'idle-timeout': 'idle-timeout',
  'max-duration': 'max-duration',
  'force-stop': 'maintainer',
  fault: 'fault',
  'relay-failed': 'fault',
};

interface OpenSession {
  id: string;
  affiliateId: string;
  startedAt: Date;
  /** Monotonic, for the duration: the wall clock of a Pi may jump when NTP syncs. */
  startedMono: number;
  energyAtStart: MeterCounters;
  filamentAtStartMm: number;
}

export interface SessionUsage {
  sessionId: string;
  toolId: string;
  affiliateId: string;
  startedAt: string;
  endedAt: string | null;
  durationS: number;
  energyWh: number;
  activeS: number;
  filamentMm: number;
  filamentG: number;
}

export class ToolSessions {
  private state: ToolSession = IDLE;
  private open: OpenSession | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly rules: SessionRules;
  private readonly log: Logger;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    readonly cfg: ToolConfig,
    private readonly node: MeteringNode,
    private readonly printer: Printer | null,
    private readonly access: AccessStore,
    private readonly journal: Journal,
    log: Logger,
  ) {
    this.log = log.child({ tool: cfg.id });
    this.rules = {
      idleTimeoutMs: cfg.idleTimeoutMin * 60_000,
      maxDurationMs: cfg.maxDurationH * 3_600_000,
      warnBeforeOffMs: cfg.warnBeforeOffS * 1000,
      relayConfirmMs: 3000,
    };
  }

  start(): void {
    const on = <E extends string>(emitter: { on(e: E, f: (...a: never[]) => void): unknown; off(e: E, f: (...a: never[]) => void): unknown }, event: E, f: (...a: never[]) => void) => {
      emitter.on(event, f);
      this.unsubscribe.push(() => emitter.off(event, f));
    };
    on(this.node, 'badge', (b: { uid: string }) => this.onBadge(b.uid));
    on(this.node, 'relay', (r: { requested: boolean; sensed: boolean | null }) => this.apply({ type: 'relay', on: r.sensed ?? r.requested }));
    on(this.node, 'input', () => this.onBusyChange());
    on(this.node, 'fault', (f: { active: boolean; severity: number; text: string }) => f.active && f.severity >= 2 && this.apply({ type: 'fault', text: f.text }));
    if (this.printer) {
      on(this.printer, 'state', (s: string) => (s === 'error' ? this.apply({ type: 'fault', text: 'printer fault' }) : this.onBusyChange()));
    }
    this.timer = setInterval(() => this.apply({ type: 'tick' }), 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** The open session with what it has used so far, or null. */
  current(): SessionUsage | null {
    return this.open ? this.usage(this.open, null) : null;
  }

  /** A maintainer stops the session now, busy or not. */
  forceStop(by: string): void {
    this.apply({ type: 'force-stop', by });
  }

  private onBadge(uid: string): void {
    const decision = decideAccess(uid, this.view(), this.access.data(), new Date());
    this.journal.record('access.decision', this.cfg.id, { uid, ...decision });
    this.log.info({ uid, decision }, `badge ${uid}: ${decision.kind}${decision.kind === 'deny' ? ` (${decision.reason})` : ''}`);
    this.apply({ type: 'decision', decision });
  }

  private view() {
    const sessionAffiliateId = this.open?.affiliateId ?? (this.state.phase === 'starting' ? this.state.affiliateId : null);
    return { id: this.cfg.id, status: this.state.phase === 'idle' ? ('available' as const) : ('in-use' as const), sessionAffiliateId, handover: this.cfg.handover };
  }

  private onBusyChange(): void {
    const busy = this.node.isBusy || (this.printer?.busy ?? false);
    if (busy !== this.state.busy) this.apply({ type: 'busy', busy });
  }

  private apply(input: SessionInput): void {
    const r = step(this.state, input, performance.now(), this.rules);
    this.state = r.state;
    for (const out of r.out) this.execute(out);
  }

  private execute(out: SessionOutput): void {
    switch (out.type) {
      case 'relay': {
        const reason = out.reason === 'session-start' ? 'session-start' : RELAY_REASON_OF[out.reason];
        this.node.setRelay(out.on, RELAY_REASON.indexOf(reason)).catch((err: Error) => this.log.error(`relay ${out.on ? 'on' : 'off'} failed: ${err.message}`));
        return;
      }
      case 'indicate':
        this.node.indicate(INDICATE_PATTERN.indexOf(out.pattern), out.pattern === 'warning' ? 5000 : 1500, out.text.slice(0, 32)).catch(() => {});
        return;
      case 'end-deferred':
        this.journal.record('session.end-deferred', this.cfg.id, { sessionId: this.open?.id, reason: out.reason, busy: out.busy });
        this.log.warn({ reason: out.reason, busy: out.busy }, out.busy ? 'session end deferred: the tool is busy' : 'switching off soon');
        return;
      case 'session-started':
        this.open = {
          id: randomUUID(),
          affiliateId: out.affiliateId,
          startedAt: new Date(),
          startedMono: performance.now(),
          energyAtStart: this.node.meterTotal,
          filamentAtStartMm: this.printer?.filamentCounterMm ?? 0,
        };
        this.journal.record('session.started', this.cfg.id, { sessionId: this.open.id, affiliateId: out.affiliateId });
        this.log.info({ affiliateId: out.affiliateId }, 'session started');
        return;
      case 'session-ended': {
        const open = this.open;
        if (!open) return;
        const usage = this.usage(open, new Date());
        this.open = null;
        this.journal.record('session.ended', this.cfg.id, { ...usage, reason: out.reason });
        this.log.info({ ...usage, reason: out.reason }, `session ended (${out.reason})`);
        return;
      }
    }
  }

  private usage(open: OpenSession, endedAt: Date | null): SessionUsage {
    const now = this.node.meterTotal;
    const filamentMm = (this.printer?.filamentCounterMm ?? 0) - open.filamentAtStartMm;
    return {
      sessionId: open.id,
      toolId: this.cfg.id,
      affiliateId: open.affiliateId,
      startedAt: open.startedAt.toISOString(),
      endedAt: endedAt?.toISOString() ?? null,
      durationS: Math.round((performance.now() - open.startedMono) / 1000),
      energyWh: (now.energyMwh - open.energyAtStart.energyMwh) / 1000,
      activeS: now.activeS - open.energyAtStart.activeS,
      filamentMm: Math.round(filamentMm * 1000) / 1000,
      filamentG: Math.round((this.printer?.gramsOf(filamentMm) ?? 0) * 1000) / 1000,
    };
  }
}

