/**
 * A networked instrument on the embedded MQTT broker (a Mosquito sensor rig, a metered smart
 * plug) as a tool's switch and meter. Built on the broker's typed API: validated telemetry,
 * status and availability in, commands with replies out; no MQTT client of its own.
 *
 * Its counters are cumulative per boot (counters.ts), so lost or repeated messages and the
 * device's reboots lose nothing it reported, and each is checked against physics before it
 * counts: an implausible one is set aside, counted, logged and journaled within bounds. The
 * state is saved at a reboot, at most every SAVE_INTERVAL_MS otherwise, when the device goes offline and at stop: a state saved late
 * only makes the next message's difference larger after a restart (the counters are the
 * device's), so a crash loses at most that interval of a boot that ends while the gateway is
 * down. A save the storage refuses (a full disk, a read-only SD card) is logged and made again
 * at the next occasion: the state in memory stays the truth, so busy, relay and meter go on
 * following the device. The relay is switched by command, confirmed by the reply and by the `relay` field of the
 * telemetry; a reboot that comes back with the relay off is reported like a node's.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { steadyNow } from '../../clock.js';
import { STORAGE_PROBLEM_TEXT, storageProblemOf, type Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import type { EmbeddedBroker } from '../../mqtt/broker.js';
import { WarnFlood, WarnLimit } from '../../log-limit.js';
import type { Availability, Telemetry } from '../../mqtt/schemas.js';
import { deviceState, faultProblem, type DeviceHealth } from '../device.js';
import type { Indication, MeterTotals, RelayState, SwitchReason, ToolFault, ToolMeter, ToolSwitch } from '../tool-io.js';
import { describeImplausible, lastValues, recentBoots, type Implausible, type Physics } from '../metering-node/meter.js';
import type { MqttInstrumentConfig } from './config.js';
import { applyTelemetry, instrumentPhysics, type Counter, type CounterState } from './counters.js';
import { CounterStore } from './counter-store.js';
import { INSTRUMENTS, type InstrumentDefinition } from './definitions.js';

const SAVE_INTERVAL_MS = 1000;
/** Implausible readings journaled (and so raised as alerts) per device: one a minute, with the number set aside since the last. */
const IMPLAUSIBLE_JOURNAL = { perWindow: 1, windowMs: 60_000 };

export interface InstrumentEvents {
  relay: [RelayState];
  busy: [busy: boolean];
  fault: [ToolFault];
  /** Every accepted telemetry message, after its counters were applied (and saved, when due). */
  meter: [MeterTotals];
  online: [];
  offline: [reason: string];
}

export interface InstrumentStats {
  telemetry: number;
  /** Messages missing in the seq of a boot: their counts arrived with the next message. */
  lost: number;
  /** Repeated (QoS 1 redelivery) or late messages, ignored. */
  stale: number;
  /** Messages with a counter set aside as implausible (more than the device could have done, or going down within a boot). */
  implausibleReadings: number;
  reboots: number;
  failedCommands: number;
}

export class MqttInstrument extends EventEmitter<InstrumentEvents> implements ToolSwitch, ToolMeter {
  readonly kind = 'mqtt-instrument';
  readonly switchesTools = true;
  readonly stats: InstrumentStats = { telemetry: 0, lost: 0, stale: 0, implausibleReadings: 0, reboots: 0, failedCommands: 0 };
  private readonly def: InstrumentDefinition;
  private readonly log: Logger;
  private readonly store: CounterStore;
  private readonly physics: Physics<Counter>;
  private readonly meterWarnings: WarnFlood;
  private readonly implausibleJournal = new WarnLimit(IMPLAUSIBLE_JOURNAL.perWindow, IMPLAUSIBLE_JOURNAL.windowMs);
  private counters: CounterState | null;
  /** Monotonic time of the last save, and whether the state changed since. */
  private saved = { at: -Infinity, dirty: false };
  /** Failed saves: the first few of a window logged, the rest counted into the next one. */
  private readonly saveWarnings = new WarnLimit();
  private relay: RelayState = { requested: false, sensed: null };
  private relayReported = false;
  private busy = false;
  private powerW: number | null = null;
  private readonly faults = new Map<string, ToolFault & { since: string }>();
  private lastSeen: Date | null = null;
  private online = false;
  private everOnline = false;
  private since: Date;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly cfg: MqttInstrumentConfig,
    private readonly broker: EmbeddedBroker,
    private readonly journal: Journal,
    log: Logger,
    private readonly now: () => Date = () => new Date(),
    /** The steady clock the physics are measured on (ms). */
    private readonly clock: () => number = steadyNow,
  ) {
    super();
    this.def = INSTRUMENTS[cfg.model];
    this.log = log.child({ device: cfg.id });
    this.physics = instrumentPhysics(cfg);
    this.meterWarnings = new WarnFlood(this.log, (n, kinds) => `${cfg.id}: ${n} more implausible meter readings set aside (${kinds})`);
    this.store = new CounterStore(journal.db);
    this.counters = this.store.load(cfg.id);
    this.since = now();
  }

  get id(): string {
    return this.cfg.id;
  }

  start(): void {
    const onTelemetry = (deviceId: string, t: Telemetry) => deviceId === this.cfg.id && this.onTelemetry(t);
    const onAvailability = (deviceId: string, a: Availability) => deviceId === this.cfg.id && this.onAvailability(a);
    this.broker.on('telemetry', onTelemetry);
    this.broker.on('availability', onAvailability);
    this.unsubscribe.push(
      () => this.broker.off('telemetry', onTelemetry),
      () => this.broker.off('availability', onAvailability),
    );
    const a = this.broker.availabilityOf(this.cfg.id);
    if (a) this.onAvailability(a);
  }

  async stop(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.meterWarnings.flush();
    this.save();
  }

  get isOnline(): boolean {
    return this.online;
  }

  // ---- the meter ----

  get meterTotals(): MeterTotals {
    const t = this.counters?.total;
    return { activeS: Math.round((t?.activeS ?? 0) * 1000) / 1000, energyMwh: Math.round((t?.energyWh ?? 0) * 1000) };
  }

  get isBusy(): boolean {
    return this.busy;
  }

  /** Asks the device for its telemetry now (a rebirth command) and resolves when it has arrived, after readMeterTimeoutMs, or at once when it is not connected. */
  readMeter(): Promise<void> {
    if (!this.broker.isConnected(this.cfg.id)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('meter', done);
        resolve();
      };
      const timer = setTimeout(done, this.cfg.readMeterTimeoutMs);
      this.on('meter', done);
      this.broker.command(this.cfg.id, { command: 'rebirth' }, { timeoutMs: this.cfg.readMeterTimeoutMs }).catch(done);
    });
  }

  // ---- the switch ----

  get relayKnown(): boolean {
    return this.relayReported;
  }

  get relayState(): RelayState {
    return { ...this.relay };
  }

  /** Switches the tool by command (relay or enable, as configured); resolves when the device has replied that it did. */
  async setRelay(on: boolean, reason: SwitchReason): Promise<void> {
    this.relay.requested = on;
    const command = this.cfg.switchCommand;
    try {
      const reply = await this.broker.command(this.cfg.id, { command, on });
      if (!reply.ok) throw new Error(`${this.cfg.id} refused ${command} ${on ? 'on' : 'off'}${reply.message ? `: ${reply.message}` : ''}`);
    } catch (err) {
      this.stats.failedCommands++;
      throw err;
    }
    this.log.debug({ on, reason }, `${command} ${on ? 'on' : 'off'} (${reason})`);
    // It says it did: that is what the relay is until its telemetry says otherwise.
    this.relay = { requested: on, sensed: this.relay.sensed === null ? null : on };
    this.relayReported = true;
    this.emit('relay', { ...this.relay });
  }

  async indicate(pattern: Indication, durationMs: number, text: string): Promise<void> {
    if (!this.def.indicates) return;
    await this.broker.command(this.cfg.id, { command: 'indicate', pattern, durationMs: Math.min(durationMs, 60_000), text: text.slice(0, 32) });
  }

  health(): DeviceHealth {
    const problem = this.online ? faultProblem([...this.faults.values()].filter((f) => f.severe).map((f) => f.text)) : null;
    return {
      id: this.cfg.id,
      kind: this.kind,
      name: this.cfg.name ?? this.cfg.id,
      state: deviceState(this.online, problem),
      ...(problem && { reason: problem.reason }),
      lastSeen: this.lastSeen?.toISOString() ?? null,
      since: this.since.toISOString(),
      detail: {
        model: this.cfg.model,
        broker: { connected: this.broker.isConnected(this.cfg.id), availability: this.broker.availabilityOf(this.cfg.id) },
        relay: this.relay,
        busy: this.busy,
        powerW: this.powerW,
        meter: this.counters && { bootId: this.counters.bootId, seq: this.counters.seq, boot: lastValues(this.counters), total: this.counters.total },
        boots: this.counters && recentBoots(this.counters),
        implausibleReadings: this.stats.implausibleReadings,
        faults: [...this.faults.values()],
        stats: { ...this.stats },
      },
    };
  }

  // ---- messages ----

  private onTelemetry(t: Telemetry): void {
    const at = this.now();
    this.lastSeen = at;
    this.stats.telemetry++;
    const c = t.counters;
    const step = applyTelemetry(this.counters, { bootId: t.bootId, seq: t.seq, counters: { runtimeS: c.runtimeS, activeS: c.activeS ?? c.runtimeS, samples: c.samples, energyWh: c.energyWh } }, this.clock(), this.physics);
    if (step.kind === 'stale') return void this.stats.stale++;
    const rebooted = step.kind === 'reboot' && step.previousBootId !== null;
    if (step.kind === 'delta') this.stats.lost += step.lost;
    this.counters = step.state;
    this.saved.dirty = true;
    this.powerW = t.powerW ?? null;
    if (rebooted) {
      this.stats.reboots++;
      this.log.warn({ bootId: t.bootId, uptimeS: t.uptimeS }, `${this.cfg.id} rebooted; its counters restart from zero`);
      // journaled before what it causes (the relay found off ends a session)
      this.recordReboot({ previousBootId: step.previousBootId, bootId: t.bootId, uptimeS: t.uptimeS });
    }
    if (step.implausible.length > 0) this.setAside(t, step.implausible);
    // busy first: whoever hears of the relay (a restarted gateway deciding about the tool) must know it
    this.busy = this.def.busy(t, this.cfg);
    this.updateRelay(t.relay, rebooted);
    if (this.def.reportsFaults && t.faults) this.updateFaults(t.faults);
    this.emit('busy', this.busy);
    this.emit('meter', this.meterTotals);
    if (performance.now() - this.saved.at >= SAVE_INTERVAL_MS) this.save();
  }

  /** A message with counters the device cannot have reached: counted, logged and journaled (so alerted) within bounds. */
  private setAside(t: Telemetry, implausible: Implausible<Counter>[]): void {
    this.stats.implausibleReadings++;
    const text = `implausible meter reading set aside: ${describeImplausible(implausible)}`;
    this.meterWarnings.warn(implausible.map((i) => i.counter).join('+'), { bootId: t.bootId, seq: t.seq, counters: t.counters, implausible }, `${this.cfg.id}: ${text}`);
    const suppressed = this.implausibleJournal.take('', this.clock());
    if (suppressed !== null) this.journal.record('meter.implausible', this.cfg.id, { bootId: t.bootId, seq: t.seq, reading: t.counters, implausible, text, notJournaled: suppressed });
  }

  /** The reboot event and the counters of the new boot in one transaction; when the storage refuses it, the event alone, which the journal then holds. */
  private recordReboot(data: Record<string, unknown>): void {
    try {
      this.journal.db.transaction(() => {
        this.journal.record('device.rebooted', this.cfg.id, data);
        this.writeCounters();
      })();
    } catch (err) {
      this.saveFailed(err);
      // outside a transaction the journal keeps what the storage refuses, and tells the storage monitor
      if (storageProblemOf(err) !== null) this.journal.record('device.rebooted', this.cfg.id, data);
    }
  }

  /** Saves the counters if they changed; a failure is logged and the save made again at the next occasion. */
  private save(): void {
    if (!this.saved.dirty) return;
    try {
      this.writeCounters();
    } catch (err) {
      this.saveFailed(err);
    }
  }

  private writeCounters(): void {
    if (!this.counters) return;
    this.store.save(this.cfg.id, this.counters, this.now());
    this.saved = { at: performance.now(), dirty: false };
  }

  private saveFailed(err: unknown): void {
    // the next save interval, going offline or stop tries again (a failed commit may have marked it saved)
    this.saved = { at: performance.now(), dirty: true };
    const suppressed = this.saveWarnings.take(this.cfg.id, this.saved.at);
    if (suppressed === null) return;
    const problem = storageProblemOf(err);
    const why = problem ? STORAGE_PROBLEM_TEXT[problem] : (err as Error).message;
    const more = suppressed > 0 ? ` (${suppressed} more failed saves not logged before this one)` : '';
    this.log.error({ err, problem, ...(suppressed > 0 && { suppressed }) }, `${this.cfg.id}: its counters could not be saved, ${why}; they are kept in memory and saved again at the next occasion${more}`);
  }

  private updateRelay(reported: boolean | undefined, rebooted: boolean): void {
    const before = this.relay;
    // what it reports first is what the gateway finds (it may have restarted with the tool on)
    if (reported !== undefined) this.relay = { requested: rebooted ? false : this.relayReported ? before.requested : reported, sensed: reported };
    else if (rebooted) this.relay = { requested: false, sensed: null }; // it comes back with its relay off
    else if (this.relayReported) return;
    const changed = !this.relayReported || before.sensed !== this.relay.sensed || before.requested !== this.relay.requested;
    this.relayReported = true;
    if (!changed) return;
    if (this.relay.sensed !== null && this.relay.sensed !== this.relay.requested) this.log.warn(this.relay, 'the relay does not follow the command');
    this.emit('relay', { ...this.relay });
  }

  private updateFaults(active: NonNullable<Telemetry['faults']>): void {
    const seen = new Set<string>();
    for (const f of active) {
      seen.add(f.code);
      if (this.faults.has(f.code)) continue;
      const fault: ToolFault = { code: f.code, active: true, severe: f.severity !== 'warning', text: f.text ?? f.code };
      this.faults.set(f.code, { ...fault, since: this.now().toISOString() });
      this.journal.record('device.fault', this.cfg.id, { code: f.code, severity: f.severity, text: fault.text });
      this.log.warn({ code: f.code, severity: f.severity }, `fault raised: ${fault.text}`);
      this.emit('fault', fault);
    }
    for (const [code, f] of this.faults) {
      if (seen.has(code)) continue;
      this.faults.delete(code);
      this.journal.record('device.fault-cleared', this.cfg.id, { code, text: f.text });
      this.log.info({ code }, `fault cleared: ${f.text}`);
      this.emit('fault', { code, active: false, severe: f.severe, text: f.text });
    }
  }

  private onAvailability(a: Availability): void {
    const online = a.state === 'online';
    if (online === this.online) return;
    this.online = online;
    this.since = new Date(a.since);
    if (online) {
      this.journal.record(this.everOnline ? 'device.reconnected' : 'device.connected', this.cfg.id, { target: this.broker.topics.telemetry(this.cfg.id) });
      this.everOnline = true;
      this.emit('online');
    } else {
      // As for a lost node: the session stays open; cumulative counters catch up on return.
      this.save();
      this.journal.record('device.lost', this.cfg.id, { reason: a.reason ?? 'offline' });
      this.emit('offline', a.reason ?? 'offline');
    }
  }
}
