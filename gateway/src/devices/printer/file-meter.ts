/**
 * SD mode with the file known, pure: the filament engine run over the whole file once, keeping
 * what each extruder consumed at the end of every line, so the filament at the byte the printer
 * reports reading (`SD printing byte a/b`) is a binary search away. Exact to the line: the
 * printer's read position runs ahead of its moves by the commands queued (a few lines, a stop
 * flushes them), and everything up to it is counted.
 */
import { applyGcode, consumedMm, initialExtrusion } from './filament.js';

export interface FileProfile {
  name: string;
  /** Size in bytes: the printer's `b` of `SD printing byte a/b` must match it. */
  bytes: number;
  /** Byte offset after each line (its newline included). */
  ends: number[];
  /** Filament consumed per extruder by the end of each line, mm. */
  consumed: number[][];
}

export function profileOf(name: string, text: string, positioningSetsE: boolean): FileProfile {
  const ends: number[] = [];
  const consumed: number[][] = [];
  let state = initialExtrusion(positioningSetsE);
  let at = 0;
  const buf = Buffer.from(text, 'latin1');
  while (at < buf.length) {
    let nl = buf.indexOf(10, at);
    if (nl < 0) nl = buf.length - 1;
    state = applyGcode(state, buf.toString('latin1', at, nl + 1)).state;
    at = nl + 1;
    ends.push(at);
    consumed.push(consumedMm(state));
  }
  return { name, bytes: buf.length, ends, consumed };
}

/** Filament per extruder consumed by the lines read up to `byte`, mm. */
export function consumedAtByte(p: FileProfile, byte: number): number[] {
  // the last line whose end is at or before `byte`
  let lo = 0;
  let hi = p.ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (p.ends[mid]! <= byte) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? [] : p.consumed[lo - 1]!;
}
