/**
 * JSON-RPC 2.0 over one websocket, as Moonraker speaks it (docs/external_api/introduction.md of
 * Moonraker): requests with an id answered by `result` or `error`, and notifications (a method
 * without an id) pushed by the host. A request not answered within the timeout fails, and so
 * does every pending one when the socket closes.
 */
import type WebSocket from 'ws';

/** An error object the host answered with: its code and its own words. */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  readonly stats = { requests: 0, errors: 0, timeouts: 0, notifications: 0, malformed: 0 };

  constructor(
    private readonly ws: WebSocket,
    private readonly timeoutMs: number,
    private readonly onNotification: (method: string, params: unknown) => void,
    private readonly onTimeout: (method: string) => void,
  ) {}

  request<T>(method: string, params?: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    this.stats.requests++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.stats.timeouts++;
        reject(new Error(`${method}: no answer within ${this.timeoutMs} ms`));
        this.onTimeout(method);
      }, this.timeoutMs);
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', method, ...(params && { params }), id }), (err) => {
        if (err) this.settle(id, undefined, err);
      });
    });
  }

  /** A text frame from the host. */
  onMessage(text: string): void {
    let msg: { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      this.stats.malformed++;
      return;
    }
    if (msg === null || typeof msg !== 'object') return void this.stats.malformed++;
    if (typeof msg.method === 'string' && msg.id === undefined) {
      this.stats.notifications++;
      return this.onNotification(msg.method, msg.params);
    }
    if (typeof msg.id !== 'number') return void this.stats.malformed++;
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.error) {
      this.stats.errors++;
      const code = typeof msg.error.code === 'number' ? msg.error.code : 0;
      this.settle(msg.id, undefined, new RpcError(p.method, code, typeof msg.error.message === 'string' ? msg.error.message : `error ${code}`));
    } else this.settle(msg.id, msg.result);
  }

  /** The socket closed: every pending request fails. */
  close(reason: string): void {
    for (const [id] of this.pending) this.settle(id, undefined, new Error(`connection closed: ${reason}`));
  }

  private settle(id: number, result: unknown, err?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(result);
  }
}
