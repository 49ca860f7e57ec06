/**
 * A streaming reader of `multipart/form-data` (RFC 7578), for the one thing the gateway takes
 * that way: a slicer's upload, a G-code file of up to hundreds of MB beside a few short fields.
 * The file part is handed over as a stream while it arrives, with backpressure: what is held in
 * memory is one chunk and the tail a boundary could start in, whatever the file's size. Fields
 * are short (bounded); part headers are bounded; a body that ends before its closing boundary
 * is an error, and so is a second file.
 */
import { PassThrough, type Readable } from 'node:stream';

export class MultipartError extends Error {}

export interface FilePart {
  field: string;
  /** As the client sent it (unsafe: the caller makes a file name of it). */
  filename: string;
  contentType: string | null;
}

export interface MultipartLimits {
  fields: number;
  fieldBytes: number;
  headerBytes: number;
}

const DEFAULTS: MultipartLimits = { fields: 20, fieldBytes: 4096, headerBytes: 16 * 1024 };

/** The boundary of a `multipart/form-data; boundary=…` content type. */
export function boundaryOf(contentType: string): string {
  const m = /^multipart\/form-data\s*;(?:.*;)?\s*boundary=(?:"([^"]{1,70})"|([^;\s"]{1,70}))/i.exec(contentType);
  if (!m) throw new MultipartError(`"${contentType.slice(0, 100)}" is not multipart/form-data with a boundary`);
  return (m[1] ?? m[2])!;
}

const param = (headers: string, name: string): string | undefined => {
  const m = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, 'i').exec(headers);
  return m ? (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]) : undefined;
};

/**
 * Reads a multipart body. `onFile` gets the (first) file part as a stream and must consume it;
 * its promise settles before this returns, and its rejection is this one's (after the rest
 * of the body has been read and dropped, so the refusal can be answered). Returns the fields.
 */
export async function readMultipart(
  source: Readable,
  contentType: string,
  onFile: (part: FilePart, stream: Readable) => Promise<unknown>,
  limits: MultipartLimits = DEFAULTS,
): Promise<{ fields: Record<string, string>; file: boolean }> {
  const delim = Buffer.from(`\r\n--${boundaryOf(contentType)}`);
  const fields: Record<string, string> = {};
  let fieldCount = 0;
  // a CRLF before the first boundary: every delimiter then looks the same
  let buf: Buffer = Buffer.from('\r\n');
  type State = 'preamble' | 'after' | 'headers' | 'body' | 'end';
  // changed by the closures below: `as` keeps the compiler from narrowing them to their first value
  let state = 'preamble' as State;
  type Part = { kind: 'field'; name: string; chunks: Buffer[]; size: number } | { kind: 'file'; stream: PassThrough; settled: Promise<void>; failed: boolean } | { kind: 'skip' };
  let part = { kind: 'skip' } as Part;
  let consumer = null as Promise<unknown> | null;

  const startPart = (headers: string) => {
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(headers)?.[1];
    const name = disposition === undefined ? undefined : param(disposition, 'name');
    if (name === undefined) throw new MultipartError('a part has no Content-Disposition: form-data; name="…"');
    const filename = param(disposition!, 'filename');
    if (filename === undefined) {
      if (++fieldCount > limits.fields) throw new MultipartError(`more than ${limits.fields} fields`);
      part = { kind: 'field', name, chunks: [], size: 0 };
      return;
    }
    if (consumer) throw new MultipartError(`a second file ("${filename.slice(0, 60)}"): send one file per upload`);
    const stream = new PassThrough({ highWaterMark: 1 << 20 });
    stream.on('error', () => {}); // the consumer's failure is reported through its promise
    const p: Part & { kind: 'file' } = { kind: 'file', stream, settled: Promise.resolve(), failed: false };
    consumer = onFile({ field: name, filename, contentType: /^content-type:\s*(.+)$/im.exec(headers)?.[1]?.trim() ?? null }, stream);
    p.settled = consumer.then(
      () => {},
      () => {
        p.failed = true;
      },
    );
    part = p;
  };

  const emit = async (data: Buffer) => {
    if (data.length === 0) return;
    if (part.kind === 'field') {
      part.size += data.length;
      if (part.size > limits.fieldBytes) throw new MultipartError(`field "${part.name}" is longer than ${limits.fieldBytes} bytes`);
      part.chunks.push(Buffer.from(data));
    } else if (part.kind === 'file' && !part.failed && !part.stream.destroyed) {
      const p = part;
      if (p.stream.write(data)) return;
      const s = p.stream;
      await new Promise<void>((resolve) => {
        const done = () => {
          s.off('drain', done);
          s.off('close', done);
          resolve();
        };
        s.on('drain', done);
        s.on('close', done);
        void p.settled.then(done);
      });
    }
  };

  const endPart = () => {
    if (part.kind === 'field') fields[part.name] = Buffer.concat(part.chunks).toString('utf8');
    else if (part.kind === 'file') part.stream.end();
    part = { kind: 'skip' };
  };

  const advance = async () => {
    for (;;) {
      if (state === 'preamble' || state === 'body') {
        const i = buf.indexOf(delim);
        if (i < 0) {
          const keep = Math.min(buf.length, delim.length - 1);
          if (state === 'body') await emit(buf.subarray(0, buf.length - keep));
          buf = buf.subarray(buf.length - keep);
          return;
        }
        if (state === 'body') {
          await emit(buf.subarray(0, i));
          endPart();
        }
        buf = buf.subarray(i + delim.length);
        state = 'after';
      }
      if (state === 'after') {
        if (buf.length < 2) return;
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          state = 'end';
          return;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) {
          if (buf.length > 256) throw new MultipartError('a boundary line does not end');
          return;
        }
        buf = buf.subarray(nl + 2);
        state = 'headers';
      }
      if (state === 'headers') {
        const blank = buf.subarray(0, 2).toString('latin1') === '\r\n' ? 0 : buf.indexOf('\r\n\r\n');
        if (blank < 0) {
          if (buf.length > limits.headerBytes) throw new MultipartError(`a part's headers are longer than ${limits.headerBytes} bytes`);
          return;
        }
        startPart(buf.toString('latin1', 0, blank));
        buf = buf.subarray(blank === 0 ? 2 : blank + 4);
        state = 'body';
      }
      if (state === 'end') return;
    }
  };

  try {
    for await (const chunk of source) {
      if (state === 'end') continue; // the epilogue is dropped
      buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
      await advance();
    }
    if (state !== 'end') throw new MultipartError('the body ended before its closing boundary (an interrupted upload?)');
  } catch (err) {
    if (part.kind === 'file') part.stream.destroy(err as Error);
    if (consumer) await consumer.catch(() => {});
    throw err;
  }
  if (consumer) await consumer;
  return { fields, file: consumer !== null };
}
