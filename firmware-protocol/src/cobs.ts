/**
 * Consistent Overhead Byte Stuffing: removes every 0x00 from a frame so that 0x00 can
 * delimit frames on the wire. Overhead is one byte per 254 bytes of input.
 */

/** Encodes `src` into `dst` at `dstOffset`; returns the number of bytes written (no delimiter). */
export function cobsEncodeInto(src: Uint8Array, dst: Uint8Array, dstOffset = 0): number {
  let codeAt = dstOffset;
  let out = dstOffset + 1;
  let code = 1;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0) {
      dst[codeAt] = code;
      codeAt = out++;
      code = 1;
    } else {
      dst[out++] = b;
      if (++code === 0xff) {
        dst[codeAt] = code;
        codeAt = out++;
        code = 1;
      }
    }
  }
  dst[codeAt] = code;
  return out - dstOffset;
}

/** Upper bound of the encoded length: one code byte per 254 data bytes, plus the first one. */
export function cobsMaxEncodedLength(n: number): number {
  return n + Math.floor(n / 254) + 1;
}

/**
 * Decodes `src[start, end)` (no delimiter) into `dst`; returns the decoded length,
 * or -1 when the input is not valid COBS (a code byte of 0 or pointing past the end).
 */
export function cobsDecodeInto(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let i = start;
  let out = 0;
  while (i < end) {
    const code = src[i]!;
    if (code === 0 || i + code > end) return -1;
    i++;
    for (let k = 1; k < code; k++) {
      if (out >= dst.length) return -1;
      dst[out++] = src[i++]!;
    }
    if (code !== 0xff && i < end) {
      if (out >= dst.length) return -1;
      dst[out++] = 0;
    }
  }
  return out;
}
