/**
 * A serial RFID reader as a badge source: an RDM6300 on a USB serial adapter, the Pi's UART
 * or a TCP serial bridge. The reader only talks, so it counts as online while its link is
 * open. It repeats a card's frame while the card is held; each hold is one tap.
 */
import { EventEmitter } from 'node:events';
import type { Journal } from '../../journal/journal.js';
import type { Logger } from '../../log.js';
import { WarnFlood } from '../../log-limit.js';
import { SerialLink } from '../../transport/serial-link.js';
import { deviceHealth, type DeviceHealth } from '../device.js';
import { TapFilter } from '../tap-filter.js';
import type { BadgeRead, BadgeReader } from '../tool-io.js';
import type { RfidReaderConfig } from './config.js';
import { Rdm6300Decoder, type Rdm6300Rejection } from './rdm6300.js';

export interface RfidReaderEvents {
  online: [];
  offline: [reason: string];
  badge: [BadgeRead];
}

export interface RfidReaderOptions {
  now?: () => Date;
  /** Monotonic milliseconds, for the debounce and the log's bounds. */
  clock?: () => number;
  /** Rejected input is logged a few lines a window, then summed up (default 10 s). */
  rejectionLogWindowMs?: number;
}

export class RfidReader extends EventEmitter<RfidReaderEvents> implements BadgeReader {
  readonly kind = 'rfid-reader';
  readonly readsBadges = true;
  readonly stats = { taps: 0, repeats: 0, badgeListenerErrors: 0 };
  private readonly link: SerialLink;
  private readonly decoder: Rdm6300Decoder;
  private readonly taps: TapFilter;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly clock: () => number;
  private readonly rejections: WarnFlood;
  private online = false;
  private since: Date;
  private lastSeen: Date | null = null;
  private lastTapAt: Date | null = null;
  private everConnected = false;

  constructor(
    private readonly cfg: RfidReaderConfig,
    private readonly journal: Journal,
    log: Logger,
    opts: RfidReaderOptions = {},
  ) {
    super();
    this.log = log.child({ device: cfg.id });
    this.now = opts.now ?? (() => new Date());
    this.clock = opts.clock ?? (() => performance.now());
    this.rejections = new WarnFlood(this.log, (n, kinds) => `${cfg.id}: ${n} more rejected inputs from the RFID reader (${kinds})`, { windowMs: opts.rejectionLogWindowMs, clock: this.clock });
    this.since = this.now();
    this.link = new SerialLink(cfg.serial, this.log);
    this.decoder = new Rdm6300Decoder(
      (uid) => this.onRead(uid),
      (r) => this.onReject(r),
    );
    this.taps = new TapFilter(cfg.repeatGapMs);
  }

  get id(): string {
    return this.cfg.id;
  }

  get isOnline(): boolean {
    return this.online;
  }

  /** How this reader names itself in badge events, the log and the journal. */
  get readerName(): string {
    return `${this.cfg.id} (${this.cfg.protocol})`;
  }

  start(): void {
    this.link.on('open', () => this.onOpen());
    this.link.on('close', (reason) => this.onClose(reason));
    this.link.on('data', (chunk) => this.decoder.push(chunk));
    this.link.start();
  }

  async stop(): Promise<void> {
    this.link.removeAllListeners();
    this.rejections.flush();
    await this.link.stop();
  }

  health(): DeviceHealth {
    const d = this.decoder.stats;
    return deviceHealth(this.cfg, this.kind, { online: this.online, lastSeen: this.lastSeen, since: this.since }, {
      protocol: this.cfg.protocol,
      linkOpen: this.link.isOpen,
      lastTapAt: this.lastTapAt?.toISOString() ?? null,
      taps: this.stats.taps,
      repeats: this.stats.repeats,
      frames: { bytes: d.bytes, valid: d.frames, discardedBytes: d.discardedBytes, rejected: { ...d.rejected } },
      link: { ...this.link.stats },
    });
  }

  private onOpen(): void {
    this.journal.record(this.everConnected ? 'device.reconnected' : 'device.connected', this.cfg.id, { target: this.cfg.serial.path });
    this.everConnected = true;
    this.online = true;
    this.since = this.now();
    this.emit('online');
  }

  private onClose(reason: string): void {
    this.decoder.flush();
    this.journal.record('device.lost', this.cfg.id, { reason });
    if (!this.online) return;
    this.online = false;
    this.since = this.now();
    this.log.warn({ reason }, 'RFID reader offline');
    this.emit('offline', reason);
  }

  private onRead(uid: string): void {
    this.lastSeen = this.now();
    if (!this.taps.read(uid, this.clock())) {
      this.stats.repeats++;
      return;
    }
    this.stats.taps++;
    this.lastTapAt = this.lastSeen;
    this.log.info({ uid }, 'badge tapped');
    try {
      this.emit('badge', { uid, reader: this.readerName });
    } catch (err) {
      // A failing listener must not cut off the frames after this one in the same chunk.
      this.stats.badgeListenerErrors++;
      this.log.error({ err, uid }, 'a badge listener failed');
    }
  }

  /** Each rejection is counted by the decoder; the log gets a few lines a window and a summary, whatever the flood. */
  private onReject(r: Rdm6300Rejection): void {
    this.rejections.warn(r.problem, { problem: r.problem, bytes: describeBytes(r), length: r.length }, `${this.cfg.id}: rejected input from the RFID reader: ${r.detail}`);
  }
}

function describeBytes(r: Rdm6300Rejection): string {
  return r.length * 2 > r.head.length ? `${r.head}… (${r.length} bytes)` : r.head;
}
