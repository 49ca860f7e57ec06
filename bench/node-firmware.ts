/**
 * The metering-node firmware in simavr beside the TypeScript simulator, in the same run: the
 * bench plays the gateway on the node's pseudo-terminal, asks for a HELLO (REQUEST what=1) and
 * times the node's ACK and its HELLO; it ACKs the HELLO before asking again. The firmware runs
 * in real time (16 MHz simulated, paced to the wall clock), so its figures include the
 * simulated UART's 115200 baud; the simulator's do not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { encodeFrame, FrameDecoder, MESSAGES, type Message } from '../firmware-protocol/src/index.js';
import { buildFirmware, FirmwareNode } from '../simulators/src/metering-node/firmware-node.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { hasSocat, servePty } from '../simulators/src/transports.js';
import { round, summarize, type BenchResult, type BenchSize } from './stats.js';

const SIZES = { full: { n: 500, warmup: 20 }, tiny: { n: 5, warmup: 1 } } satisfies Record<BenchSize, object>;

interface Node {
  address: string;
  close(): Promise<void>;
}

/** REQUEST HELLO → the node's ACK, and → its HELLO, in µs, n times after `warmup`. */
async function measure(address: string, { n, warmup }: { n: number; warmup: number }): Promise<{ ack: number[]; hello: number[] }> {
  const port = new SerialPort({ path: address, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  let seq = 0x4000;
  let waiting: { t0: bigint; ackUs: number | null; done: (ackUs: number, helloUs: number) => void } | null = null;
  const decoder = new FrameDecoder((m: Message) => {
    if (MESSAGES[m.type].reliable) port.write(encodeFrame({ type: 'ACK', seq: seq++ & 0xffff, ackSeq: m.seq, ackType: MESSAGES[m.type].code }));
    if (!waiting) return;
    const us = Number(process.hrtime.bigint() - waiting.t0) / 1000;
    if (m.type === 'ACK' && m.ackType === MESSAGES.REQUEST.code) waiting.ackUs = us;
    if (m.type === 'HELLO' && waiting.ackUs !== null) waiting.done(waiting.ackUs, us);
  });
  port.on('data', (d: Buffer) => decoder.push(d));
  port.write(new Uint8Array([0]));
  await new Promise((r) => setTimeout(r, 300)); // the node's boot frames come and are acknowledged
  const ack: number[] = [];
  const hello: number[] = [];
  for (let i = 0; i < n + warmup; i++) {
    const [a, h] = await new Promise<[number, number]>((resolve) => {
      waiting = { t0: process.hrtime.bigint(), ackUs: null, done: (a, h) => resolve([a, h]) };
      port.write(encodeFrame({ type: 'REQUEST', seq: seq++ & 0xffff, what: 1 }));
    });
    waiting = null;
    await new Promise((r) => setTimeout(r, 5)); // our ACK of the HELLO reaches the node before the next REQUEST
    if (i >= warmup) {
      ack.push(a);
      hello.push(h);
    }
  }
  await new Promise((r) => port.close(r));
  return { ack, hello };
}

export async function benchNodeFirmware(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const built = buildFirmware();
  if ('missing' in built) return [{ bench: 'node-firmware-hello', skipped: built.missing }];
  if (!hasSocat()) return [{ bench: 'node-firmware-hello', skipped: 'socat is not installed (apt-get install socat)' }];
  const results: BenchResult[] = [];
  const nodes: [string, () => Promise<Node>][] = [
    ['firmware in simavr', () => FirmwareNode.start({ elf: built.elf, harness: built.harness })],
    ['TypeScript simulator', () => servePty(new MeteringNodeSim({ nodeId: 'bench-node' }), join(dir, 'ttyNODE0'))],
  ];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-node-'));
  const p99: Record<string, number> = {};
  for (const [name, start] of nodes) {
    const node = await start();
    try {
      const { ack, hello } = await measure(node.address, SIZES[size]);
      const s = summarize(hello);
      p99[name] = s.p99Us;
      results.push(
        { bench: `node-request-ack (${name})`, path: 'REQUEST HELLO → PTY → node → its ACK → PTY', ...summarize(ack) },
        { bench: `node-hello-roundtrip (${name})`, path: 'REQUEST HELLO → PTY → node → its HELLO → PTY', ...s },
      );
    } finally {
      await node.close();
    }
  }
  rmSync(dir, { recursive: true, force: true });
  results.at(-1)!.firmwareP99VsSimulator = round(p99['firmware in simavr']! / p99['TypeScript simulator']!, 2);
  return results;
}
