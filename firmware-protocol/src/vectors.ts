/** JSON form of messages for vectors.json: `bytes` fields as lowercase hex strings. */
import { MESSAGES, type Message, type MessageType } from './messages.js';

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
export interface Vectors {
  protocol: number;
  crc: { name: string; check: string };
  valid: ValidVector[];
  invalid: InvalidVector[];
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
