/**
 * HELLO→ACK round trip over a pseudo-terminal through the whole gateway stack (serialport,
 * SerialLink, framer, MeteringNode driver, journal), next to a raw echo of the same bytes
 * over the same kind of PTY pair measured in the same run. Needs socat.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { encodeFrame, FrameDecoder } from '../firmware-protocol/src/index.js';
import { meteringNodeSchema } from '../gateway/src/config/schema.js';
import { MeteringNode } from '../gateway/src/devices/metering-node/driver.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { hasSocat } from '../simulators/src/transports.js';
import { round, summarize, type BenchResult, type BenchSize } from './stats.js';

/** Round trips measured, after `warmup` that are not. */
const SIZES = { full: { n: 2000, warmup: 200 }, tiny: { n: 20, warmup: 2 } } satisfies Record<BenchSize, object>;
type Size = (typeof SIZES)[BenchSize];

async function ptyPair(dir: string, name: string): Promise<{ a: string; b: string; proc: ChildProcess }> {
  const a = join(dir, `${name}-a`);
  const b = join(dir, `${name}-b`);
  const proc = spawn('socat', [`PTY,link=${a},rawer,echo=0`, `PTY,link=${b},rawer,echo=0`], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  while (!existsSync(a) || !existsSync(b)) {
    if (Date.now() > deadline) throw new Error('socat did not create the PTY pair');
    await new Promise((r) => setTimeout(r, 10));
  }
  return { a, b, proc };
}

async function open(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

const hello = (seq: number) =>
  encodeFrame({ type: 'HELLO', seq, nodeId: 'bench-node', firmware: '1.0.0', protocol: 1, capabilities: 0x7f, resetCause: 1, bootId: 42, heartbeatS: 5 });

/** Sends `frame(i)` and waits for `reply` bytes to come back, n + warmup times; returns µs per round trip. */
async function measure({ n, warmup }: Size, port: SerialPort, frame: (i: number) => Uint8Array, waitReply: (onReply: () => void) => (chunk: Buffer) => void): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n + warmup; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      const onData = waitReply(() => {
        port.off('data', onData);
        resolve();
      });
      port.on('data', onData);
      port.write(frame(i));
    });
    if (i >= warmup) samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return samples;
}

/**
 * The floor for any round trip over a pseudo-terminal: bytes written at one end of a socat
 * PTY pair, echoed back by a plain serialport reader at the other end, no protocol.
 */
export interface RawEchoLink {
  /** Writes `frame` and resolves with the µs until as many bytes have come back. */
  roundTrip(frame: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

/** Opens a raw echo over a new PTY pair whose links are made in `dir`. */
export async function openRawEcho(dir: string): Promise<RawEchoLink> {
  const pair = await ptyPair(dir, 'raw');
  let a: SerialPort | null = null;
  let b: SerialPort | null = null;
  const close = async () => {
    for (const port of [a, b]) if (port?.isOpen) await new Promise((r) => port.close(r));
    pair.proc.kill();
  };
  try {
    a = await open(pair.a);
    const echo = (b = await open(pair.b));
    echo.on('data', (d: Buffer) => echo.write(d));
  } catch (err) {
    await close();
    throw err;
  }
  const port = a;
  const roundTrip = (frame: Uint8Array) =>
    new Promise<number>((resolve) => {
      let got = 0;
      const onData = (chunk: Buffer) => {
        got += chunk.length;
        if (got < frame.length) return;
        port.off('data', onData);
        resolve(Number(process.hrtime.bigint() - t0) / 1000);
      };
      port.on('data', onData);
      const t0 = process.hrtime.bigint();
      port.write(frame);
    });
  return { roundTrip, close };
}

export async function benchRoundTrip(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { n, warmup } = SIZES[size];
  if (!hasSocat()) return [{ bench: 'hello-ack-roundtrip', skipped: 'socat is not installed (apt-get install socat)' }];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-'));

  // Raw echo of the same bytes, back to back.
  const raw = await openRawEcho(dir);
  const rawSamples: number[] = [];
  for (let i = 0; i < n + warmup; i++) {
    const us = await raw.roundTrip(hello(i & 0xffff));
    if (i >= warmup) rawSamples.push(us);
  }
  await raw.close();
  const len = hello(0).length;

  // Full stack: the gateway's MeteringNode on one end, the bench playing a node on the other.
  const pair = await ptyPair(dir, 'gw');
  const journal = Journal.open(join(dir, 'data'));
  const cfg = meteringNodeSchema.parse({ id: 'bench-node', kind: 'metering-node', serial: { path: pair.b } });
  const node = new MeteringNode(cfg, journal, createLogger({ level: 'error', format: 'json' }));
  node.start();
  const nodePort = await open(pair.a);
  await new Promise((r) => setTimeout(r, 300)); // let the gateway open its end and send REQUEST HELLO
  const stackSamples = await measure(SIZES[size], nodePort, (i) => hello(i & 0xffff), (done) => {
    const d = new FrameDecoder((m) => m.type === 'ACK' && m.ackType === 0x01 && done());
    return (chunk) => d.push(chunk);
  });
  await new Promise((r) => nodePort.close(r));
  await node.stop();
  journal.close();
  pair.proc.kill();
  rmSync(dir, { recursive: true, force: true });

  const rawS = summarize(rawSamples);
  const stackS = summarize(stackSamples);
  const ratio = round(stackS.p99Us / rawS.p99Us, 2);
  return [
    { bench: 'pty-raw-echo', path: 'serialport write → PTY pair → serialport echo → back', frameBytes: len, ...rawS },
    {
      bench: 'hello-ack-roundtrip',
      path: 'node HELLO → PTY → SerialLink → framer → MeteringNode (ACK, journal) → PTY → node',
      frameBytes: len,
      ...stackS,
      p99VsRawEcho: ratio,
      target: 'p99 within 2x of the raw PTY echo',
      pass: ratio <= 2,
    },
  ];
}
