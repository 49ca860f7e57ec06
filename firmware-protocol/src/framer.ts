/**
 * Stream framer: bytes in, decoded messages out. The buffer never grows past one maximum
 * wire frame; anything longer is dropped up to the next 0x00, which is also how the framer
 * resynchronises after line noise. Rejected frames are counted and reported with a
 * 'rejected' event; nothing is ever thrown out of the stream.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { cobsDecodeInto } from './cobs.js';
import { decodeRaw, FRAME_ERRORS, MAX_FRAME, MAX_WIRE_FRAME, type FrameError } from './codec.js';
import type { Message } from './messages.js';

export interface FramerStats {
  bytes: number;
  frames: number;
  errors: Record<FrameError, number>;
}

export interface FrameRejection {
  error: FrameError;
  detail: string;
  /** The first bytes of the rejected frame, hex, for logs. */
  head: string;
}

export function emptyFramerStats(): FramerStats {
  return { bytes: 0, frames: 0, errors: Object.fromEntries(FRAME_ERRORS.map((e) => [e, 0])) as Record<FrameError, number> };
}

/**
 * The framing state machine without the stream around it, for callers that want to
 * decode a buffer synchronously (tests, benchmarks, the simulator).
 */
export class FrameDecoder {
  readonly stats = emptyFramerStats();
  private readonly buf = new Uint8Array(MAX_WIRE_FRAME - 1);
  private readonly raw = new Uint8Array(MAX_FRAME);
  private len = 0;
  private discarding = false;

  constructor(
    private readonly onMessage: (msg: Message) => void,
    private readonly onReject: (r: FrameRejection) => void = () => {},
  ) {}

  push(chunk: Uint8Array): void {
    this.stats.bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b !== 0) {
        if (this.discarding) continue;
        if (this.len === this.buf.length) {
          this.reject('oversized', `more than ${MAX_WIRE_FRAME - 1} bytes before a delimiter`, this.len);
          this.discarding = true;
          this.len = 0;
          continue;
        }
        this.buf[this.len++] = b;
        continue;
      }
      if (this.discarding) this.discarding = false;
      else if (this.len > 0) this.endFrame();
      this.len = 0;
    }
  }

  private endFrame(): void {
    const n = cobsDecodeInto(this.buf, 0, this.len, this.raw);
    if (n < 0) return this.reject('cobs', 'invalid COBS code', this.len);
    const result = decodeRaw(this.raw, n);
    if (!result.ok) return this.reject(result.error, result.detail, this.len);
    this.stats.frames++;
    this.onMessage(result.message);
  }

  private reject(error: FrameError, detail: string, length: number): void {
    this.stats.errors[error]++;
    this.onReject({ error, detail, head: Buffer.from(this.buf.subarray(0, Math.min(length, 16))).toString('hex') });
  }
}

/** `Transform` wrapper: write bytes, read `Message` objects; emits 'rejected' with a FrameRejection. */
export class FramerStream extends Transform {
  private readonly decoder = new FrameDecoder(
    (msg) => this.push(msg),
    (r) => this.emit('rejected', r),
  );

  constructor() {
    super({ readableObjectMode: true });
  }

  get stats(): FramerStats {
    return this.decoder.stats;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.decoder.push(chunk);
    done();
  }
}
