/**
 * Every message of the metering-node protocol, as data: one table drives the encoder, the
 * decoder, the TypeScript types and the documentation in PROTOCOL.md. Field order here is
 * the order on the wire; all integers are little-endian and unsigned.
 */

type FieldKind = 'u8' | 'u16' | 'u32' | 'str' | 'bytes';
interface FieldSpec<N extends string = string, K extends FieldKind = FieldKind> {
  readonly name: N;
  readonly kind: K;
  /** Maximum length in bytes, for `str` (UTF-8) and `bytes`; both are sent as a u8 length then the bytes. */
  readonly max?: number;
}

const u8 = <N extends string>(name: N) => ({ name, kind: 'u8' }) as const;
const u16 = <N extends string>(name: N) => ({ name, kind: 'u16' }) as const;
const u32 = <N extends string>(name: N) => ({ name, kind: 'u32' }) as const;
const str = <N extends string>(name: N, max: number) => ({ name, kind: 'str', max }) as const;
const bytes = <N extends string>(name: N, max: number) => ({ name, kind: 'bytes', max }) as const;

interface MessageSpec {
  readonly code: number;
  /** Who sends it. */
  readonly from: 'node' | 'gateway' | 'either';
  /** Reliable messages are acknowledged (ACK/NACK) and retransmitted until they are. */
  readonly reliable: boolean;
  readonly fields: readonly FieldSpec[];
}

export const MESSAGES = {
  HELLO: {
    code: 0x01, from: 'node', reliable: true,
    fields: [str('nodeId', 32), str('firmware', 24), u8('protocol'), u16('capabilities'), u8('resetCause'), u32('bootId'), u16('heartbeatS')],
  },
  HEARTBEAT: { code: 0x02, from: 'node', reliable: false, fields: [u32('bootId'), u32('uptimeS'), u8('flags')] },
  BADGE: { code: 0x03, from: 'node', reliable: true, fields: [u8('reader'), bytes('uid', 10)] },
  RELAY_STATE: { code: 0x04, from: 'node', reliable: true, fields: [u8('requested'), u8('sensed'), u8('reason')] },
  METER: {
    code: 0x05, from: 'node', reliable: false,
    fields: [u32('bootId'), u32('energyMwh'), u32('relayOnS'), u32('activeS'), u32('powerMw'), u16('currentMa'), u16('voltageDv'), u32('filamentMm')],
  },
  INPUT: { code: 0x06, from: 'node', reliable: true, fields: [u16('inputs'), u16('changed')] },
  FAULT: { code: 0x07, from: 'node', reliable: true, fields: [u16('code'), u8('severity'), u8('active'), str('text', 64)] },
  RELAY_SET: { code: 0x20, from: 'gateway', reliable: true, fields: [u8('state'), u8('reason')] },
  INDICATE: { code: 0x21, from: 'gateway', reliable: true, fields: [u8('pattern'), u16('durationMs'), str('text', 32)] },
  REQUEST: { code: 0x22, from: 'gateway', reliable: true, fields: [u8('what')] },
  ACK: { code: 0x7e, from: 'either', reliable: false, fields: [u16('ackSeq'), u8('ackType')] },
  NACK: { code: 0x7f, from: 'either', reliable: false, fields: [u16('ackSeq'), u8('ackType'), u8('reason')] },
} as const satisfies Record<string, MessageSpec>;

export type MessageType = keyof typeof MESSAGES;

type FieldValue<K extends FieldKind> = K extends 'str' ? string : K extends 'bytes' ? Uint8Array : number;
type FieldsOf<F extends readonly FieldSpec[]> = { [E in F[number] as E['name']]: FieldValue<E['kind']> };

/** A decoded (or to-be-encoded) message: its type, its sequence number and its fields. */
export type Message = {
  [T in MessageType]: { type: T; seq: number } & FieldsOf<(typeof MESSAGES)[T]['fields']>;
}[MessageType];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
/** A message before the link layer gives it a sequence number. */
export type Outgoing<T extends MessageType = MessageType> = T extends MessageType ? Omit<MessageOf<T>, 'seq'> : never;

export const TYPE_BY_CODE: ReadonlyMap<number, MessageType> = new Map(
  (Object.keys(MESSAGES) as MessageType[]).map((t) => [MESSAGES[t].code, t]),
);

export function isReliable(type: MessageType): boolean {
  return MESSAGES[type].reliable;
}

// ---- Enumerations carried in fields (documented in PROTOCOL.md) ----

export const CAPABILITY = {
  BADGE_READER: 1 << 0,
  RELAY: 1 << 1,
  RELAY_SENSE: 1 << 2,
  ENERGY_METER: 1 << 3,
  BUSY_INPUT: 1 << 4,
  FILAMENT_ENCODER: 1 << 5,
  INDICATOR: 1 << 6,
  DISPLAY: 1 << 7,
} as const;

export const RESET_CAUSE = ['unknown', 'power-on', 'brown-out', 'watchdog', 'software', 'external', 'firmware-update'] as const;

export const HEARTBEAT_FLAG = {
  RELAY_REQUESTED: 1 << 0,
  RELAY_SENSED: 1 << 1,
  BUSY: 1 << 2,
  FAULT_ACTIVE: 1 << 3,
  READER_OK: 1 << 4,
} as const;

export const READER = ['unknown', 'em4100', 'iso14443a', 'iso15693', 'hid-prox'] as const;

export const RELAY_SENSED = { OFF: 0, ON: 1, UNKNOWN: 2 } as const;

export const RELAY_REASON = [
  'unspecified', 'session-start', 'session-end', 'idle-timeout', 'maintainer', 'fault', 'gateway-shutdown', 'max-duration',
] as const;
/** Reasons a node gives for switching the relay by itself. */
export const NODE_RELAY_REASON = { LOCAL_BUTTON: 16, NODE_BOOT: 17, OVERCURRENT: 18, LINK_LOST: 19 } as const;

export const INPUT_BIT = { BUSY: 1 << 0, DOOR: 1 << 1, ESTOP: 1 << 2 } as const;

export const FAULT_SEVERITY = ['none', 'warning', 'error', 'critical'] as const;

export const INDICATE_PATTERN = ['off', 'granted', 'denied', 'warning', 'error', 'info'] as const;

export const REQUEST_WHAT = { HELLO: 1, METER: 2, RELAY_STATE: 3, INPUT: 4 } as const;

export const NACK_REASON = ['none', 'unknown-type', 'bad-payload', 'unsupported-version', 'refused', 'invalid-state'] as const;
