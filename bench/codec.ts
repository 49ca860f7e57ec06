/** Frames decoded per second through the framer (target ≥ 500k/s). */
import { Readable } from 'node:stream';
import { encodeFrame, FrameDecoder, FramerStream, type Message } from '../firmware-protocol/src/index.js';
import { round, type BenchResult, type BenchSize } from './stats.js';

const TARGET = 500_000;
const SIZES = { full: { frames: 200_000, rounds: 5 }, tiny: { frames: 1_000, rounds: 1 } } satisfies Record<BenchSize, object>;

/** A realistic mix: mostly METER and HEARTBEAT, some ACK, BADGE, INPUT, RELAY_STATE. */
function corpus(frames: number): Buffer {
  const out: Uint8Array[] = [];
  for (let i = 0; i < frames; i++) {
    const seq = i & 0xffff;
    const k = i % 10;
    const m: Message =
      k < 6
        ? { type: 'METER', seq, bootId: 0x5eed1234, energyMwh: 1000 + i, relayOnS: i, activeS: i >> 1, powerMw: 185_000, currentMa: 812, voltageDv: 2301, filamentMm: i * 3 }
        : k < 8
          ? { type: 'HEARTBEAT', seq, bootId: 0x5eed1234, uptimeS: i, flags: 0b10111 }
          : k === 8
            ? { type: 'ACK', seq, ackSeq: seq - 1 & 0xffff, ackType: 0x20 }
            : { type: 'BADGE', seq, reader: 2, uid: new Uint8Array([4, 0xa1, 0xb2, 0xc3]) };
    out.push(encodeFrame(m));
  }
  return Buffer.concat(out);
}

function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

export async function benchCodec(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { frames, rounds } = SIZES[size];
  const data = corpus(frames);
  const parts = chunks(data, 4096);

  // Warm up the JIT on the same path.
  for (let i = 0; i < 3; i++) {
    const d = new FrameDecoder(() => {});
    for (const p of parts) d.push(p);
  }

  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const framer = new FramerStream();
    let n = 0;
    const t0 = process.hrtime.bigint();
    const done = new Promise<void>((resolve) => {
      framer.on('data', () => n++);
      framer.on('end', resolve);
    });
    Readable.from(parts).pipe(framer);
    await done;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (n !== frames) throw new Error(`framer decoded ${n} of ${frames} frames`);
    best = Math.max(best, n / s);
  }

  let decoderOnly = 0;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const d = new FrameDecoder(() => n++);
    const t0 = process.hrtime.bigint();
    for (const p of parts) d.push(p);
    decoderOnly = Math.max(decoderOnly, n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }

  return [
    {
      bench: 'framer-decode',
      path: 'FramerStream (stream.Transform) fed 4 KiB chunks, mixed METER/HEARTBEAT/ACK/BADGE frames',
      frames,
      bytesPerFrame: round(data.length / frames),
      framesPerSec: Math.round(best),
      target: `>= ${TARGET} frames/s`,
      pass: best >= TARGET,
    },
    { bench: 'decoder-core', path: 'FrameDecoder.push without the stream', frames, framesPerSec: Math.round(decoderOnly) },
  ];
}
