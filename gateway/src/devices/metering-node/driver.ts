/**
 * Gateway side of the metering-node protocol (firmware-protocol/PROTOCOL.md): the link
 * layer (sequence numbers, ACK/NACK, stop-and-wait retransmission, duplicate suppression),
 * liveness, node identity and reboots, and the node's readings as typed events.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  CAPABILITY,
  encodeFrame,
  FrameDecoder,
  INDICATE_PATTERN,
  INPUT_BIT,
  MESSAGES,
  NACK_REASON,
  READER,
  RELAY_REASON,
  REQUEST_WHAT,
  RESET_CAUSE,
  type Message,
  type MessageOf,
  type Outgoing,
} from '../../../../firmware-protocol/src/index.js';
import type { MeteringNodeConfig } from '../../config/schema.js';
import type { Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import { SerialLink } from '../../transport/serial-link.js';
import { deviceHealth, type DeviceHealth } from '../device.js';
import type { BadgeReader, Indication, MeterTotals, RelayState, SwitchReason, ToolFault, ToolMeter, ToolSwitch } from '../tool-io.js';
import { applyBoot, applyReading, type MeterCounters, type MeterState, type MeterStep } from './meter.js';
import { MeterStore } from './meter-store.js';

export const ACK_TIMEOUT_MS = 250;
export const MAX_TRIES = 5;
const DEFAULT_HEARTBEAT_S = 5;

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
  duplicates: number;
  nacks: number;
  failedCommands: number;
  inconsistentMeters: number;
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
  readonly stats: NodeProtocolStats = { framesIn: 0, framesOut: 0, retransmits: 0, duplicates: 0, nacks: 0, failedCommands: 0, inconsistentMeters: 0 };
  private readonly link: SerialLink;
  private readonly decoder: FrameDecoder;
  private readonly meters: MeterStore;
  private readonly log: Logger;
  private txSeq = 0;
  private inflight: Pending | null = null;
  private readonly queue: Pending[] = [];
  private lastReliableIn: { seq: number; type: string } | null = null;
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
  ) {
    super();
    this.log = log.child({ device: cfg.id });
    this.link = new SerialLink(cfg.serial, this.log);
    this.decoder = new FrameDecoder(
      (msg) => this.receive(msg),
      (r) => this.log.warn({ frameError: r.error, head: r.head }, `rejected a frame from the node: ${r.error} (${r.detail})`),
    );
    this.meters = new MeterStore(journal.db);
    this.meter = this.meters.load(cfg.id);
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
    return deviceHealth(this.cfg, this.kind, { online: this.online, lastSeen: this.lastSeen, since: this.since }, {
      linkOpen: this.link.isOpen,
      node: this.hello,
      relay: this.relay,
      busy: (this.inputs & INPUT_BIT.BUSY) !== 0,
      powerW: this.readings.powerMw / 1000,
      meter: this.meter?.total ?? null,
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
    this.lastReliableIn = null;
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
    this.lastSeen = this.now();
    this.armLiveness();
    // A node that booted again numbers its frames from 0 again: a new sequence space.
    if (msg.type === 'HELLO' && msg.bootId !== this.hello?.bootId) this.lastReliableIn = null;
    if (MESSAGES[msg.type].reliable) {
      this.transmit(encodeFrame({ type: 'ACK', seq: this.nextSeq(), ackSeq: msg.seq, ackType: MESSAGES[msg.type].code }));
      const last = this.lastReliableIn;
      if (last && last.seq === msg.seq && last.type === msg.type) {
        this.stats.duplicates++;
        return;
      }
      this.lastReliableIn = { seq: msg.seq, type: msg.type };
    }
    // A node heard from again after silence identifies itself before it counts as online.
    if (!this.online && msg.type !== 'HELLO' && !this.inflight && this.queue.length === 0) this.requestHello();
    switch (msg.type) {
      case 'HELLO':
        return this.onHello(msg);
      case 'HEARTBEAT':
        return this.onBoot(msg.bootId, null);
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
        this.log.warn({ type: msg.type }, `unexpected ${msg.type} from a node`);
    }
  }

  private onHello(msg: MessageOf<'HELLO'>): void {
    const hello: HelloInfo = {
      nodeId: msg.nodeId,
      firmware: msg.firmware,
      protocol: msg.protocol,
      capabilities: (Object.keys(CAPABILITY) as (keyof typeof CAPABILITY)[]).filter((k) => msg.capabilities & CAPABILITY[k]).map((k) => k.toLowerCase()),
      resetCause: RESET_CAUSE[msg.resetCause] ?? `cause ${msg.resetCause}`,
      bootId: msg.bootId,
      heartbeatS: msg.heartbeatS,
    };
    this.hello = hello;
    if (this.cfg.nodeId !== undefined && this.cfg.nodeId !== msg.nodeId) {
      this.log.warn({ expected: this.cfg.nodeId, got: msg.nodeId }, 'node id differs from the config: is the right node on this port?');
    }
    this.onBoot(msg.bootId, hello.resetCause);
    this.journal.record('device.hello', this.cfg.id, { ...hello });
    this.log.info(hello, `node ${msg.nodeId} firmware ${msg.firmware} online`);
    this.armLiveness();
    this.markOnline();
    // The inputs, then the relay: whoever decides about the tool after a restart knows both.
    for (const what of [REQUEST_WHAT.INPUT, REQUEST_WHAT.RELAY_STATE]) this.send({ type: 'REQUEST', what }).catch((err: Error) => this.log.debug(err.message));
  }

  private onBoot(bootId: number, resetCause: string | null): void {
    const step = applyBoot(this.meter, bootId);
    if (step) this.commitMeter(step, resetCause);
  }

  private onMeter(msg: MessageOf<'METER'>): void {
    this.readings = { powerMw: msg.powerMw, currentMa: msg.currentMa, voltageDv: msg.voltageDv };
    const step = applyReading(this.meter, msg.bootId, msg);
    if (step.kind === 'inconsistent') {
      this.stats.inconsistentMeters++;
      this.log.warn({ counter: step.counter, was: step.was, now: step.now }, 'meter counter went down within one boot; reading ignored');
      return;
    }
    this.commitMeter(step, null);
    this.emit('meter', { delta: step.delta, total: step.state.total, powerMw: msg.powerMw });
  }

  private commitMeter(step: Exclude<MeterStep, { kind: 'inconsistent' }>, resetCause: string | null): void {
    const at = this.now();
    this.journal.db.transaction(() => {
      if (step.kind === 'reboot' && step.previousBootId !== null) {
        this.journal.record('device.rebooted', this.cfg.id, { previousBootId: step.previousBootId, bootId: step.state.bootId, resetCause });
      }
      this.meters.save(this.cfg.id, step.state, at);
    })();
    if (step.kind === 'reboot' && step.previousBootId !== null) {
      this.relay = { requested: false, sensed: null };
      this.log.warn({ bootId: step.state.bootId, resetCause }, 'node rebooted; its counters restart from zero');
    }
    this.meter = step.state;
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
