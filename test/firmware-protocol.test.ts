import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  cobsDecodeInto,
  cobsEncodeInto,
  cobsMaxEncodedLength,
  crc16,
  decodeFrame,
  encodeFrame,
  FrameDecoder,
  FramerStream,
  MAX_WIRE_FRAME,
  MESSAGES,
  REPLAY_WINDOW,
  replayCheck,
  type FrameRejection,
  type Message,
  type ReplayWindow,
} from '../firmware-protocol/src/index.js';
import { fromJson, toJson, type Vectors } from '../firmware-protocol/src/vectors.js';

const vectors = JSON.parse(readFileSync(new URL('../firmware-protocol/vectors.json', import.meta.url), 'utf8')) as Vectors;
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function decodeAll(chunks: Uint8Array[]) {
  const messages: Message[] = [];
  const rejected: FrameRejection[] = [];
  const d = new FrameDecoder((m) => messages.push(m), (r) => rejected.push(r));
  for (const c of chunks) d.push(c);
  return { messages, rejected, stats: d.stats, decoder: d };
}

describe('CRC-16/CCITT-FALSE', () => {
  it('has the catalogue check value over "123456789"', () => {
    expect(crc16(new TextEncoder().encode('123456789')).toString(16)).toBe(vectors.crc.check);
  });
});

describe('COBS', () => {
  // Examples from the COBS paper (Cheshire & Baker) as listed in its common references.
  const cases: [string, string][] = [
    ['00', '0101'],
    ['0000', '010101'],
    ['001100', '01021101'],
    ['11220033', '03112202 33'.replace(' ', '')],
    ['11223344', '0511223344'],
    ['11000000', '02110101 01'.replace(' ', '')],
  ];
  it.each(cases)('encodes %s as %s and back', (plain, stuffed) => {
    const src = fromHex(plain);
    const out = new Uint8Array(cobsMaxEncodedLength(src.length));
    const n = cobsEncodeInto(src, out);
    expect(hex(out.subarray(0, n))).toBe(stuffed);
    const back = new Uint8Array(src.length + 2);
    expect(hex(back.subarray(0, cobsDecodeInto(out, 0, n, back)))).toBe(plain);
  });

  it('round-trips any bytes, with no zero in the output and 254-byte runs handled', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 800 }), fc.constantFrom(254, 508, 253, 255).map((n) => new Uint8Array(n).fill(7))), (src) => {
        const out = new Uint8Array(cobsMaxEncodedLength(src.length));
        const n = cobsEncodeInto(src, out);
        expect(n).toBeLessThanOrEqual(out.length);
        expect(out.subarray(0, n).includes(0)).toBe(false);
        const back = new Uint8Array(src.length + 1);
        expect(hex(back.subarray(0, cobsDecodeInto(out, 0, n, back)))).toBe(hex(src));
      }),
    );
  });
});

describe('golden vectors (firmware-protocol/vectors.json)', () => {
  const types = new Set(vectors.valid.map((v) => v.message.type));
  it('cover every message type', () => {
    expect([...types].sort()).toEqual(Object.keys(MESSAGES).sort());
  });

  it.each(vectors.valid.map((v) => [v.name, v] as const))('decodes: %s', (_name, v) => {
    const r = decodeFrame(fromHex(v.hex));
    expect(r.ok && toJson(r.message)).toEqual(v.message);
  });

  it.each(vectors.valid.filter((v) => !v.decodeOnly).map((v) => [v.name, v] as const))('encodes: %s', (_name, v) => {
    expect(hex(encodeFrame(fromJson(v.message)))).toBe(v.hex);
  });

  it.each(vectors.invalid.map((v) => [v.name, v] as const))('rejects: %s', (_name, v) => {
    const { messages, rejected } = decodeAll([fromHex(v.hex)]);
    expect(messages).toEqual([]);
    expect(rejected.map((r) => r.error)).toEqual([v.error]);
  });

  it('includes a frame of the maximum wire size', () => {
    expect(Math.max(...vectors.valid.map((v) => v.hex.length / 2))).toBe(MAX_WIRE_FRAME);
  });
});

describe('encoder', () => {
  it('refuses values that do not fit, naming the field', () => {
    expect(() => encodeFrame({ type: 'RELAY_SET', seq: 1, state: 256, reason: 0 })).toThrow('RELAY_SET.state: 256 is not a u8');
    expect(() => encodeFrame({ type: 'BADGE', seq: 1, reader: 1, uid: new Uint8Array(11) })).toThrow('BADGE.uid: 11 bytes, at most 10');
    expect(() => encodeFrame({ type: 'ACK', seq: 70000, ackSeq: 1, ackType: 1 })).toThrow('ACK.seq');
  });
});

describe('framer', () => {
  const frames = vectors.valid.map((v) => fromHex(v.hex));
  const all = Buffer.concat(frames);

  it('decodes a stream cut at every possible position', () => {
    for (let cut = 1; cut < all.length; cut += 7) {
      const { messages, stats } = decodeAll([all.subarray(0, cut), all.subarray(cut)]);
      expect(messages).toHaveLength(frames.length);
      expect(stats.frames).toBe(frames.length);
    }
  });

  it('decodes a stream fed one byte at a time', () => {
    const { messages } = decodeAll([...all].map((b) => new Uint8Array([b])));
    expect(messages.map((m) => m.type)).toEqual(vectors.valid.map((v) => v.message.type));
  });

  it('resynchronises after garbage and counts each kind of error', () => {
    const good = encodeFrame({ type: 'INPUT', seq: 1, inputs: 1, changed: 1 });
    const { messages, stats } = decodeAll([
      fromHex('ffee'), // noise before the first delimiter: joins the next frame, which is lost
      good,
      new Uint8Array(600).fill(0x42), // a runaway line: dropped as one oversized frame
      new Uint8Array([0]),
      good,
      ...vectors.invalid.map((v) => fromHex(v.hex)),
      good,
    ]);
    expect(messages).toHaveLength(2);
    expect(stats.errors).toEqual({ oversized: 2, cobs: 2, short: 1, crc: 2, version: 1, 'unknown-type': 1, payload: 2 });
  });

  it('works as a stream.Transform: bytes in, messages out, rejections as events', async () => {
    const framer = new FramerStream();
    const rejected: string[] = [];
    framer.on('rejected', (r: FrameRejection) => rejected.push(r.error));
    Readable.from([...frames.slice(0, 3), fromHex(vectors.invalid[0]!.hex), ...frames.slice(3)]).pipe(framer);
    const out: Message[] = [];
    for await (const m of framer) out.push(m as Message);
    expect(out).toHaveLength(frames.length);
    expect(rejected).toEqual(['crc']);
    expect(framer.stats.frames).toBe(frames.length);
  });

  it('never throws on random bytes, and its buffer never grows', () => {
    const d = new FrameDecoder(() => {});
    const bufferBytes = () => (d as unknown as { buf: Uint8Array }).buf.length;
    const before = bufferBytes();
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 20 }), (chunks) => {
        for (const c of chunks) d.push(c);
        expect(bufferBytes()).toBe(before);
      }),
      { numRuns: 500 },
    );
  });

  it('still decodes every valid frame among garbage that ends in a delimiter, in order', () => {
    const msg = fc.constantFrom(...vectors.valid.filter((v) => !v.decodeOnly).map((v) => fromJson(v.message)));
    const item = fc.oneof(
      msg.map((m) => ({ kind: 'frame' as const, m })),
      fc.uint8Array({ minLength: 1, maxLength: 400 }).map((g) => ({ kind: 'garbage' as const, g })),
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 30 }), fc.integer({ min: 1, max: 64 }), (items, chunk) => {
        const parts = items.map((it) => (it.kind === 'frame' ? encodeFrame(it.m) : Buffer.concat([it.g, Buffer.from([0])])));
        const stream = Buffer.concat(parts);
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < stream.length; i += chunk) chunks.push(stream.subarray(i, i + chunk));
        const got = decodeAll(chunks).messages.map((m) => JSON.stringify(toJson(m)));
        const want = items.filter((it) => it.kind === 'frame').map((it) => JSON.stringify(toJson(it.m)));
        // Garbage may, very rarely, pass as a frame; the valid frames must all be there, in order.
        let i = 0;
        for (const g of got) if (g === want[i]) i++;
        expect(i).toBe(want.length);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects, never throws, when any byte of a valid frame is corrupted', () => {
    const frame = encodeFrame({ type: 'METER', seq: 9, bootId: 7, energyMwh: 1, relayOnS: 2, activeS: 3, powerMw: 4, currentMa: 5, voltageDv: 6, filamentMm: 7 });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: frame.length - 2 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = frame.slice();
        bad[at]! ^= xor;
        const { messages, rejected } = decodeAll([bad, new Uint8Array([0])]);
        expect(messages).toHaveLength(0);
        expect(rejected.length).toBeGreaterThan(0);
      }),
    );
  });
});

describe('replay window (PROTOCOL.md §7)', () => {
  it.each(vectors.replay.cases.map((c) => [c.name, c] as const))('gives the verdicts of the vectors: %s', (_name, c) => {
    let w: ReplayWindow | null = null;
    const verdicts = c.seqs.map((seq) => {
      const r = replayCheck(w, seq);
      w = r.window;
      return r.verdict;
    });
    expect(verdicts).toEqual(c.verdicts);
    expect(vectors.replay.window).toBe(REPLAY_WINDOW);
  });

  it('acts on each frame once, whatever the repeats, losses and late frames within the window', () => {
    fc.assert(
      fc.property(fc.nat(0xffff), fc.array(fc.integer({ min: -(REPLAY_WINDOW - 1), max: 3 }), { maxLength: 200 }), (start, moves) => {
        // a sender numbering from `start`; the receiver sees some of its frames, some twice, some late
        let w: ReplayWindow | null = null;
        let newest = start;
        const actedOn = new Set<number>();
        for (const m of [0, ...moves]) {
          newest = m > 0 ? (newest + m) & 0xffff : newest;
          const seq = (newest + Math.min(m, 0)) & 0xffff;
          const r = replayCheck(w, seq);
          w = r.window;
          if (r.verdict === 'new') {
            expect(actedOn.has(seq)).toBe(false);
            actedOn.add(seq);
          } else expect(actedOn.has(seq) || r.verdict === 'old').toBe(true);
        }
      }),
    );
  });
});
