/**
 * A simulated metering node: the firmware side of firmware-protocol/PROTOCOL.md, with a
 * physical model (relay, load, busy input, energy and runtime counters), fault injection
 * (corrupted frames, silence, reboots, replayed frames, spikes, counters near their wrap)
 * and a ground truth that tests compare the gateway with. Transport-agnostic: attach any
 * byte sink and feed it the bytes received (see transports.ts).
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import {
  CAPABILITY,
  encodeFrame,
  FrameDecoder,
  HEARTBEAT_FLAG,
  INPUT_BIT,
  MESSAGES,
  NODE_RELAY_REASON,
  READER,
  RESET_CAUSE,
  type Message,
  type Outgoing,
} from '../../../firmware-protocol/src/index.js';

export interface NodeSimOptions {
  nodeId: string;
  firmware?: string;
  heartbeatS?: number;
  meterIntervalMs?: number;
  /** Power drawn while the relay is on and the tool is busy. */
  powerW?: number;
  /** Power drawn while the relay is on and the tool is idle. */
  standbyW?: number;
  voltageV?: number;
  /** Simulated seconds per real second, so tests see minutes of use in seconds. */
  timeScale?: number;
  /** Where the first boot's counters start, as if the node had run for years before the gateway met it (near 2^32, they soon wrap). */
  counterStart?: Partial<Counters>;
}

type Counters = { energyMwh: number; relayOnS: number; activeS: number; filamentMm: number };
const WRAP = 2 ** 32;

export interface BootTruth {
  bootId: number;
  resetCause: string;
  /** Physical counters of this boot (what really happened). */
  energyMwh: number;
  relayOnS: number;
  activeS: number;
  /** The last counters this boot put in a METER frame that was written to the link (before the wrap at 2^32 on the wire). */
  reported: Counters;
}

export interface Truth {
  boots: BootTruth[];
  /** Physical totals over all boots. */
  energyMwh: number;
  relayOnS: number;
  activeS: number;
  /** Sum over boots of the last reported counters: what a perfect gateway has counted. */
  reported: Counters;
  relay: { requested: boolean; sensed: boolean };
  indications: { pattern: number; durationMs: number; text: string }[];
  /** Reliable messages sent or queued and not yet acknowledged. */
  unacknowledged: number;
}

interface Pending {
  frame: Uint8Array;
  seq: number;
  code: number;
  tries: number;
  timer: NodeJS.Timeout | null;
}

const ACK_TIMEOUT_MS = 250;
const MAX_TRIES = 5;

export class MeteringNodeSim extends EventEmitter<{ received: [Message]; sent: [Message] }> {
  readonly opts: Required<Omit<NodeSimOptions, 'counterStart'>>;
  private sink: ((bytes: Uint8Array) => void) | null = null;
  private readonly decoder = new FrameDecoder((m) => this.receive(m));
  private seq = 0;
  private queue: Pending[] = [];
  private inflight: Pending | null = null;
  private lastIn: { seq: number; code: number } | null = null;
  private boots: BootTruth[] = [];
  private bootedAt = 0;
  private physicsAt = 0;
  private relayRequested = false;
  private relaySensed = false;
  private relayStuck = false;
  /** The relay FAULT code raised, 0 if none. */
  private relayFault = 0;
  private busy = false;
  private powerW: number;
  private corruptNextFrames = 0;
  private lostAcks = 0;
  private silentUntil = 0;
  private faultActive = false;
  private indications: Truth['indications'] = [];
  private timers: NodeJS.Timeout[] = [];
  /** The last frame of each type each boot sent, as it went out: what a replay sends again. */
  private readonly sentFrames = new Map<number, Map<Message['type'], Uint8Array>>();

  constructor(opts: NodeSimOptions) {
    super();
    this.opts = { firmware: 'sim-1.0.0', heartbeatS: 5, meterIntervalMs: 1000, powerW: 120, standbyW: 8, voltageV: 230, timeScale: 1, ...opts };
    this.powerW = this.opts.powerW;
    this.boot('power-on');
    const start = { ...this.current.reported, ...opts.counterStart };
    Object.assign(this.current, { energyMwh: start.energyMwh, relayOnS: start.relayOnS, activeS: start.activeS, reported: start });
  }

  // ---- transport ----

  /** Connects the node to a link; the node says HELLO once the gateway asks (or at boot). */
  attach(sink: (bytes: Uint8Array) => void): void {
    this.sink = sink;
    this.rawWrite(new Uint8Array([0]));
    this.startTimers();
  }

  detach(): void {
    this.sink = null;
    this.stopTimers();
    if (this.inflight?.timer) clearTimeout(this.inflight.timer);
    this.inflight = null;
    this.queue = [];
  }

  /** Bytes from the gateway. */
  feed(chunk: Uint8Array): void {
    if (this.isSilent()) return;
    this.decoder.push(chunk);
  }

  // ---- controls ----

  badge(uidHex: string, reader: (typeof READER)[number] = 'iso14443a'): void {
    this.send({ type: 'BADGE', reader: READER.indexOf(reader), uid: new Uint8Array(Buffer.from(uidHex, 'hex')) });
  }

  setBusy(busy: boolean): void {
    this.integrate();
    if (this.busy === busy) return;
    this.busy = busy;
    this.send({ type: 'INPUT', inputs: busy ? INPUT_BIT.BUSY : 0, changed: INPUT_BIT.BUSY });
  }

  setPower(watts: number): void {
    this.integrate();
    this.powerW = watts;
  }

  /** A relay whose contact no longer follows the coil; freed, the contact follows it again (reported at once). */
  setRelayStuck(stuck: boolean): void {
    this.relayStuck = stuck;
    if (stuck || this.relaySensed === this.relayRequested) return;
    this.integrate();
    this.relaySensed = this.relayRequested;
    this.sendRelayState(0);
    this.checkRelayFault();
  }

  fault(code: number, severity: number, text: string, active = true): void {
    this.faultActive = active;
    this.send({ type: 'FAULT', code, severity, active: active ? 1 : 0, text });
  }

  /** The next `n` frames leave with one byte flipped. */
  corrupt(n: number): void {
    this.corruptNextFrames += n;
  }

  /** The next `n` ACK frames leave with one byte flipped. */
  loseAcks(n: number): void {
    this.lostAcks += n;
  }

  /** Says nothing and hears nothing for `ms`. */
  silence(ms: number): void {
    this.silentUntil = Date.now() + ms;
  }

  /**
   * Sends again, byte for byte, the last `type` frame a boot sent: this boot's (`bootsBack` 0), or
   * an earlier one's, as a TCP bridge's buffer or a bad cable can deliver it. False if there is none.
   */
  replay(type: Message['type'], bootsBack = 0): boolean {
    const boot = this.boots[this.boots.length - 1 - bootsBack];
    const frame = boot && this.sentFrames.get(boot.bootId)?.get(type);
    if (!frame) return false;
    this.rawWrite(frame);
    return true;
  }

  /** One METER whose counters claim `extra` more than the node counted (a glitch of its meter chip); the truth is unchanged. */
  spike(extra: Partial<Counters>): void {
    this.integrate();
    const b = this.current;
    this.send({ type: 'METER', bootId: b.bootId, ...wire(b.reported, extra), powerMw: 0, currentMa: 0, voltageDv: Math.round(this.opts.voltageV * 10) }, false);
  }

  reboot(cause: (typeof RESET_CAUSE)[number] = 'watchdog'): void {
    this.integrate();
    this.boot(cause);
    if (this.sink) {
      this.rawWrite(new Uint8Array([0]));
      this.sayHello();
      this.sendRelayState(NODE_RELAY_REASON.NODE_BOOT);
    }
  }

  truth(): Truth {
    this.integrate();
    const sum = <K extends 'energyMwh' | 'relayOnS' | 'activeS'>(k: K) => this.boots.reduce((a, b) => a + b[k], 0);
    const reported = { energyMwh: 0, relayOnS: 0, activeS: 0, filamentMm: 0 };
    for (const b of this.boots) for (const k of Object.keys(reported) as (keyof typeof reported)[]) reported[k] += b.reported[k];
    return {
      boots: this.boots.map((b) => ({ ...b, reported: { ...b.reported } })),
      energyMwh: sum('energyMwh'),
      relayOnS: sum('relayOnS'),
      activeS: sum('activeS'),
      reported,
      relay: { requested: this.relayRequested, sensed: this.relaySensed },
      indications: [...this.indications],
      unacknowledged: (this.inflight ? 1 : 0) + this.queue.length,
    };
  }

  // ---- firmware behaviour ----

  private get current(): BootTruth {
    return this.boots[this.boots.length - 1]!;
  }

  private boot(cause: (typeof RESET_CAUSE)[number]): void {
    this.bootedAt = this.physicsAt = performance.now();
    this.seq = 0;
    this.lastIn = null;
    if (this.inflight?.timer) clearTimeout(this.inflight.timer);
    this.inflight = null;
    this.queue = [];
    this.relayRequested = this.relaySensed = false; // fail-safe off at boot
    this.relayFault = 0;
    this.boots.push({
      bootId: randomInt(1, 0xffffffff),
      resetCause: cause,
      energyMwh: 0,
      relayOnS: 0,
      activeS: 0,
      reported: { energyMwh: 0, relayOnS: 0, activeS: 0, filamentMm: 0 },
    });
  }

  private drawnW(): number {
    if (!this.relaySensed) return 0;
    return this.busy ? this.powerW : this.opts.standbyW;
  }

  /** Advances the physical model to now. */
  private integrate(): void {
    const now = performance.now();
    const dtS = ((now - this.physicsAt) / 1000) * this.opts.timeScale;
    this.physicsAt = now;
    const b = this.current;
    b.energyMwh += (this.drawnW() * 1000 * dtS) / 3600;
    if (this.relaySensed) b.relayOnS += dtS;
    if (this.relaySensed && this.busy) b.activeS += dtS;
  }

  private startTimers(): void {
    this.stopTimers();
    this.timers.push(
      setInterval(() => this.sendHeartbeat(), this.opts.heartbeatS * 1000),
      setInterval(() => this.sendMeter(), this.opts.meterIntervalMs),
    );
  }

  private stopTimers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  private sayHello(): void {
    const b = this.current;
    this.send({
      type: 'HELLO',
      nodeId: this.opts.nodeId,
      firmware: this.opts.firmware,
      protocol: 1,
      capabilities: CAPABILITY.BADGE_READER | CAPABILITY.RELAY | CAPABILITY.RELAY_SENSE | CAPABILITY.ENERGY_METER | CAPABILITY.BUSY_INPUT | CAPABILITY.INDICATOR,
      resetCause: RESET_CAUSE.indexOf(b.resetCause as (typeof RESET_CAUSE)[number]),
      bootId: b.bootId,
      heartbeatS: this.opts.heartbeatS,
    });
  }

  private sendHeartbeat(): void {
    const flags =
      (this.relayRequested ? HEARTBEAT_FLAG.RELAY_REQUESTED : 0) |
      (this.relaySensed ? HEARTBEAT_FLAG.RELAY_SENSED : 0) |
      (this.busy ? HEARTBEAT_FLAG.BUSY : 0) |
      (this.faultActive ? HEARTBEAT_FLAG.FAULT_ACTIVE : 0) |
      HEARTBEAT_FLAG.READER_OK;
    const uptimeS = Math.floor(((performance.now() - this.bootedAt) / 1000) * this.opts.timeScale);
    this.send({ type: 'HEARTBEAT', bootId: this.current.bootId, uptimeS, flags });
  }

  sendMeter(): void {
    this.integrate();
    const b = this.current;
    const counters = { energyMwh: Math.floor(b.energyMwh), relayOnS: Math.floor(b.relayOnS), activeS: Math.floor(b.activeS), filamentMm: b.reported.filamentMm };
    const w = this.drawnW();
    const sent = this.send({
      type: 'METER',
      bootId: b.bootId,
      ...wire(counters),
      powerMw: Math.round(w * 1000),
      currentMa: Math.round((w / this.opts.voltageV) * 1000),
      voltageDv: Math.round(this.opts.voltageV * 10),
    });
    if (sent) b.reported = counters;
  }

  private sendRelayState(reason: number): void {
    this.send({ type: 'RELAY_STATE', requested: this.relayRequested ? 1 : 0, sensed: this.relaySensed ? 1 : 0, reason });
  }

  /** A contact that does not follow the coil raises FAULT 0x0102 (welded) or 0x0103 (failed to close), cleared once it follows (PROTOCOL.md §9). */
  private checkRelayFault(): void {
    const code = this.relaySensed === this.relayRequested ? 0 : this.relayRequested ? 0x0103 : 0x0102;
    if (code === this.relayFault) return;
    if (this.relayFault) this.fault(this.relayFault, 2, 'relay contact follows the coil again', false);
    if (code) this.fault(code, 2, code === 0x0102 ? 'relay welded: contact closed, coil off' : 'relay failed to close');
    this.relayFault = code;
  }

  private receive(msg: Message): void {
    this.emit('received', msg);
    const spec = MESSAGES[msg.type];
    if (spec.reliable) {
      this.send({ type: 'ACK', ackSeq: msg.seq, ackType: spec.code });
      if (this.lastIn && this.lastIn.seq === msg.seq && this.lastIn.code === spec.code) return;
      this.lastIn = { seq: msg.seq, code: spec.code };
    }
    switch (msg.type) {
      case 'ACK':
        if (this.inflight && this.inflight.seq === msg.ackSeq && this.inflight.code === msg.ackType) {
          clearTimeout(this.inflight.timer!);
          this.inflight = null;
          this.pump();
        }
        return;
      case 'RELAY_SET': {
        this.integrate();
        this.relayRequested = msg.state === 1;
        if (!this.relayStuck) this.relaySensed = this.relayRequested;
        this.sendRelayState(msg.reason);
        this.checkRelayFault();
        return;
      }
      case 'INDICATE':
        this.indications.push({ pattern: msg.pattern, durationMs: msg.durationMs, text: msg.text });
        return;
      case 'REQUEST':
        if (msg.what === 1) this.sayHello();
        else if (msg.what === 2) this.sendMeter();
        else if (msg.what === 3) this.sendRelayState(0);
        else if (msg.what === 4) this.send({ type: 'INPUT', inputs: this.busy ? INPUT_BIT.BUSY : 0, changed: 0 });
        return;
      default:
        return;
    }
  }

  // ---- link layer (what the firmware does) ----

  /** Returns whether the frame went out now (unreliable) or was queued (reliable). `replayable`: kept for replay(). */
  private send(out: Outgoing, replayable = true): boolean {
    const seq = this.seq;
    this.seq = (this.seq + 1) & 0xffff;
    const msg = { ...out, seq } as Message;
    const frame = encodeFrame(msg);
    const spec = MESSAGES[msg.type];
    if (replayable) {
      const mine = this.sentFrames.get(this.current.bootId) ?? new Map<Message['type'], Uint8Array>();
      this.sentFrames.set(this.current.bootId, mine.set(msg.type, frame));
    }
    if (!spec.reliable) return this.write(frame, msg);
    this.queue.push({ frame, seq, code: spec.code, tries: 0, timer: null });
    this.pump();
    return true;
  }

  private pump(): void {
    if (this.inflight || this.queue.length === 0 || !this.sink) return;
    const p = (this.inflight = this.queue.shift()!);
    const attempt = () => {
      if (this.inflight !== p) return;
      if (p.tries++ >= MAX_TRIES) {
        this.inflight = null;
        return this.pump();
      }
      this.write(p.frame, null);
      p.timer = setTimeout(attempt, ACK_TIMEOUT_MS);
    };
    attempt();
  }

  /** Returns whether the frame left intact. */
  private write(frame: Uint8Array, msg: Message | null): boolean {
    if (!this.sink || this.isSilent()) return false;
    const loseAck = msg?.type === 'ACK' && this.lostAcks > 0;
    if (loseAck) this.lostAcks--;
    if (loseAck || this.corruptNextFrames > 0) {
      if (!loseAck) this.corruptNextFrames--;
      const bad = frame.slice();
      bad[Math.floor(bad.length / 2)]! ^= 0x10;
      this.sink(bad);
      return false;
    }
    this.sink(frame);
    if (msg) this.emit('sent', msg);
    return true;
  }

  private rawWrite(bytes: Uint8Array): void {
    if (this.sink && !this.isSilent()) this.sink(bytes);
  }

  private isSilent(): boolean {
    return Date.now() < this.silentUntil;
  }
}

/** Counters as a METER carries them: each a u32, wrapping at 2^32. */
function wire(counters: Counters, extra: Partial<Counters> = {}): Counters {
  const out = { ...counters };
  for (const k of Object.keys(out) as (keyof Counters)[]) out[k] = (counters[k] + (extra[k] ?? 0)) % WRAP;
  return out;
}
