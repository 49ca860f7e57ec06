/**
 * What a ledger's reply means for the records in the request, the same for every transport
 * (the table is in ../README.md, "Replies"):
 * - delivered: 2xx (the transport then reads the outcome of each record from the body);
 * - retry: no answer (refused, reset, timeout), 5xx, 429 and 408 — with Retry-After when
 *   given —, and the replies that say the gateway is set up wrong rather than the records
 *   (401/403/407 credentials, 404/405 the URL, 413 the batch size): records must not be
 *   dead-lettered for a configuration a person can fix;
 * - permanent: any other 4xx (validation, conflict): the ledger refuses these records.
 */

export type Verdict = { kind: 'delivered' } | { kind: 'retry'; message: string; retryAfterMs?: number } | { kind: 'permanent'; message: string };

/** A lookup or totals request that failed; `verdict` says whether trying later can help. */
export class LedgerRequestError extends Error {
  override name = 'LedgerRequestError';
  constructor(readonly verdict: Exclude<Verdict, { kind: 'delivered' }>) {
    super(verdict.message);
  }
}

/** The ledger's own words from a reply body: `message`, `error`, GraphQL `errors[0].message` or the text. */
export function messageOf(body: unknown): string {
  if (typeof body === 'string') return body.trim().slice(0, 300);
  if (body && typeof body === 'object') {
    const b = body as { message?: unknown; error?: unknown; errors?: { message?: unknown }[] };
    if (typeof b.message === 'string') return b.message;
    if (Array.isArray(b.errors) && typeof b.errors[0]?.message === 'string') return b.errors.map((e) => String(e.message)).join('; ');
    if (typeof b.error === 'string') return b.error;
  }
  return '';
}

/** Retry-After as milliseconds from now: delay-seconds or an HTTP date. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const CONFIG_STATUS: Record<number, string> = {
  401: 'the ledger did not accept the credentials: check ledger.token',
  403: 'the ledger does not let this token write: check ledger.token and its rights at the ledger',
  404: 'the ledger has no such endpoint: check ledger.url (and ledger.transport)',
  405: 'the ledger does not take this request at this URL: check ledger.url (and ledger.transport)',
  407: 'a proxy wants credentials',
  413: 'the request is too large for the ledger: lower ledger.batchSize',
};

export function classify(status: number, headers: Headers, body: unknown, now = Date.now()): Verdict {
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  const said = messageOf(body);
  const message = `HTTP ${status}${said ? `: ${said}` : ''}`;
  const after = retryAfterMs(headers.get('retry-after'), now);
  const retry = (m: string): Verdict => ({ kind: 'retry', message: m, ...(after !== undefined ? { retryAfterMs: after } : {}) });
  if (status >= 500 || status === 429 || status === 408 || status === 425) return retry(message);
  const config = CONFIG_STATUS[status];
  if (config) return retry(`${message} (${config}; the records wait)`);
  if (status >= 400) return { kind: 'permanent', message };
  return retry(`${message} (an answer the ledger API does not give; the outcome is unknown)`);
}

/** A request that got no answer: always retry, and say why in words a person can act on. */
export function classifyFailure(err: unknown, url: string, timeoutMs: number): Extract<Verdict, { kind: 'retry' }> {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return { kind: 'retry', message: `no answer from ${url} within ${timeoutMs} ms: the outcome is unknown (look the ids up before sending again)` };
  const code = e?.cause?.code ?? '';
  if (code === 'ECONNREFUSED') return { kind: 'retry', message: `${url} refused the connection (is the ledger running?)` };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return { kind: 'retry', message: `cannot resolve the ledger's host name in ${url}` };
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE') {
    return { kind: 'retry', message: `the connection to ${url} closed before the answer: the outcome is unknown (look the ids up before sending again)` };
  }
  if (/CERT|SSL|TLS/i.test(code)) return { kind: 'retry', message: `TLS to ${url} failed (${code}): check the certificate (NODE_EXTRA_CA_CERTS for a private CA)` };
  return { kind: 'retry', message: `request to ${url} failed: ${e?.cause?.message ?? e?.message ?? String(err)}` };
}
