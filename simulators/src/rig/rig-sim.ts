/**
 * A simulated networked instrument on MQTT (mqtt.js): the Mosquito sensor rig, or a metered
 * smart plug. It speaks the lab's topics and payloads (gateway/src/mqtt/schemas.ts) as the
 * firmware does: a last will of `offline` with a session counter, a retained birth, telemetry
 * with cumulative counters, `bootId` and `seq` every interval and at every change, replies to
 * commands, badge taps from its reader.
 *
 * The physics is exact and piecewise constant: while the relay is on the tool draws idleW,
 * or powerW while it works (busy); simulated time runs timeScale times faster than real time.
 * The ground truth (`truth()`) is what really happened, whatever the network did to the
 * messages: tests compare the gateway's figures with it.
 *
 * Fault injection: dropping telemetry (`drop n`, the flaky mode), abrupt disconnections (the
 * will fires), bursts of messages, reboots (new boot id, counters from zero, relay off),
 * malformed payloads, faults.
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect, type MqttClient } from 'mqtt';
import { commandSchema, type Fault, type Telemetry } from '../../../gateway/src/mqtt/schemas.js';
import { topicsFor, type Topics } from '../../../gateway/src/mqtt/topics.js';

export type RigModel = 'mosquito-rig' | 'smart-plug';

export interface RigSimOptions {
  /** mqtt://host:port of the broker. */
  url: string;
  deviceId: string;
  password: string;
  baseTopic: string;
  model?: RigModel;
  powerW?: number;
  idleW?: number;
  telemetryIntervalMs?: number;
  timeScale?: number;
  /** Monotonic milliseconds (tests may drive time). */
  clock?: () => number;
}

export interface RigCounters {
  runtimeS: number;
  activeS: number;
  energyWh: number;
}

export interface RigTruth {
  model: RigModel;
  bootId: number;
  boots: number;
  connected: boolean;
  relay: boolean;
  busy: boolean;
  /** What really happened, over every boot. */
  total: RigCounters;
  /** The counters of this boot. */
  boot: RigCounters & { samples: number; seq: number };
  telemetry: { published: number; dropped: number; malformed: number };
  /** Connections after the first. */
  reconnects: number;
  lastIndication: { pattern: string; text?: string } | null;
}

const ZERO: RigCounters = { runtimeS: 0, activeS: 0, energyWh: 0 };
/** In flaky mode: share of telemetry messages lost, chance per telemetry interval of a dropped connection and of a burst. */
const FLAKY = { drop: 0.3, disconnect: 0.08, burst: 0.1 };

export class RigSim {
  readonly topics: Topics;
  readonly model: RigModel;
  private client: MqttClient | null = null;
  private readonly clock: () => number;
  private readonly timeScale: number;
  private powerW: number;
  private readonly idleW: number;
  private relay = false;
  private busyInput = false;
  private bootId = randomInt(0x7fff_ffff);
  private boots = 1;
  private seq = 0;
  private samples = 0;
  private boot: RigCounters = { ...ZERO };
  private total: RigCounters = { ...ZERO };
  private lastAdvance: number;
  private readonly faults = new Map<string, Fault>();
  /** +1 at every connection; in the will and the birth, so the gateway can ignore a stale will. */
  private session = randomInt(1_000_000);
  private everConnected = false;
  private reconnects = 0;
  private unplugged = false;
  private flaky = false;
  private dropNext = 0;
  private readonly counts = { published: 0, dropped: 0, malformed: 0 };
  private lastIndication: RigTruth['lastIndication'] = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: RigSimOptions) {
    this.topics = topicsFor(opts.baseTopic);
    this.model = opts.model ?? 'mosquito-rig';
    this.clock = opts.clock ?? (() => performance.now());
    this.timeScale = opts.timeScale ?? 1;
    this.powerW = opts.powerW ?? 300;
    this.idleW = opts.idleW ?? 4;
    this.lastAdvance = this.clock();
  }

  get id(): string {
    return this.opts.deviceId;
  }

  /** Connects (and keeps reconnecting) and starts publishing. */
  start(): void {
    if (this.client) return;
    this.connect();
    this.timer = setInterval(() => this.interval(), this.opts.telemetryIntervalMs ?? 2000);
  }

  /** A clean stop: `offline` published, then DISCONNECT (no will). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (client.connected) {
      const said = client.publishAsync(this.topics.status(this.id), this.statusPayload('offline'), { qos: 1, retain: true }).catch(() => {});
      // a broker that went first never acknowledges it
      await Promise.race([said, new Promise((r) => setTimeout(r, 1000))]);
    }
    await closeClient(client);
  }

  // ---- the tool ----

  setBusy(on: boolean): void {
    this.advance();
    this.busyInput = on;
    this.publishTelemetry();
  }

  setPower(watts: number): void {
    this.advance();
    this.powerW = watts;
    this.publishTelemetry();
  }

  /** The relay switched at the rig itself (a local button), not by command. */
  setRelay(on: boolean): void {
    this.advance();
    this.relay = on;
    this.publishTelemetry();
  }

  fault(code: string, severity: Fault['severity'], text: string): void {
    this.faults.set(code, { code, severity, text });
    this.publishTelemetry();
  }

  clearFault(code: string): void {
    this.faults.delete(code);
    this.publishTelemetry();
  }

  /** A badge tapped on the rig's reader. */
  badge(uid: string): void {
    void this.client?.publishAsync(this.topics.badge(this.id), JSON.stringify({ uid }), { qos: 1 }).catch(() => {});
  }

  // ---- fault injection ----

  /** The next n telemetry messages are lost. */
  drop(n: number): void {
    this.dropNext += n;
  }

  setFlaky(on: boolean): void {
    this.flaky = on;
  }

  /** n telemetry messages at once. */
  burst(n: number): void {
    for (let i = 0; i < n; i++) this.publishTelemetry();
  }

  /** Payloads the gateway must refuse: not JSON, then JSON that is not telemetry. */
  malformed(): void {
    const c = this.client;
    if (!c) return;
    this.counts.malformed += 2;
    void c.publishAsync(this.topics.telemetry(this.id), '{"seq": 1, "bootId": oops', { qos: 1 }).catch(() => {});
    void c.publishAsync(this.topics.telemetry(this.id), JSON.stringify({ seq: -1, bootId: this.bootId, counters: { energyWh: 'lots' } }), { qos: 1 }).catch(() => {});
  }

  /** The connection dies without a DISCONNECT (the broker sends the will); mqtt.js reconnects a second later. */
  dropConnection(): void {
    this.client?.stream?.destroy();
  }

  /** Restarts: new boot id, counters and seq from zero, relay off; the old connection dies (its will fires). */
  reboot(): void {
    this.advance();
    this.bootId = randomInt(0x7fff_ffff);
    this.boots++;
    this.seq = 0;
    this.samples = 0;
    this.boot = { ...ZERO };
    this.relay = false;
    this.dropConnection();
  }

  /** The network cable out: the connection dies and stays away until replug. */
  async unplug(): Promise<void> {
    this.unplugged = true;
    const client = this.client;
    this.client = null;
    client?.stream?.destroy();
    if (client) await closeClient(client);
  }

  async replug(): Promise<void> {
    this.unplugged = false;
    if (!this.client && this.timer) this.connect();
  }

  /** Publishes telemetry now. */
  telemetryNow(): void {
    this.publishTelemetry();
  }

  truth(): RigTruth {
    this.advance();
    return {
      model: this.model,
      bootId: this.bootId,
      boots: this.boots,
      connected: this.client?.connected ?? false,
      relay: this.relay,
      busy: this.busy,
      total: { ...this.total },
      boot: { ...this.boot, samples: this.samples, seq: this.seq },
      telemetry: { ...this.counts },
      reconnects: this.reconnects,
      lastIndication: this.lastIndication,
    };
  }

  // ---- inside ----

  /** The tool works only while it has power. */
  private get busy(): boolean {
    return this.relay && this.busyInput;
  }

  private get drawW(): number {
    return !this.relay ? 0 : this.busy ? this.powerW : this.idleW;
  }

  /** Integrates the counters up to now. */
  private advance(): void {
    const now = this.clock();
    const dt = ((now - this.lastAdvance) / 1000) * this.timeScale;
    this.lastAdvance = now;
    if (dt <= 0 || !this.relay) return;
    const d: RigCounters = { runtimeS: dt, activeS: this.busy ? dt : 0, energyWh: (this.drawW * dt) / 3600 };
    for (const k of ['runtimeS', 'activeS', 'energyWh'] as const) {
      this.boot[k] += d[k];
      this.total[k] += d[k];
    }
  }

  private connect(): void {
    if (this.unplugged) return;
    const client = connect(this.opts.url, {
      clientId: this.id,
      username: this.id,
      password: this.opts.password,
      clean: true,
      keepalive: 10,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      will: { topic: this.topics.status(this.id), payload: Buffer.from(this.statusPayload('offline')), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', () => {
      if (this.everConnected) this.reconnects++;
      this.everConnected = true;
      void client.subscribeAsync(this.topics.command(this.id), { qos: 1 }).catch(() => {});
      void client.publishAsync(this.topics.status(this.id), this.statusPayload('online'), { qos: 1, retain: true }).catch(() => {});
      this.publishTelemetry();
    });
    client.on('close', () => {
      // the next connection is a new session: its will and birth carry the new number
      this.session++;
      if (client.options.will) client.options.will.payload = Buffer.from(this.statusPayload('offline'));
    });
    client.on('message', (_topic, payload) => this.onCommand(payload));
    client.on('error', () => {}); // refused or reset: mqtt.js reconnects
  }

  private statusPayload(state: 'online' | 'offline'): string {
    return JSON.stringify({ state, session: this.session });
  }

  private interval(): void {
    if (this.flaky && this.client?.connected) {
      if (Math.random() < FLAKY.disconnect) return this.dropConnection();
      if (Math.random() < FLAKY.burst) return this.burst(2 + randomInt(5));
    }
    this.publishTelemetry();
  }

  private telemetry(): Telemetry {
    this.advance();
    this.samples++;
    this.seq = (this.seq + 1) >>> 0;
    const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
    const plug = this.model === 'smart-plug';
    return {
      seq: this.seq,
      bootId: this.bootId,
      uptimeS: round(this.boot.runtimeS, 3),
      counters: {
        runtimeS: round(this.boot.runtimeS, 3),
        // a plug knows no busy input: it reports power, and the gateway decides what is busy
        ...(plug ? {} : { activeS: round(this.boot.activeS, 3) }),
        samples: this.samples,
        energyWh: round(this.boot.energyWh, 6),
      },
      busy: plug ? false : this.busy,
      powerW: this.drawW,
      relay: this.relay,
      ...(plug ? {} : { faults: [...this.faults.values()] }),
    };
  }

  private publishTelemetry(): void {
    const client = this.client;
    if (!client?.connected) return;
    const t = this.telemetry();
    if (this.dropNext > 0 || (this.flaky && Math.random() < FLAKY.drop)) {
      if (this.dropNext > 0) this.dropNext--;
      this.counts.dropped++;
      return;
    }
    this.counts.published++;
    void client.publishAsync(this.topics.telemetry(this.id), JSON.stringify(t), { qos: 1 }).catch(() => {});
  }

  private onCommand(payload: Buffer): void {
    let parsed: ReturnType<typeof commandSchema.safeParse>;
    try {
      parsed = commandSchema.safeParse(JSON.parse(payload.toString('utf8')));
    } catch {
      return;
    }
    if (!parsed.success) {
      const transaction = (JSON.parse(payload.toString('utf8')) as { transaction?: unknown }).transaction;
      if (typeof transaction === 'string') this.reply(transaction, false, 'not a command this rig knows');
      return;
    }
    const cmd = parsed.data;
    switch (cmd.command) {
      case 'relay':
      case 'enable':
        this.advance();
        this.relay = cmd.on;
        this.publishTelemetry(); // the change first, then the reply: the gateway sees both in order
        return this.reply(cmd.transaction, true);
      case 'indicate':
        if (this.model === 'smart-plug') return this.reply(cmd.transaction, false, 'a plug has no indicator');
        this.lastIndication = { pattern: cmd.pattern, ...(cmd.text !== undefined && { text: cmd.text }) };
        return this.reply(cmd.transaction, true);
      case 'rebirth':
        void this.client?.publishAsync(this.topics.status(this.id), this.statusPayload('online'), { qos: 1, retain: true }).catch(() => {});
        this.publishTelemetry();
        return this.reply(cmd.transaction, true);
    }
  }

  private reply(transaction: string, ok: boolean, message?: string): void {
    void this.client?.publishAsync(this.topics.reply(this.id), JSON.stringify({ transaction, ok, ...(message !== undefined && { message }) }), { qos: 1 }).catch(() => {});
  }
}

/** Ends a client without waiting on a broker that may be gone (mqtt.js can wait on a reconnection that never comes). */
async function closeClient(client: MqttClient): Promise<void> {
  await Promise.race([client.endAsync(true).catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
  client.stream?.destroy();
}
