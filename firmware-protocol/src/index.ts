export * from './messages.js';
export * from './codec.js';
export * from './framer.js';
export { crc16 } from './crc16.js';
export { cobsEncodeInto, cobsDecodeInto, cobsMaxEncodedLength } from './cobs.js';
export { REPLAY_WINDOW, replayCheck, type ReplayVerdict, type ReplayWindow } from './replay.js';
