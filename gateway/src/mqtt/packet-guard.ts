/**
 * The maximum MQTT packet size, enforced before the broker buffers a packet: aedes' parser
 * collects a whole packet (up to the protocol's 256 MiB) before anyone can look at it, so
 * the connection is read through a guard that follows the packets' fixed headers and cuts
 * the connection as soon as one announces a size above the limit.
 */
import { Duplex } from 'node:stream';
import type { Client } from 'aedes';

/**
 * Follows packet boundaries across chunks: each packet is one header byte, a remaining
 * length of 1–4 bytes (7 bits each, least significant first) and that many bytes.
 */
export class PacketSizeScanner {
  /** Bytes of the current packet's body still to skip. */
  private skip = 0;
  /** Reading a remaining length: bytes read so far (0: expecting a header byte next), and its value. */
  private lengthBytes = -1;
  private length = 0;
  private multiplier = 1;

  constructor(private readonly maxBytes: number) {}

  /** Null while every packet so far fits; else the size (in bytes) of the first that does not, or -1 for a malformed length. */
  feed(chunk: Uint8Array): number | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const byte = chunk[i++]!;
      if (this.lengthBytes < 0) {
        // the header byte
        this.lengthBytes = 0;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (byte & 0x80) {
        if (this.lengthBytes === 4) return -1;
        continue;
      }
      const size = 1 + this.lengthBytes + this.length;
      if (size > this.maxBytes) return size;
      this.skip = this.length;
      this.lengthBytes = -1;
    }
    return null;
  }
}

/**
 * A connection as the broker sees it: what the client sends passes through the scanner; a
 * packet too large destroys the connection before the broker reads any of it.
 */
export class GuardedConnection extends Duplex {
  private readonly scanner: PacketSizeScanner;
  private drainWaiter: ((err?: Error | null) => void) | null = null;

  constructor(
    private readonly inner: Duplex,
    maxBytes: number,
    /** The client's address, for the connection rate limit and the logs. */
    readonly remoteAddress: string,
    onTooLarge: (size: number) => void,
  ) {
    super({ allowHalfOpen: false });
    this.scanner = new PacketSizeScanner(maxBytes);
    inner.on('data', (chunk: Buffer) => {
      const tooLarge = this.scanner.feed(chunk);
      if (tooLarge !== null) {
        onTooLarge(tooLarge);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => {
      this.drainWaiter?.(new Error('connection closed'));
      this.drainWaiter = null;
      this.destroy();
    });
    inner.on('drain', () => {
      const waiter = this.drainWaiter;
      this.drainWaiter = null;
      waiter?.();
    });
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.inner.write(chunk)) done();
    else this.drainWaiter = done;
  }

  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    // one write to the socket, as the broker meant it when it corked: small packets sent apart would wait for ACKs (Nagle)
    this.inner.cork();
    let ok = true;
    for (const { chunk } of chunks) ok = this.inner.write(chunk);
    this.inner.uncork();
    if (ok) done();
    else this.drainWaiter = done;
  }

  override _final(done: (err?: Error | null) => void): void {
    this.inner.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.inner.destroy();
    done(err);
  }
}

/** A client's address, as its guarded connection recorded it. */
export function addressOf(client: Client): string {
  return (client.conn as Partial<GuardedConnection>).remoteAddress ?? 'unknown';
}
