/**
 * What a networked reader publishes for one tap: JSON `{"uid": "04A1B2C3", "reader"?: "…",
 * "ts"?: "…" | 1732460617}` or the UID alone as hex text (`04A1B2C3`, `04:a1:b2:c3`,
 * `04-A1-B2-C3`, `04 a1 b2 c3`). The UID comes out as uppercase hex without separators.
 */
import { z } from 'zod';

export const MIN_UID_BYTES = 1;
export const MAX_UID_BYTES = 10; // ISO 14443 UIDs are 4, 7 or 10 bytes
/** Larger messages are refused before decoding: a tap is a few dozen bytes. */
export const MAX_PAYLOAD_BYTES = 1024;

/** Pairs of hex digits, with no separator or the same one (`:`, `-` or space) between every pair. */
const HEX_UID = /^[0-9a-f]{2}(?:([:\- ]?)[0-9a-f]{2}(?:\1[0-9a-f]{2})*)?$/i;

/** A short, printable excerpt of what was received, for a log line a person reads. */
export function excerpt(text: string, max = 40): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(cut);
}

export const badgeUidSchema = z
  .string({ error: (iss) => (iss.input === undefined ? 'missing' : `expected the UID as a hex string, got ${JSON.stringify(iss.input)}`) })
  .trim()
  .superRefine((s, ctx) => {
    if (!HEX_UID.test(s)) {
      ctx.addIssue({ code: 'custom', message: `not a hex UID: ${excerpt(s)}`, abort: true });
      return;
    }
    const bytes = s.replace(/[:\- ]/g, '').length / 2;
    if (bytes < MIN_UID_BYTES || bytes > MAX_UID_BYTES) {
      ctx.addIssue({ code: 'custom', message: `the UID has ${bytes} bytes, a badge UID has ${MIN_UID_BYTES} to ${MAX_UID_BYTES}`, abort: true });
    }
  })
  .transform((s) => s.replace(/[:\- ]/g, '').toUpperCase())
  .describe('Badge UID as hex, 1 to 10 bytes, optionally with : - or space between bytes.');

/** Unknown fields are ignored, so that firmware may add its own (RSSI, card type). */
export const tapJsonSchema = z.object({
  uid: badgeUidSchema,
  reader: z.string().max(64).optional().describe('The reader\'s own name for itself, for the log.'),
  ts: z.union([z.string().max(64), z.number()]).optional().describe('When the reader saw the tap, in its own clock (informative only).'),
});

export type Tap = z.output<typeof tapJsonSchema>;

/** The payload text (already decoded) as a tap: JSON when it starts with `{`, else a bare UID. */
export const tapPayloadSchema = z
  .string()
  .trim()
  .min(1, 'empty payload')
  .transform((text, ctx): Tap => {
    if (!text.startsWith('{')) {
      const uid = badgeUidSchema.safeParse(text);
      if (uid.success) return { uid: uid.data };
      const bytes = HEX_UID.test(text) ? uid.error.issues[0]?.message : undefined;
      ctx.addIssue({ code: 'custom', message: bytes ?? `payload is not JSON and not a hex UID: ${excerpt(text)}` });
      return z.NEVER;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `payload is not valid JSON (${(err as Error).message}): ${excerpt(text)}` });
      return z.NEVER;
    }
    const tap = tapJsonSchema.safeParse(json);
    if (tap.success) return tap.data;
    for (const issue of tap.error.issues) {
      const where = issue.path.length ? issue.path.join('.') : 'payload';
      ctx.addIssue({ code: 'custom', message: `${where}: ${issue.message}` });
    }
    return z.NEVER;
  });

export type TapParse = { ok: true; tap: Tap } | { ok: false; problem: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes and validates one message; the problem, when there is one, names what was wrong for a person. */
export function parseTap(payload: Uint8Array | string): TapParse {
  let text: string;
  if (typeof payload === 'string') {
    text = payload;
  } else {
    if (payload.length > MAX_PAYLOAD_BYTES) return { ok: false, problem: `payload of ${payload.length} bytes is too large for a tap (at most ${MAX_PAYLOAD_BYTES})` };
    try {
      text = utf8.decode(payload);
    } catch {
      const head = Buffer.from(payload.subarray(0, 12)).toString('hex').replace(/(..)(?!$)/g, '$1 ');
      return { ok: false, problem: `payload is not JSON and not a hex UID: ${payload.length} bytes of binary data (${head}${payload.length > 12 ? ' …' : ''})` };
    }
  }
  if (text.length > MAX_PAYLOAD_BYTES) return { ok: false, problem: `payload of ${text.length} characters is too large for a tap (at most ${MAX_PAYLOAD_BYTES})` };
  const r = tapPayloadSchema.safeParse(text);
  if (r.success) return { ok: true, tap: r.data };
  return { ok: false, problem: r.error.issues.map((i) => i.message).join('; ') };
}
