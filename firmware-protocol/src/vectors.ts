/** JSON form of messages for vectors.json: `bytes` fields as lowercase hex strings; and the receiver's rules as cases. */
import { MESSAGES, type Message, type MessageType } from './messages.js';
import type { ReplayVerdict } from './replay.js';

export type JsonMessage = { type: MessageType; seq: number } & Record<string, string | number>;

export interface ValidVector {
  name: string;
  hex: string;
  message: JsonMessage;
  /** Present when the frame is decodable but not what the encoder would produce (e.g. appended fields). */
  decodeOnly?: true;
}
export interface InvalidVector {
  name: string;
  hex: string;
  error: string;
}
/** Sequence numbers through a fresh replay window, and the verdict on each (PROTOCOL.md §7). */
export interface ReplayVector {
  name: string;
  seqs: number[];
  verdicts: ReplayVerdict[];
}
/** A u32 counter's growth from `last` to `now`, modulo 2^32 (PROTOCOL.md §8). */
export interface GrowthVector {
  name: string;
  last: number;
  now: number;
  growth: number;
}
/** Boot ids of frames through a fresh boot history, and the verdict on each (PROTOCOL.md §8). */
export interface BootVector {
  name: string;
  bootIds: number[];
  verdicts: ('new' | 'current' | 'stale')[];
}
export interface Vectors {
  protocol: number;
  crc: { name: string; check: string };
  valid: ValidVector[];
  invalid: InvalidVector[];
  replay: { window: number; cases: ReplayVector[] };
  counters: { width: number; cases: GrowthVector[] };
  boots: { remembered: number; cases: BootVector[] };
}

export function toJson(msg: Message): JsonMessage {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(msg)) out[k] = v instanceof Uint8Array ? Buffer.from(v).toString('hex') : (v as string | number);
  return out as JsonMessage;
}

export function fromJson(json: JsonMessage): Message {
  const out: Record<string, unknown> = { ...json };
  for (const field of MESSAGES[json.type].fields) {
    if (field.kind === 'bytes') out[field.name] = new Uint8Array(Buffer.from(String(json[field.name]), 'hex'));
  }
  return out as Message;
}
