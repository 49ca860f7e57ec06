/**
 * The RDM6300 serial protocol (125 kHz EM4100 cards), 9600 baud 8N1, one frame per read:
 *
 *   0x02 | 10 ASCII hex: version/customer byte + 4-byte card id | 2 ASCII hex: XOR of the 5 bytes | 0x03
 *
 * The reader repeats the frame for as long as the card stays in the field; debouncing is the
 * adapter's job (reader.ts). The decoder never holds more than one frame's characters: bytes
 * outside a frame are garbage, reported in runs of at most MAX_GARBAGE_RUN bytes, and an STX
 * always starts a new frame, which is how it resynchronises (STX and ETX never occur inside a
 * frame, whose characters are hex digits). Nothing is thrown out of the decoder.
 */
import { Transform, type TransformCallback } from 'node:stream';

export const STX = 0x02;
export const ETX = 0x03;
/** Characters between STX and ETX: 10 for the 5 data bytes, 2 for the checksum. */
export const FRAME_CHARS = 12;
export const UID_BYTES = 5;
/** Bytes of garbage reported as one rejection; a continuous stream (a wrong baud rate) is reported as it comes. */
export const MAX_GARBAGE_RUN = 64;
/** Rejected bytes kept for the report. */
const HEAD_BYTES = 16;

export const RDM6300_PROBLEMS = ['checksum', 'non-hex', 'length', 'garbage'] as const;
export type Rdm6300Problem = (typeof RDM6300_PROBLEMS)[number];

export interface Rdm6300Rejection {
  problem: Rdm6300Problem;
  /** For a person: what was wrong. */
  detail: string;
  /** The first bytes rejected, hex. */
  head: string;
  /** How many bytes were rejected (the head may be shorter). */
  length: number;
}

export interface Rdm6300Stats {
  bytes: number;
  /** Valid frames, repeats of a held card included. */
  frames: number;
  /** Bytes that were not part of a valid frame. */
  discardedBytes: number;
  rejected: Record<Rdm6300Problem, number>;
}

export function emptyRdm6300Stats(): Rdm6300Stats {
  return { bytes: 0, frames: 0, discardedBytes: 0, rejected: Object.fromEntries(RDM6300_PROBLEMS.map((p) => [p, 0])) as Record<Rdm6300Problem, number> };
}

const HEX_DIGIT = /^[0-9A-Fa-f]$/;
const toHex = (bytes: ArrayLike<number>) => Buffer.from(Array.from(bytes)).toString('hex');

/** A card's frame as the reader sends it; `uid` is 10 hex digits (5 bytes), any case. */
export function encodeRdm6300(uid: string): Uint8Array {
  if (!/^[0-9A-Fa-f]{10}$/.test(uid)) throw new Error(`RDM6300 card id must be 10 hex digits (5 bytes), got "${uid}"`);
  const id = uid.toUpperCase();
  const checksum = Buffer.from(id, 'hex').reduce((x, b) => x ^ b, 0);
  return new Uint8Array([STX, ...Buffer.from(id + checksum.toString(16).toUpperCase().padStart(2, '0'), 'latin1'), ETX]);
}

type State = 'between' | 'frame' | 'overlong';

/** The framing state machine: push bytes in any chunking, get each card id and each rejection. */
export class Rdm6300Decoder {
  readonly stats = emptyRdm6300Stats();
  private readonly chars = new Uint8Array(FRAME_CHARS);
  private len = 0;
  private state: State = 'between';
  private garbageHead: number[] = [];
  private garbageLen = 0;
  private overlongLen = 0;

  constructor(
    private readonly onUid: (uid: string) => void,
    private readonly onReject: (r: Rdm6300Rejection) => void = () => {},
  ) {}

  /** Bytes held between pushes: at most one frame's characters (the buffer cap). */
  get pending(): number {
    return this.state === 'frame' ? this.len + 1 : 0;
  }

  push(chunk: Uint8Array): void {
    this.stats.bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === STX) {
        if (this.state === 'frame') this.reject('length', `frame cut off after ${this.len} characters by the next STX`, this.frameBytes(false), this.len + 1);
        this.endGarbage();
        this.state = 'frame';
        this.len = 0;
        continue;
      }
      switch (this.state) {
        case 'between':
          this.stats.discardedBytes++;
          if (this.garbageHead.length < HEAD_BYTES) this.garbageHead.push(b);
          if (++this.garbageLen >= MAX_GARBAGE_RUN) this.endGarbage();
          break;
        case 'frame':
          if (b === ETX) {
            this.endFrame();
            this.state = 'between';
          } else if (this.len < FRAME_CHARS) {
            this.chars[this.len++] = b;
          } else {
            this.reject('length', `more than ${FRAME_CHARS} characters after STX without ETX`, this.frameBytes(false), this.len + 1);
            this.stats.discardedBytes++;
            this.state = 'overlong';
            this.overlongLen = 1;
          }
          break;
        case 'overlong':
          // The rest of a frame already reported, up to its ETX; past MAX_GARBAGE_RUN bytes it counts as garbage again.
          this.stats.discardedBytes++;
          if (b === ETX) this.state = 'between';
          else if (++this.overlongLen >= MAX_GARBAGE_RUN) this.state = 'between';
          break;
      }
    }
  }

  /** Reports whatever is held (a frame cut off, a run of garbage) and starts afresh, e.g. when the link closes. */
  flush(): void {
    if (this.state === 'frame') this.reject('length', `frame cut off after ${this.len} characters`, this.frameBytes(false), this.len + 1);
    this.endGarbage();
    this.state = 'between';
    this.len = 0;
  }

  private frameBytes(withEtx: boolean): number[] {
    const bytes = [STX, ...this.chars.subarray(0, this.len)];
    if (withEtx) bytes.push(ETX);
    return bytes;
  }

  private endGarbage(): void {
    if (this.garbageLen === 0) return;
    const n = this.garbageLen;
    this.stats.rejected.garbage++;
    this.onReject({ problem: 'garbage', detail: `${n} byte${n === 1 ? '' : 's'} outside a frame`, head: toHex(this.garbageHead), length: n });
    this.garbageHead = [];
    this.garbageLen = 0;
  }

  private endFrame(): void {
    const n = this.len + 2;
    if (this.len !== FRAME_CHARS) return this.reject('length', `${this.len} characters between STX and ETX, expected ${FRAME_CHARS}`, this.frameBytes(true), n);
    const text = Buffer.from(this.chars).toString('latin1');
    const bad = [...text].findIndex((c) => !HEX_DIGIT.test(c));
    if (bad >= 0) return this.reject('non-hex', `character ${bad + 1} is 0x${hex2(this.chars[bad]!)}, not a hex digit`, this.frameBytes(true), n);
    const uid = text.slice(0, 2 * UID_BYTES).toUpperCase();
    const expected = Buffer.from(uid, 'hex').reduce((x, b) => x ^ b, 0);
    const got = parseInt(text.slice(2 * UID_BYTES), 16);
    if (got !== expected) return this.reject('checksum', `checksum ${hex2(got)} where the data gives ${hex2(expected)}`, this.frameBytes(true), n);
    this.stats.frames++;
    this.onUid(uid);
  }

  private reject(problem: Rdm6300Problem, detail: string, bytes: number[], length: number): void {
    this.stats.rejected[problem]++;
    this.stats.discardedBytes += problem === 'garbage' ? 0 : length;
    this.onReject({ problem, detail, head: toHex(bytes.slice(0, HEAD_BYTES)), length });
  }
}

const hex2 = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');

/** `Transform` wrapper: write bytes, read card ids (strings); emits 'rejected' with an Rdm6300Rejection. */
export class Rdm6300Parser extends Transform {
  private readonly decoder = new Rdm6300Decoder(
    (uid) => this.push(uid),
    (r) => this.emit('rejected', r),
  );

  constructor() {
    super({ readableObjectMode: true });
  }

  get stats(): Rdm6300Stats {
    return this.decoder.stats;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.decoder.push(chunk);
    done();
  }

  override _flush(done: TransformCallback): void {
    this.decoder.flush();
    done();
  }
}
