/**
 * A byte link to one device: a serial port (serialport) or a TCP serial bridge
 * (`socket://host:port`). It reconnects forever with capped exponential backoff, so a
 * device that is unplugged, power-cycled or whose bridge restarts comes back by itself.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { SerialPort } from 'serialport';
import type { Logger } from '../log.js';
import type { SerialConfig } from '../config/schema.js';
import { splitHostPort } from '../config/common.js';

export interface LinkStats {
  bytesIn: number;
  bytesOut: number;
  /** Failed opens and errors on an open link. */
  errors: number;
  /** Successful opens after the first. */
  reconnects: number;
}

interface LinkEvents {
  open: [];
  close: [reason: string];
  data: [chunk: Buffer];
}

/** What a link needs of a byte stream: serialport and net.Socket both fit. */
interface ByteStream {
  write(data: Uint8Array | string): boolean;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  removeAllListeners(): unknown;
  destroy(): unknown;
}

export function describeTarget(path: string): string {
  return path.startsWith('socket://') ? `TCP bridge ${path.slice('socket://'.length)}` : `serial port ${path}`;
}

export class SerialLink extends EventEmitter<LinkEvents> {
  readonly stats: LinkStats = { bytesIn: 0, bytesOut: 0, errors: 0, reconnects: 0 };
  private stream: ByteStream | null = null;
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private everOpened = false;
  private stopped = true;

  constructor(
    private readonly cfg: SerialConfig,
    private readonly log: Logger,
  ) {
    super();
  }

  get isOpen(): boolean {
    return this.stream !== null;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const s = this.stream;
    if (s) {
      this.stream = null;
      await closeStream(s);
      this.emit('close', 'stopped');
    }
  }

  /** Closes the link as if it had been lost and reconnects with the usual backoff. */
  restart(reason: string): void {
    if (this.stream) this.lost(this.stream, reason);
  }

  write(data: Uint8Array | string): boolean {
    if (!this.stream) return false;
    this.stats.bytesOut += data.length;
    this.stream.write(data);
    return true;
  }

  private connect(): void {
    this.timer = null;
    const path = this.cfg.path;
    const onOpen = (stream: ByteStream) => {
      if (this.stopped) return void closeStream(stream);
      this.stream = stream;
      this.attempt = 0;
      if (this.everOpened) this.stats.reconnects++;
      this.everOpened = true;
      stream.on('data', (chunk) => {
        this.stats.bytesIn += chunk.length;
        this.emit('data', chunk);
      });
      stream.on('error', (err) => this.lost(stream, err.message));
      stream.on('close', () => this.lost(stream, 'closed by the device or the system'));
      this.log.info({ target: path }, `opened ${describeTarget(path)}`);
      this.emit('open');
    };
    const onFail = (err: Error) => {
      this.stats.errors++;
      this.scheduleReconnect(`cannot open ${describeTarget(path)}: ${err.message}`);
    };

    if (path.startsWith('socket://')) {
      const { host, port } = splitHostPort(path.slice('socket://'.length));
      const socket: Socket = connect({ host, port, noDelay: true });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        onOpen(socket);
      });
      socket.once('error', (err) => {
        socket.destroy();
        onFail(err);
      });
    } else {
      const port = new SerialPort({ path, baudRate: this.cfg.baudRate, autoOpen: false, hupcl: false });
      port.open((err) => (err ? onFail(err) : onOpen(port)));
    }
  }

  private lost(stream: ByteStream, reason: string): void {
    if (this.stream !== stream) return;
    this.stream = null;
    this.stats.errors++;
    void closeStream(stream);
    this.emit('close', reason);
    this.scheduleReconnect(`lost ${describeTarget(this.cfg.path)}: ${reason}`);
  }

  private scheduleReconnect(why: string): void {
    if (this.stopped || this.timer) return;
    const { initialMs, maxMs } = this.cfg.reconnect;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 20));
    // Full jitter on the upper half, so many links that lost one hub do not retry in lock-step.
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt++;
    const log = this.attempt === 1 || base < maxMs ? this.log.warn.bind(this.log) : this.log.debug.bind(this.log);
    log({ target: this.cfg.path, retryInMs: delay, attempt: this.attempt }, `${why}; retrying`);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

function closeStream(s: ByteStream): Promise<void> {
  s.removeAllListeners();
  s.on('error', () => {});
  if (s instanceof SerialPort) {
    return new Promise((resolve) => (s.isOpen ? s.close(() => resolve()) : resolve()));
  }
  s.destroy();
  return Promise.resolve();
}
