/** Config of a serial RFID reader used as a badge source (the config union lists it with the other device kinds). */
import { z } from 'zod';
import { deviceId, serialSchema } from '../../config/common.js';

const readerSerial = z
  .strictObject({
    ...serialSchema.shape,
    baudRate: z.number().int().positive().default(9600).describe('The RDM6300 talks at 9600 baud.'),
  })
  .describe('How to reach the reader: its USB serial adapter, the Pi UART (/dev/serial0) or a TCP serial bridge.');

export const rfidReaderSchema = z.strictObject({
  id: deviceId,
  kind: z.literal('rfid-reader').describe('A serial RFID badge reader: the RDM6300 (125 kHz) on a USB serial adapter, the Pi UART or a TCP serial bridge.'),
  name: z.string().min(1).optional().describe('Display name, e.g. "Laser cutter badge reader"; default: the id.'),
  protocol: z
    .enum(['rdm6300'])
    .default('rdm6300')
    .describe('rdm6300: 125 kHz EM4100 cards, STX + 10 hex digits + XOR checksum + ETX. A badge is the 10 hex digits the reader sends (the decimal number printed on a card is only its last 4 bytes).'),
  serial: readerSerial,
  repeatGapMs: z
    .number()
    .int()
    .min(100)
    .max(60_000)
    .default(1000)
    .describe('A card held in the field is one tap; the same card counts again only after this many milliseconds without being read.'),
});

export type RfidReaderConfig = z.output<typeof rfidReaderSchema>;
