/**
 * Frame codec. A frame on the wire is COBS(version u8, type u8, seq u16, payload, crc u16)
 * followed by one 0x00 delimiter; the CRC (CRC-16/CCITT-FALSE) covers version..payload and
 * is sent little-endian like every other integer. See PROTOCOL.md.
 */
import { cobsDecodeInto, cobsEncodeInto, cobsMaxEncodedLength } from './cobs.js';
import { crc16 } from './crc16.js';
import { MESSAGES, TYPE_BY_CODE, type Message } from './messages.js';

export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 4;
export const CRC_SIZE = 2;
export const MAX_PAYLOAD = 240;
/** Largest frame before COBS: header + payload + CRC. */
export const MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE;
/** Largest frame on the wire, COBS overhead and delimiter included. */
export const MAX_WIRE_FRAME = cobsMaxEncodedLength(MAX_FRAME) + 1;

/** Why a frame was rejected; each has its own counter in the framer. */
export type FrameError = 'oversized' | 'cobs' | 'short' | 'crc' | 'version' | 'unknown-type' | 'payload';
export const FRAME_ERRORS: readonly FrameError[] = ['oversized', 'cobs', 'short', 'crc', 'version', 'unknown-type', 'payload'];

export type DecodeResult = { ok: true; message: Message } | { ok: false; error: FrameError; detail: string };

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** Payload bytes of a message; throws when a field is missing or does not fit its type. */
function writePayload(msg: Message, out: Uint8Array, at: number): number {
  const spec = MESSAGES[msg.type];
  const values = msg as unknown as Record<string, unknown>;
  let o = at;
  for (const field of spec.fields) {
    const v = values[field.name];
    switch (field.kind) {
      case 'u8':
      case 'u16':
      case 'u32': {
        const size = field.kind === 'u8' ? 1 : field.kind === 'u16' ? 2 : 4;
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 2 ** (8 * size)) {
          throw new RangeError(`${msg.type}.${field.name}: ${String(v)} is not a ${field.kind}`);
        }
        for (let k = 0; k < size; k++) out[o++] = Math.floor(v / 2 ** (8 * k)) & 0xff;
        break;
      }
      case 'str':
      case 'bytes': {
        const data = field.kind === 'str' ? utf8.encode(String(v ?? '')) : (v as Uint8Array | undefined);
        if (!(data instanceof Uint8Array)) throw new TypeError(`${msg.type}.${field.name}: expected bytes`);
        if (data.length > field.max) {
          throw new RangeError(`${msg.type}.${field.name}: ${data.length} bytes, at most ${field.max}`);
        }
        out[o++] = data.length;
        out.set(data, o);
        o += data.length;
        break;
      }
    }
  }
  return o - at;
}

const scratch = new Uint8Array(HEADER_SIZE + 1024 + CRC_SIZE);

/** Encodes one message as wire bytes, trailing 0x00 delimiter included. */
export function encodeFrame(msg: Message): Uint8Array {
  const spec = MESSAGES[msg.type];
  if (!Number.isInteger(msg.seq) || msg.seq < 0 || msg.seq > 0xffff) throw new RangeError(`${msg.type}.seq: ${msg.seq} is not a u16`);
  scratch[0] = PROTOCOL_VERSION;
  scratch[1] = spec.code;
  scratch[2] = msg.seq & 0xff;
  scratch[3] = msg.seq >> 8;
  const payloadLength = writePayload(msg, scratch, HEADER_SIZE);
  if (payloadLength > MAX_PAYLOAD) throw new RangeError(`${msg.type}: payload of ${payloadLength} bytes exceeds ${MAX_PAYLOAD}`);
  const end = HEADER_SIZE + payloadLength;
  const crc = crc16(scratch, 0, end);
  scratch[end] = crc & 0xff;
  scratch[end + 1] = crc >> 8;
  const raw = scratch.subarray(0, end + CRC_SIZE);
  const wire = new Uint8Array(cobsMaxEncodedLength(raw.length) + 1);
  const n = cobsEncodeInto(raw, wire);
  wire[n] = 0;
  return wire.subarray(0, n + 1);
}

/** Decodes one un-stuffed frame (header..CRC) of `length` bytes. Never throws. */
export function decodeRaw(raw: Uint8Array, length: number): DecodeResult {
  if (length < HEADER_SIZE + CRC_SIZE) return { ok: false, error: 'short', detail: `${length} bytes` };
  const end = length - CRC_SIZE;
  const sent = raw[end]! | (raw[end + 1]! << 8);
  const computed = crc16(raw, 0, end);
  if (sent !== computed) return { ok: false, error: 'crc', detail: `sent ${hex16(sent)}, computed ${hex16(computed)}` };
  if (raw[0] !== PROTOCOL_VERSION) return { ok: false, error: 'version', detail: `version ${raw[0]}, expected ${PROTOCOL_VERSION}` };
  const type = TYPE_BY_CODE.get(raw[1]!);
  if (type === undefined) return { ok: false, error: 'unknown-type', detail: `type 0x${raw[1]!.toString(16).padStart(2, '0')}` };
  const msg: Record<string, unknown> = { type, seq: raw[2]! | (raw[3]! << 8) };
  let o = HEADER_SIZE;
  for (const field of MESSAGES[type].fields) {
    const need = field.kind === 'u8' ? 1 : field.kind === 'u16' ? 2 : field.kind === 'u32' ? 4 : 1;
    if (o + need > end) return { ok: false, error: 'payload', detail: `${type}.${field.name}: payload ends early` };
    switch (field.kind) {
      case 'u8':
        msg[field.name] = raw[o];
        break;
      case 'u16':
        msg[field.name] = raw[o]! | (raw[o + 1]! << 8);
        break;
      case 'u32':
        msg[field.name] = (raw[o]! | (raw[o + 1]! << 8) | (raw[o + 2]! << 16)) + raw[o + 3]! * 0x1000000;
        break;
      default: {
        const len = raw[o]!;
        if (len > field.max) return { ok: false, error: 'payload', detail: `${type}.${field.name}: ${len} bytes, at most ${field.max}` };
        if (o + 1 + len > end) return { ok: false, error: 'payload', detail: `${type}.${field.name}: payload ends early` };
        const data = raw.slice(o + 1, o + 1 + len);
        msg[field.name] = field.kind === 'str' ? utf8Decoder.decode(data) : data;
        o += len;
      }
    }
    o += need;
  }
  // Bytes after the known fields are ignored: a newer node may append fields (PROTOCOL.md §Versioning).
  return { ok: true, message: msg as Message };
}

/** Decodes one wire frame (COBS bytes, with or without the trailing delimiter). Never throws. */
export function decodeFrame(wire: Uint8Array): DecodeResult {
  const end = wire.length > 0 && wire[wire.length - 1] === 0 ? wire.length - 1 : wire.length;
  if (end > MAX_WIRE_FRAME - 1) return { ok: false, error: 'oversized', detail: `${end} bytes` };
  const raw = new Uint8Array(MAX_FRAME);
  const n = cobsDecodeInto(wire, 0, end, raw);
  if (n < 0) return { ok: false, error: 'cobs', detail: 'invalid COBS code' };
  return decodeRaw(raw, n);
}

function hex16(n: number): string {
  return `0x${n.toString(16).padStart(4, '0')}`;
}
