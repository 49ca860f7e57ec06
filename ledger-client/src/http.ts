/** One HTTP exchange with a ledger over fetch: bearer token, a timeout covering the body, JSON both ways. */
import { classifyFailure, type Verdict } from './classify.js';

export interface HttpLedgerOptions {
  /** JSON batch: the API's base URL; GraphQL: the endpoint. https:// gives TLS (private CAs: NODE_EXTRA_CA_CERTS). */
  url: string;
  token?: string;
  /** A request with no complete answer after this long is an unknown outcome (default 10 s). */
  timeoutMs?: number;
  /** For tests and proxies; default the global fetch. */
  fetch?: typeof fetch;
}

export interface HttpReply {
  status: number;
  headers: Headers;
  body: unknown;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** The reply, or a retry verdict when there was none (refused, reset, timeout). */
export async function exchange(opts: HttpLedgerOptions, method: 'GET' | 'POST', url: string, body?: unknown): Promise<HttpReply | Extract<Verdict, { kind: 'retry' }>> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  try {
    const res = await (opts.fetch ?? fetch)(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        // A body that claims JSON and is not: kept as text, which the verdict quotes.
      }
    }
    return { status: res.status, headers: res.headers, body: parsed };
  } catch (err) {
    return classifyFailure(err, url, timeoutMs);
  }
}

export const isReply = (r: HttpReply | Verdict): r is HttpReply => 'status' in r;

/** base + path without doubling or losing the slash. */
export const joinUrl = (base: string, path: string) => `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
