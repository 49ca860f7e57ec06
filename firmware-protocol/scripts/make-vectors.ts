/**
 * Writes firmware-protocol/vectors.json: golden frames for every message type and the edge
 * cases a firmware author gets wrong. Run with `npm run vectors` after changing the protocol;
 * the tests and the C reference check both directions against the file.
 */
import { writeFileSync } from 'node:fs';
import { cobsEncodeInto, cobsMaxEncodedLength } from '../src/cobs.js';
import { encodeFrame, MAX_PAYLOAD, PROTOCOL_VERSION } from '../src/codec.js';
import { crc16 } from '../src/crc16.js';
import type { Message } from '../src/messages.js';
import { REPLAY_WINDOW } from '../src/replay.js';
import { toJson, type BootVector, type GrowthVector, type InvalidVector, type ReplayVector, type ValidVector, type Vectors } from '../src/vectors.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const uid = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

const messages: [string, Message][] = [
  ['hello from a node after power-on', {
    type: 'HELLO', seq: 0, nodeId: 'printer-node-1', firmware: '1.4.2', protocol: 1, capabilities: 0b0111_1111,
    resetCause: 1, bootId: 0x5eed1234, heartbeatS: 5,
  }],
  ['hello with the longest node id and firmware, after a watchdog reset', {
    type: 'HELLO', seq: 0xffff, nodeId: 'n'.repeat(32), firmware: 'v'.repeat(24), protocol: 1, capabilities: 0xffff,
    resetCause: 3, bootId: 0xffffffff, heartbeatS: 65535,
  }],
  ['heartbeat: relay requested and sensed, busy', { type: 'HEARTBEAT', seq: 12, bootId: 0x5eed1234, uptimeS: 3600, flags: 0b10111 }],
  ['heartbeat of all zeros (zero bytes in the payload)', { type: 'HEARTBEAT', seq: 0, bootId: 0, uptimeS: 0, flags: 0 }],
  ['badge, 4-byte MIFARE UID', { type: 'BADGE', seq: 13, reader: 2, uid: uid('04a1b2c3') }],
  ['badge, 5-byte EM4100 UID containing zero bytes', { type: 'BADGE', seq: 14, reader: 1, uid: uid('0000a1b200') }],
  ['badge, 10-byte UID (maximum)', { type: 'BADGE', seq: 15, reader: 2, uid: uid('0411223344556677889a') }],
  ['relay state: on as requested for a session', { type: 'RELAY_STATE', seq: 16, requested: 1, sensed: 1, reason: 1 }],
  ['relay state: requested on, contact stayed open', { type: 'RELAY_STATE', seq: 17, requested: 1, sensed: 0, reason: 1 }],
  ['meter with every counter in use', {
    type: 'METER', seq: 300, bootId: 0x5eed1234, energyMwh: 1_234_567, relayOnS: 7_200, activeS: 5_400,
    powerMw: 185_000, currentMa: 812, voltageDv: 2301, filamentMm: 15_230,
  }],
  ['meter right after boot: counters at zero', {
    type: 'METER', seq: 1, bootId: 0x0badcafe, energyMwh: 0, relayOnS: 0, activeS: 0, powerMw: 0, currentMa: 0, voltageDv: 2298, filamentMm: 0,
  }],
  ['meter with counters at their maximum', {
    type: 'METER', seq: 2, bootId: 1, energyMwh: 0xffffffff, relayOnS: 0xffffffff, activeS: 0xffffffff,
    powerMw: 0xffffffff, currentMa: 0xffff, voltageDv: 0xffff, filamentMm: 0xffffffff,
  }],
  ['input: busy went high', { type: 'INPUT', seq: 18, inputs: 1, changed: 1 }],
  ['fault raised: overcurrent', { type: 'FAULT', seq: 19, code: 0x0101, severity: 3, active: 1, text: 'overcurrent 16.2 A' }],
  ['fault cleared, UTF-8 text of 64 bytes (maximum)', { type: 'FAULT', seq: 20, code: 0x0202, severity: 1, active: 0, text: 'température élevée — capteur ventilateur bloqué ' + 'x'.repeat(10) }],
  ['relay set on for a session', { type: 'RELAY_SET', seq: 1, state: 1, reason: 1 }],
  ['relay set off: idle timeout', { type: 'RELAY_SET', seq: 2, state: 0, reason: 3 }],
  ['indicate: access granted', { type: 'INDICATE', seq: 3, pattern: 1, durationMs: 1500, text: 'Hello Ada' }],
  ['indicate: denied, no text', { type: 'INDICATE', seq: 4, pattern: 2, durationMs: 3000, text: '' }],
  ['request hello', { type: 'REQUEST', seq: 5, what: 1 }],
  ['ack of a hello', { type: 'ACK', seq: 6, ackSeq: 0, ackType: 0x01 }],
  ['nack: unknown type', { type: 'NACK', seq: 7, ackSeq: 99, ackType: 0x55, reason: 1 }],
];

const valid: ValidVector[] = messages.map(([name, message]) => ({ name, hex: hex(encodeFrame(message)), message: toJson(message) }));

/** Builds a frame by hand: header, payload and CRC, with a chosen CRC and version. */
function frame(type: number, seq: number, payload: Uint8Array, opts: { version?: number; badCrc?: boolean } = {}): Uint8Array {
  const raw = new Uint8Array(4 + payload.length + 2);
  raw.set([opts.version ?? PROTOCOL_VERSION, type, seq & 0xff, seq >> 8]);
  raw.set(payload, 4);
  const crc = crc16(raw, 0, raw.length - 2) ^ (opts.badCrc ? 0x0001 : 0);
  raw[raw.length - 2] = crc & 0xff;
  raw[raw.length - 1] = crc >> 8;
  const wire = new Uint8Array(cobsMaxEncodedLength(raw.length) + 1);
  const n = cobsEncodeInto(raw, wire);
  return wire.subarray(0, n + 1);
}

// A newer node may append fields; a receiver ignores them. Padded to the largest legal payload.
const heartbeatPayload = new Uint8Array(MAX_PAYLOAD);
heartbeatPayload.set([0x78, 0x56, 0x34, 0x12, 0x10, 0x0e, 0x00, 0x00, 0x05]);
for (let i = 9; i < MAX_PAYLOAD; i++) heartbeatPayload[i] = i & 0xff;
valid.push({
  name: 'heartbeat with appended fields, largest legal frame (240-byte payload)',
  hex: hex(frame(0x02, 21, heartbeatPayload)),
  message: { type: 'HEARTBEAT', seq: 21, bootId: 0x12345678, uptimeS: 3600, flags: 5 },
  decodeOnly: true,
});

const good = encodeFrame({ type: 'INPUT', seq: 18, inputs: 1, changed: 1 });
const invalid: InvalidVector[] = [
  { name: 'CRC off by one bit', hex: hex(frame(0x06, 18, new Uint8Array([1, 0, 1, 0]), { badCrc: true })), error: 'crc' },
  { name: 'unknown protocol version 2', hex: hex(frame(0x06, 18, new Uint8Array([1, 0, 1, 0]), { version: 2 })), error: 'version' },
  { name: 'unknown message type 0x55', hex: hex(frame(0x55, 1, new Uint8Array([1, 2]))), error: 'unknown-type' },
  { name: 'METER payload cut short', hex: hex(frame(0x05, 1, new Uint8Array(10))), error: 'payload' },
  { name: 'BADGE uid longer than 10 bytes', hex: hex(frame(0x03, 1, new Uint8Array([2, 11, ...new Array<number>(11).fill(7)]))), error: 'payload' },
  { name: 'three bytes: shorter than header and CRC', hex: '0401060100', error: 'short' },
  { name: 'COBS code pointing past the end of the frame', hex: '0a0102030400', error: 'cobs' },
  { name: 'valid frame with one byte flipped in transit', hex: hex(good.map((b, i) => (i === 3 ? b ^ 0x40 : b))), error: 'crc' },
  { name: 'oversized: 300 non-zero bytes before a delimiter', hex: '01'.repeat(300) + '00', error: 'oversized' },
];

// The receiver's rules, with the verdicts written out by hand: the specification, not a replay of the code.
const replay: ReplayVector[] = [
  { name: 'in order: each is new', seqs: [0, 1, 2, 3], verdicts: ['new', 'new', 'new', 'new'] },
  { name: 'a retransmission is a duplicate', seqs: [5, 5], verdicts: ['new', 'duplicate'] },
  { name: 'a BADGE replayed after other frames came in between is still a duplicate', seqs: [4, 5, 6, 7, 4], verdicts: ['new', 'new', 'new', 'new', 'duplicate'] },
  { name: 'frames lost, then a late one inside the window is new once', seqs: [10, 14, 12, 12, 11], verdicts: ['new', 'new', 'new', 'duplicate', 'new'] },
  { name: '32 behind the newest is out of the window (old); 31 behind is inside it', seqs: [100, 132, 100, 101], verdicts: ['new', 'new', 'old', 'new'] },
  { name: 'across the wrap of the u16', seqs: [65534, 65535, 0, 1, 65535], verdicts: ['new', 'new', 'new', 'new', 'duplicate'] },
  { name: 'up to half the space ahead is newer; further is behind', seqs: [0, 32767, 0], verdicts: ['new', 'new', 'old'] },
];
const growth: GrowthVector[] = [
  { name: 'counting up', last: 1000, now: 1500, growth: 500 },
  { name: 'unchanged', last: 7, now: 7, growth: 0 },
  { name: 'across the wrap at 2^32', last: 4294967196, now: 900, growth: 1000 },
  { name: 'wrapping to exactly 0', last: 4294967295, now: 0, growth: 1 },
  { name: 'a counter that went down reads as almost 2^32: implausible', last: 5000, now: 4000, growth: 4294966296 },
];
const boots: BootVector[] = [
  { name: 'a reboot', bootIds: [0x5eed1234, 0x5eed1234, 0x0badcafe], verdicts: ['new', 'current', 'new'] },
  { name: 'a late frame of the previous boot is stale, never a reboot', bootIds: [0x5eed1234, 0x0badcafe, 0x5eed1234, 0x0badcafe, 0x5eed1234], verdicts: ['new', 'new', 'stale', 'current', 'stale'] },
  {
    name: 'the 8 boots before the current one are remembered; the one before them is forgotten (a new boot again)',
    bootIds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2, 1],
    verdicts: ['new', 'new', 'new', 'new', 'new', 'new', 'new', 'new', 'new', 'new', 'stale', 'new'],
  },
];

const vectors: Vectors = {
  protocol: PROTOCOL_VERSION,
  crc: { name: 'CRC-16/CCITT-FALSE', check: '29b1' },
  valid,
  invalid,
  replay: { window: REPLAY_WINDOW, cases: replay },
  counters: { width: 32, cases: growth },
  boots: { remembered: 8, cases: boots },
};
const out = new URL('../vectors.json', import.meta.url);
writeFileSync(out, JSON.stringify(vectors, null, 2) + '\n');
console.log(`wrote ${valid.length} valid and ${invalid.length} invalid vectors, ${replay.length + growth.length + boots.length} receiver cases to ${out.pathname}`);
