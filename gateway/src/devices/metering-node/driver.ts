/**
 * Gateway side of the metering-node protocol (firmware-protocol/PROTOCOL.md): the link
 * layer (sequence numbers, ACK/NACK, stop-and-wait retransmission, the replay window),
 * liveness, node identity and boots, and the node's readings as typed events, checked against
 * physics (meter.ts) before they count.
 *
 * Each frame belongs to a boot: the one it names (HELLO, HEARTBEAT, METER), or for the others
 * the boot the link is in, which is the last one a frame named (a byte stream keeps frames in
 * order), unless it is numbered further ahead of that boot's frames than the replay window: then
 * it is another boot's. A frame of a past boot is stale: not acted on, not acknowledged (that
 * boot is over; a real frame is retransmitted, and placed once the node has named its boot).
 * Within the current boot, the replay windows drop what was seen already: one for the node's
 * reliable frames, one for the others, since a node may number a reliable frame when it queues
 * it and send it after unreliable ones numbered later.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  CAPABILITY,
  encodeFrame,
  FrameDecoder,
  HEARTBEAT_FLAG,
  INDICATE_PATTERN,
  INPUT_BIT,
  MESSAGES,
  NACK_REASON,
  READER,
  REPLAY_WINDOW,
  replayCheck,
  RELAY_REASON,
  REQUEST_WHAT,
  RESET_CAUSE,
  type Message,
  type MessageOf,
  type Outgoing,
  type ReplayWindow,
} from '../../../../firmware-protocol/src/index.js';
import { steadyNow } from '../../clock.js';
import type { MeteringNodeConfig } from '../../config/schema.js';
import type { Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import { WarnFlood, WarnLimit } from '../../log-limit.js';
import { SerialLink } from '../../transport/serial-link.js';
import { deviceHealth, faultProblem, type DeviceHealth } from '../device.js';
import type { BadgeReader, Indication, MeterTotals, RelayState, SwitchReason, ToolFault, ToolMeter, ToolSwitch } from '../tool-io.js';
import { applyBoot, applyReading, COUNTER_NAMES, describeImplausible, nodePhysics, recentBoots, type BootStep, type CounterName, type Implausible, type MeterCounters, type MeterState, type Physics } from './meter.js';
import { MeterStore } from './meter-store.js';

export const ACK_TIMEOUT_MS = 250;
export const MAX_TRIES = 5;
const DEFAULT_HEARTBEAT_S = 5;
/** Implausible readings journaled (and so raised as alerts) per device: one a minute, with the number set aside since the last. */
const IMPLAUSIBLE_JOURNAL = { perWindow: 1, windowMs: 60_000 };
const WIRE_BITS = { u8: 8, u16: 16, u32: 32 } as Record<string, number>;
/** Each counter's width on the wire, from the METER message: it wraps to 0 past it. */
const COUNTER_WIDTHS = Object.fromEntries(COUNTER_NAMES.map((n) => [n, WIRE_BITS[MESSAGES.METER.fields.find((f) => f.name === n)!.kind]!])) as Record<CounterName, number>;

export interface NodeEvents {
  online: [];
  offline: [reason: string];
  badge: [{ uid: string; reader: string }];
  relay: [{ requested: boolean; sensed: boolean | null; reason: number }];
  /** The busy input, at every INPUT report (the tool-meter role). */
  busy: [busy: boolean];
  meter: [{ delta: MeterCounters; total: MeterCounters; powerMw: number }];
  /** `code` is the node's fault number as text; severity 2 (error) and up is severe. */
  fault: [ToolFault & { severity: number }];
}

interface Pending {
  msg: Message;
  frame: Uint8Array;
  tries: number;
  timer: NodeJS.Timeout | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface NodeProtocolStats {
  framesIn: number;
  framesOut: number;
  retransmits: number;
  /** Frames seen already in the replay window (retransmissions, mostly). */
  duplicates: number;
  /** Frames older than the replay window: replays. */
  replays: number;
  /** Frames of a past boot. */
  stale: number;
  nacks: number;
  failedCommands: number;
  /** METER readings with a counter set aside as implausible. */
  implausibleReadings: number;
}

export interface HelloInfo {
  nodeId: string;
  firmware: string;
  protocol: number;
  capabilities: string[];
  resetCause: string;
  bootId: number;
  heartbeatS: number;
}

export class MeteringNode extends EventEmitter<NodeEvents> implements BadgeReader, ToolSwitch, ToolMeter {
  readonly kind = 'metering-node';
  readonly readsBadges = true;
  readonly switchesTools = true;
  readonly stats: NodeProtocolStats = { framesIn: 0, framesOut: 0, retransmits: 0, duplicates: 0, replays: 0, stale: 0, nacks: 0, failedCommands: 0, implausibleReadings: 0 };
  private readonly link: SerialLink;
  private readonly decoder: FrameDecoder;
  private readonly meters: MeterStore;
  private readonly physics: Physics<CounterName>;
  private readonly log: Logger;
  /** Rejected, stale, replayed and unexpected frames: a few lines a window, then a summary. */
  private readonly frameWarnings: WarnFlood;
  private readonly meterWarnings: WarnFlood;
  private readonly implausibleJournal = new WarnLimit(IMPLAUSIBLE_JOURNAL.perWindow, IMPLAUSIBLE_JOURNAL.windowMs);
  private txSeq = 0;
  private inflight: Pending | null = null;
  private readonly queue: Pending[] = [];
  /** The current boot's replay windows, for the node's reliable frames and for the others. */
  private windows: { reliable: ReplayWindow | null; other: ReplayWindow | null } = { reliable: null, other: null };
  /** The boot the frames on the link belong to: the last one a frame named. */
  private linkBoot: number | null;
  /** The newest seq of a frame that named the current boot: frames that name none are never far ahead of it. */
  private newestNamed: number | null = null;
  private online = false;
  private since = new Date();
  private lastSeen: Date | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private hello: HelloInfo | null = null;
  private meter: MeterState | null;
  private readings = { powerMw: 0, currentMa: 0, voltageDv: 0 };
  private relay: { requested: boolean; sensed: boolean | null } = { requested: false, sensed: null };
  /** A RELAY_STATE has arrived since the gateway started. */
  private relayReported = false;
  private inputs = 0;
  private faults = new Map<number, { severity: number; text: string; since: string }>();
  private everConnected = false;

  constructor(
    private readonly cfg: MeteringNodeConfig,
    private readonly journal: Journal,
    log: Logger,
    private readonly now: () => Date = () => new Date(),
    /** The steady clock the physics are measured on (ms). */
    private readonly clock: () => number = steadyNow,
  ) {
    super();
    this.log = log.child({ device: cfg.id });
    this.link = new SerialLink(cfg.serial, this.log);
    this.frameWarnings = new WarnFlood(this.log, (n, kinds) => `${n} more frames from the node set aside (${kinds})`);
    this.meterWarnings = new WarnFlood(this.log, (n, kinds) => `${n} more implausible meter readings set aside (${kinds})`);
    this.decoder = new FrameDecoder(
      (msg) => this.receive(msg),
      (r) => this.frameWarnings.warn(r.error, { frameError: r.error, head: r.head }, `rejected a frame from the node: ${r.error} (${r.detail})`),
    );
    this.physics = nodePhysics(cfg, COUNTER_WIDTHS);
    this.meters = new MeterStore(journal.db);
    this.meter = this.meters.load(cfg.id, COUNTER_NAMES);
    this.linkBoot = this.meter?.bootId ?? null;
  }

  get id(): string {
    return this.cfg.id;
  }

  /** Totals over every boot of the node (energy, relay-on and active time, filament). */
  get meterTotal(): MeterCounters {
    return this.meter?.total ?? { energyMwh: 0, relayOnS: 0, activeS: 0, filamentMm: 0 };
  }

  /** The tool-meter role's totals: active time (the busy input) and energy over every boot. */
  get meterTotals(): MeterTotals {
    const t = this.meterTotal;
    return { activeS: t.activeS, energyMwh: t.energyMwh };
  }

  get isBusy(): boolean {
    return (this.inputs & INPUT_BIT.BUSY) !== 0;
  }

  get isOnline(): boolean {
    return this.online;
  }

  start(): void {
    this.link.on('open', () => this.onOpen());
    this.link.on('close', (reason) => this.onClose(reason));
    this.link.on('data', (chunk) => this.decoder.push(chunk));
    this.link.start();
  }

  async stop(): Promise<void> {
    this.clearLiveness();
    this.link.removeAllListeners();
    this.failAll('the gateway is stopping');
    this.frameWarnings.flush();
    this.meterWarnings.flush();
    await this.link.stop();
  }

  get relayKnown(): boolean {
    return this.relayReported;
  }

  get relayState(): RelayState {
    return { ...this.relay };
  }

  /** Switches the tool's relay; resolves when the node has acknowledged the command. */
  setRelay(on: boolean, reason: SwitchReason): Promise<void> {
    this.relay.requested = on;
    return this.send({ type: 'RELAY_SET', state: on ? 1 : 0, reason: RELAY_REASON.indexOf(reason) });
  }

  /**
   * Asks the node for its counters now and resolves when they have arrived (or after
   * `timeoutMs`, or at once when the node is offline: the last counters are then what there is).
   * Sessions read the meter at their boundaries so that they do not lag a METER interval.
   */
  readMeter(timeoutMs = 1000): Promise<void> {
    if (!this.online) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('meter', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.on('meter', done);
      this.send({ type: 'REQUEST', what: REQUEST_WHAT.METER }).catch(done);
    });
  }

  /** Feedback at the tool: the node's LED, buzzer or display (text up to 32 bytes). */
  indicate(pattern: Indication, durationMs: number, text = ''): Promise<void> {
    return this.send({ type: 'INDICATE', pattern: INDICATE_PATTERN.indexOf(pattern), durationMs, text: text.slice(0, 32) });
  }

  health(): DeviceHealth {
    // errors and critical faults degrade the gateway's health; warnings are shown, no more
    const problem = faultProblem([...this.faults.values()].filter((f) => f.severity >= 2).map((f) => f.text));
    return deviceHealth(this.cfg, this.kind, { online: this.online, lastSeen: this.lastSeen, since: this.since, problem }, {
      linkOpen: this.link.isOpen,
      node: this.hello,
      relay: this.relay,
      busy: (this.inputs & INPUT_BIT.BUSY) !== 0,
      powerW: this.readings.powerMw / 1000,
      meter: this.meter?.total ?? null,
      boots: this.meter && recentBoots(this.meter),
      implausibleReadings: this.stats.implausibleReadings,
      faults: [...this.faults].map(([code, f]) => ({ code, ...f })),
      link: this.link.stats,
      frames: { ...this.decoder.stats, errors: { ...this.decoder.stats.errors } },
      protocol: this.stats,
    });
  }

  // ---- link layer ----

  /** Queues a message; reliable ones resolve on ACK and reject on NACK, timeout or link loss. */
  send(out: Outgoing): Promise<void> {
    const msg = { ...out, seq: this.nextSeq() } as Message;
    if (!MESSAGES[msg.type].reliable) {
      this.transmit(encodeFrame(msg));
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ msg, frame: encodeFrame(msg), tries: 0, timer: null, resolve, reject });
      this.pump();
    });
  }

  private nextSeq(): number {
    const s = this.txSeq;
    this.txSeq = (this.txSeq + 1) & 0xffff;
    return s;
  }

  private transmit(frame: Uint8Array): void {
    if (this.link.write(frame)) this.stats.framesOut++;
  }

  private pump(): void {
    if (this.inflight || this.queue.length === 0) return;
    if (!this.link.isOpen) return this.failAll('the link to the node is down');
    this.inflight = this.queue.shift()!;
    this.attempt(this.inflight);
  }

  private attempt(p: Pending): void {
    if (p.tries > 0) this.stats.retransmits++;
    p.tries++;
    this.transmit(p.frame);
    p.timer = setTimeout(() => {
      if (this.inflight !== p) return;
      if (p.tries < MAX_TRIES) return this.attempt(p);
      this.inflight = null;
      this.stats.failedCommands++;
      this.log.warn({ type: p.msg.type, seq: p.msg.seq }, `no ACK for ${p.msg.type} after ${MAX_TRIES} tries`);
      p.reject(new Error(`${this.cfg.id}: no ACK for ${p.msg.type} after ${MAX_TRIES} tries`));
      this.pump();
    }, ACK_TIMEOUT_MS);
  }

  private settle(err: Error | null): void {
    const p = this.inflight!;
    this.inflight = null;
    if (p.timer) clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve();
    this.pump();
  }

  private failAll(reason: string): void {
    const pending = this.inflight ? [this.inflight, ...this.queue] : [...this.queue];
    this.inflight = null;
    this.queue.length = 0;
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      this.stats.failedCommands++;
      p.reject(new Error(`${this.cfg.id}: ${p.msg.type} not delivered: ${reason}`));
    }
  }

  // ---- connection lifecycle ----

  private onOpen(): void {
    this.journal.record(this.everConnected ? 'device.reconnected' : 'device.connected', this.cfg.id, { target: this.cfg.serial.path });
    this.everConnected = true;
    // A random start, so that a restarted gateway's first frames cannot pass for repeats of the
    // previous run's frames in the node's duplicate check.
    this.txSeq = randomInt(0x10000);
    this.link.write(new Uint8Array([0])); // cut off whatever noise came before us
    this.armLiveness();
    this.requestHello();
  }

  private onClose(reason: string): void {
    this.failAll('the link closed');
    this.clearLiveness();
    this.markOffline(`link closed: ${reason}`, true);
  }

  private requestHello(): void {
    this.send({ type: 'REQUEST', what: REQUEST_WHAT.HELLO }).catch((err: Error) => this.log.debug(err.message));
  }

  private markOnline(): void {
    if (this.online) return;
    this.online = true;
    this.since = this.now();
    this.emit('online');
  }

  /** `record`: journal the loss even if the node never said HELLO on this link (the link itself was lost). */
  private markOffline(reason: string, record: boolean): void {
    if (record || this.online) this.journal.record('device.lost', this.cfg.id, { reason });
    if (!this.online) return;
    this.online = false;
    this.since = this.now();
    this.log.warn({ reason }, 'node offline');
    this.emit('offline', reason);
  }

  private livenessMs(): number {
    return (this.hello?.heartbeatS || DEFAULT_HEARTBEAT_S) * 1000 * this.cfg.livenessHeartbeats;
  }

  private armLiveness(): void {
    this.clearLiveness();
    this.livenessTimer = setTimeout(() => this.markOffline(`no valid frame for ${this.livenessMs() / 1000} s`, false), this.livenessMs());
  }

  private clearLiveness(): void {
    if (this.livenessTimer) clearTimeout(this.livenessTimer);
    this.livenessTimer = null;
  }

  // ---- receiving ----

  private receive(msg: Message): void {
    this.stats.framesIn++;
    if (!this.inCurrentBoot(msg)) return;
    this.lastSeen = this.now();
    this.armLiveness();
    const reliable = MESSAGES[msg.type].reliable;
    if (reliable) this.transmit(encodeFrame({ type: 'ACK', seq: this.nextSeq(), ackSeq: msg.seq, ackType: MESSAGES[msg.type].code }));
    const kind = reliable ? 'reliable' : 'other';
    const { verdict, window } = replayCheck(this.windows[kind], msg.seq);
    this.windows[kind] = window;
    if (verdict === 'duplicate') return void this.stats.duplicates++;
    if (verdict === 'old') {
      this.stats.replays++;
      this.frameWarnings.warn('replay', { type: msg.type, seq: msg.seq, top: window.top }, `a ${msg.type} frame numbered ${msg.seq} is older than the replay window (newest ${window.top}): a replay, not acted on`);
      return;
    }
    // A node heard from again after silence identifies itself before it counts as online.
    if (!this.online && msg.type !== 'HELLO' && !this.inflight && this.queue.length === 0) this.requestHello();
    switch (msg.type) {
      case 'HELLO':
        return this.onHello(msg);
      case 'HEARTBEAT':
        // Only the newest: a heartbeat that came late says what was, not what is.
        return msg.seq === window.top ? this.onHeartbeat(msg.flags) : undefined;
      case 'METER':
        return this.onMeter(msg);
      case 'ACK':
        if (this.inflight && msg.ackSeq === this.inflight.msg.seq && msg.ackType === MESSAGES[this.inflight.msg.type].code) this.settle(null);
        return;
      case 'NACK':
        if (this.inflight && msg.ackSeq === this.inflight.msg.seq) {
          this.stats.nacks++;
          this.settle(new Error(`${this.cfg.id}: node refused ${this.inflight.msg.type}: ${NACK_REASON[msg.reason] ?? `reason ${msg.reason}`}`));
        }
        return;
      case 'BADGE': {
        const uid = Buffer.from(msg.uid).toString('hex').toUpperCase();
        this.log.info({ uid }, 'badge tapped');
        return void this.emit('badge', { uid, reader: READER[msg.reader] ?? `reader ${msg.reader}` });
      }
      case 'RELAY_STATE': {
        this.relay = { requested: msg.requested === 1, sensed: msg.sensed === 2 ? null : msg.sensed === 1 };
        this.relayReported = true;
        if (this.relay.sensed !== null && this.relay.sensed !== this.relay.requested) {
          this.log.warn(this.relay, 'relay contact does not follow the command');
        }
        return void this.emit('relay', { ...this.relay, reason: msg.reason });
      }
      case 'INPUT':
        this.inputs = msg.inputs;
        return void this.emit('busy', this.isBusy);
      case 'FAULT':
        return this.onFault(msg);
      default:
        this.frameWarnings.warn('unexpected', { type: msg.type }, `unexpected ${msg.type} from a node`);
    }
  }

  /**
   * A node drops a reliable message after its last retransmission, and its heartbeat carries
   * the state the message would have changed (PROTOCOL.md §7): an INPUT or RELAY_STATE lost while
   * the gateway could not answer is caught up here, rather than leaving a tool busy for ever.
   */
  private onHeartbeat(flags: number): void {
    const busy = (flags & HEARTBEAT_FLAG.BUSY) !== 0;
    if (busy !== this.isBusy) {
      this.log.warn({ busy }, `the busy input is ${busy ? 'on' : 'off'} by the heartbeat: its INPUT report was lost or is late`);
      this.inputs = busy ? this.inputs | INPUT_BIT.BUSY : this.inputs & ~INPUT_BIT.BUSY;
      this.emit('busy', busy);
    }
    if (!this.relayReported) return;
    const requested = (flags & HEARTBEAT_FLAG.RELAY_REQUESTED) !== 0;
    const sensed = this.relay.sensed === null ? null : (flags & HEARTBEAT_FLAG.RELAY_SENSED) !== 0;
    // A contact still settling after a command is not a lost report: its RELAY_STATE follows.
    if ((sensed !== null && sensed !== requested) || (requested === this.relay.requested && sensed === this.relay.sensed)) return;
    this.log.warn({ requested, sensed }, `the relay is ${requested ? 'on' : 'off'} by the heartbeat: its RELAY_STATE report was lost or is late`);
    this.relay = { requested, sensed };
    this.emit('relay', { ...this.relay, reason: 0 });
  }

  private onHello(msg: MessageOf<'HELLO'>): void {
    const hello: HelloInfo = {
      nodeId: msg.nodeId,
      firmware: msg.firmware,
      protocol: msg.protocol,
      capabilities: (Object.keys(CAPABILITY) as (keyof typeof CAPABILITY)[]).filter((k) => msg.capabilities & CAPABILITY[k]).map((k) => k.toLowerCase()),
      resetCause: resetCauseOf(msg.resetCause),
      bootId: msg.bootId,
      heartbeatS: msg.heartbeatS,
    };
    this.hello = hello;
    if (this.cfg.nodeId !== undefined && this.cfg.nodeId !== msg.nodeId) {
      this.log.warn({ expected: this.cfg.nodeId, got: msg.nodeId }, 'node id differs from the config: is the right node on this port?');
    }
    this.journal.record('device.hello', this.cfg.id, { ...hello });
    this.log.info(hello, `node ${msg.nodeId} firmware ${msg.firmware} online`);
    this.armLiveness();
    this.markOnline();
    // The inputs, then the relay: whoever decides about the tool after a restart knows both.
    for (const what of [REQUEST_WHAT.INPUT, REQUEST_WHAT.RELAY_STATE]) this.send({ type: 'REQUEST', what }).catch((err: Error) => this.log.debug(err.message));
  }

  /**
   * Places the frame in its boot: false for a frame of a past boot or of none that can be told
   * (counted and logged, nothing more); a boot id not seen before starts a boot, journaled as a
   * reboot with the HELLO's reset cause, and a new sequence space (the node numbers from 0 again).
   */
  private inCurrentBoot(msg: Message): boolean {
    const named = msg.type === 'HELLO' || msg.type === 'HEARTBEAT' || msg.type === 'METER' ? msg.bootId : null;
    if (named !== null) this.linkBoot = named;
    // nothing known of the node's boots yet (a new device, before its first HELLO): the frame is taken as it comes
    if (this.linkBoot === null) return true;
    const step = applyBoot(this.meter, this.linkBoot, this.clock(), this.physics);
    if (step.kind === 'stale') {
      this.stats.stale++;
      this.frameWarnings.warn('stale', { type: msg.type, seq: msg.seq, bootId: step.boot.bootId, currentBootId: step.state.bootId }, `a ${msg.type} frame of the node's earlier boot ${step.boot.bootId} (now ${step.state.bootId}): late or replayed, not acted on`);
      return false;
    }
    if (step.kind === 'reboot') {
      this.windows = { reliable: null, other: null };
      this.newestNamed = null;
      this.commitBoot(step, msg.type === 'HELLO' ? resetCauseOf(msg.resetCause) : null);
    } else this.meter = step.state;
    return named !== null ? this.sawNamed(msg.seq) : this.nearNamed(msg);
  }

  /** A frame naming the current boot: the newest of them says where the boot's numbering is. */
  private sawNamed(seq: number): true {
    if (this.newestNamed === null || ((seq - this.newestNamed) & 0xffff) < 0x8000) this.newestNamed = seq;
    return true;
  }

  /** A frame naming no boot is the current boot's, unless it is numbered further ahead of that boot's named frames than the replay window. */
  private nearNamed(msg: Message): boolean {
    const ahead = this.newestNamed === null ? 0 : (msg.seq - this.newestNamed) & 0xffff;
    if (ahead <= REPLAY_WINDOW || ahead >= 0x8000) return true;
    this.stats.stale++;
    this.frameWarnings.warn('stale', { type: msg.type, seq: msg.seq, newest: this.newestNamed }, `a ${msg.type} frame numbered ${msg.seq}, ${ahead} ahead of the node's boot ${this.linkBoot}: another boot's, not acted on`);
    return false;
  }

  private commitBoot(step: Extract<BootStep<CounterName>, { kind: 'reboot' }>, resetCause: string | null): void {
    const rebooted = step.previousBootId !== null;
    this.journal.db.transaction(() => {
      if (rebooted) this.journal.record('device.rebooted', this.cfg.id, { previousBootId: step.previousBootId, bootId: step.state.bootId, resetCause });
      this.meters.save(this.cfg.id, step.state, this.now());
    })();
    this.meter = step.state;
    if (rebooted) {
      this.relay = { requested: false, sensed: null };
      this.log.warn({ bootId: step.state.bootId, resetCause }, 'node rebooted; its counters restart from zero');
    }
  }

  private onMeter(msg: MessageOf<'METER'>): void {
    this.readings = { powerMw: msg.powerMw, currentMa: msg.currentMa, voltageDv: msg.voltageDv };
    const step = applyReading(this.meter!, msg, this.clock(), this.physics);
    if (step.implausible.length > 0) this.setAside(msg, step.implausible);
    if (step.implausible.length < COUNTER_NAMES.length) {
      this.meters.save(this.cfg.id, step.state, this.now());
      this.meter = step.state;
    }
    this.emit('meter', { delta: step.delta, total: this.meter!.total, powerMw: msg.powerMw });
  }

  /** A reading with counters the node cannot have reached: counted, logged and journaled (so alerted) within bounds. */
  private setAside(msg: MessageOf<'METER'>, implausible: Implausible<CounterName>[]): void {
    this.stats.implausibleReadings++;
    const text = `implausible meter reading set aside: ${describeImplausible(implausible)}`;
    const reading = { energyMwh: msg.energyMwh, relayOnS: msg.relayOnS, activeS: msg.activeS, filamentMm: msg.filamentMm, powerMw: msg.powerMw };
    this.meterWarnings.warn(implausible.map((i) => i.counter).join('+'), { bootId: msg.bootId, seq: msg.seq, reading, implausible }, text);
    const suppressed = this.implausibleJournal.take('', this.clock());
    if (suppressed !== null) this.journal.record('meter.implausible', this.cfg.id, { bootId: msg.bootId, seq: msg.seq, reading, implausible, text, notJournaled: suppressed });
  }

  private onFault(msg: MessageOf<'FAULT'>): void {
    const active = msg.active === 1;
    if (active) this.faults.set(msg.code, { severity: msg.severity, text: msg.text, since: this.now().toISOString() });
    else this.faults.delete(msg.code);
    this.journal.record(active ? 'device.fault' : 'device.fault-cleared', this.cfg.id, { code: msg.code, severity: msg.severity, text: msg.text });
    this.log.warn({ code: msg.code, severity: msg.severity }, `node fault ${active ? 'raised' : 'cleared'}: ${msg.text}`);
    this.emit('fault', { code: String(msg.code), severity: msg.severity, severe: msg.severity >= 2, active, text: msg.text });
  }
}

const resetCauseOf = (code: number) => RESET_CAUSE[code] ?? `cause ${code}`;
