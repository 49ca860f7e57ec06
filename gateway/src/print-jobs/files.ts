/**
 * G-code files sent to the gateway: their names made safe, their bytes streamed to disk under
 * the data directory (never held whole in memory, cut off the moment they pass a limit), and
 * one streamed pass over a kept file that runs the filament engine and reads the slicer's own
 * comments, for the quote.
 */
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyGcodeInPlace, initialExtrusion, totalConsumedMm } from '../devices/printer/filament.js';
import { noMetadata, readSlicerComment, type SlicerMetadata } from '../devices/printer/slicer-metadata.js';

/** A file refused, with the HTTP status that says why and a sentence for the person who sent it. */
export class FileRefusal extends Error {
  constructor(
    readonly status: 400 | 409 | 413 | 415 | 507,
    message: string,
  ) {
    super(message);
  }
}

const MAX_NAME = 200;
const GCODE = /\.(gcode|gco|g)$/i;

/**
 * The file's own name from what a slicer sent: its last path element, control characters
 * removed, trimmed; refused when nothing is left, when it is `.` or `..`, too long, or not
 * plain-text G-code (Prusa's binary G-code and 3MF projects named with what to export instead).
 */
export function safeFileName(sent: string): string {
  const last = sent.split(/[/\\]/).pop() ?? '';
  const name = [...last].filter((c) => c >= ' ' && c !== '\u007f').join('').trim();
  if (name === '' || name === '.' || name === '..') throw new FileRefusal(400, `"${name || sent.slice(0, 60)}" is not a file name`);
  if (name.length > MAX_NAME) throw new FileRefusal(400, `a file name of ${name.length} characters is longer than the ${MAX_NAME} the gateway keeps`);
  if (/\.bgcode$/i.test(name)) {
    throw new FileRefusal(415, `${name} is binary G-code, which this gateway cannot meter: turn off "Supports binary G-code" in the printer's settings in PrusaSlicer (Printer Settings → General → Firmware) and send it again as plain .gcode`);
  }
  if (/\.3mf$/i.test(name)) throw new FileRefusal(415, `${name} is a 3MF project, not G-code: slice it and send the plain G-code (.gcode) instead`);
  if (!GCODE.test(name)) throw new FileRefusal(415, `${name}: the gateway takes plain-text G-code only (.gcode, .gco or .g)`);
  return name;
}

/** What stopped an upload: the file's own limit, or the owner's quota. */
export interface UploadLimit {
  bytes: number;
  /** The sentence for a file that passes it. */
  message: string;
}

/**
 * Streams `source` into `target` (through `target.part`, renamed once complete), counting its
 * bytes; past `limit` it stops reading, removes what it wrote and refuses (413). Returns the
 * byte count. `cutOff` is the uploader's own signal that the source was truncated (busboy's
 * fileSize limit), checked once the stream ends.
 */
export async function saveStream(source: Readable, target: string, limit: UploadLimit, cutOff: () => boolean = () => false): Promise<number> {
  mkdirSync(target.slice(0, target.lastIndexOf('/')), { recursive: true });
  const part = `${target}.part`;
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > limit.bytes) return done(new FileRefusal(413, limit.message));
      done(null, chunk);
    },
  });
  try {
    await pipeline(source, count, createWriteStream(part));
    if (cutOff()) throw new FileRefusal(413, limit.message);
    renameSync(part, target);
    return bytes;
  } catch (err) {
    rmSync(part, { force: true });
    // what is left of the request is read and dropped, so the refusal can be answered
    source.resume();
    throw err;
  }
}

export interface GcodeScan {
  bytes: number;
  /** Lines with a command (not blank, not only a comment). */
  commands: number;
  /** Filament the engine counts over the whole file, mm, summed over extruders. */
  filamentMm: number;
  slicer: SlicerMetadata;
}

/**
 * One pass over a kept file: the filament engine (the one that meters the print) over every
 * command, and the slicer's comments. Read in chunks, so memory does not grow with the file.
 */
export async function scanGcode(path: string, positioningSetsE: boolean): Promise<GcodeScan> {
  const state = initialExtrusion(positioningSetsE);
  const slicer = noMetadata();
  let commands = 0;
  let bytes = 0;
  let rest = '';
  const line = (l: string) => {
    const c = l.charCodeAt(0);
    if (c === 59 /* ; */) return readSlicerComment(slicer, l);
    let i = 0;
    while (i < l.length && l.charCodeAt(i) <= 32) i++;
    if (i === l.length || l.charCodeAt(i) === 59) return;
    commands++;
    applyGcodeInPlace(state, l);
  };
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 16 })) {
    const buf = chunk as Buffer;
    bytes += buf.length;
    const lines = (rest + buf.toString('latin1')).split('\n');
    rest = lines.pop()!;
    for (const l of lines) line(l);
  }
  if (rest) line(rest);
  return { bytes, commands, filamentMm: totalConsumedMm(state), slicer };
}
