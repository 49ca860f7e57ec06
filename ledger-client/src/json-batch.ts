/**
 * The plain JSON batch API (../README.md, "JSON batch API"):
 * - `POST <url>/records` `{ records }` → `{ results: [{ id, status: stored | duplicate | rejected, message? }] }`,
 *   one result per record in order; 200 when none was rejected, 422 when some were (the others are stored);
 * - `POST <url>/lookup` `{ ids }` → `{ found: [ids the ledger holds] }`;
 * - `GET <url>/totals?from=&to=` → `{ records, sums }` over the records created in [from, to).
 */
import { z } from 'zod';
import { classify, LedgerRequestError, messageOf } from './classify.js';
import { exchange, isReply, joinUrl, type HttpLedgerOptions } from './http.js';
import type { LedgerRecord, LedgerTotals, LedgerTransport, Outcome } from './types.js';

export const recordResult = z.object({ id: z.string(), status: z.enum(['stored', 'duplicate', 'rejected']), message: z.string().optional() });
const sendReply = z.object({ results: z.array(recordResult) });
const lookupReply = z.object({ found: z.array(z.string()) });
export const totalsReply = z.object({ records: z.number().int().min(0), sums: z.record(z.string(), z.number()) });

export class JsonBatchTransport implements LedgerTransport {
  readonly name = 'json-batch';

  constructor(private readonly opts: HttpLedgerOptions) {}

  async send(records: readonly LedgerRecord[]): Promise<Outcome[]> {
    if (records.length === 0) return [];
    const all = (o: (id: string) => Outcome) => records.map((r) => o(r.id));
    const reply = await exchange(this.opts, 'POST', joinUrl(this.opts.url, 'records'), { records });
    if (!isReply(reply)) return all((id) => ({ id, ...reply }));
    const verdict = classify(reply.status, reply.headers, reply.body);
    const parsed = sendReply.safeParse(reply.body);
    // Per-record results come with 2xx and with a 422 that refused some records.
    if (parsed.success && parsed.data.results.length === records.length && (verdict.kind === 'delivered' || reply.status === 422)) {
      return parsed.data.results.map((r, i): Outcome => {
        const id = records[i]!.id;
        // Results come in the records' order; an id, when the ledger could read one, must match.
        if (r.id && r.id !== id) return { kind: 'retry', id, message: `the ledger answered for ${r.id} in the place of ${id}: the outcome is unknown` };
        return r.status === 'rejected' ? { kind: 'permanent', id, message: r.message ?? 'rejected by the ledger' } : { kind: 'delivered', id };
      });
    }
    if (verdict.kind === 'delivered') return all((id) => ({ kind: 'retry', id, message: `the ledger's reply (HTTP ${reply.status}) gives no result per record: the outcome is unknown` }));
    return all((id) => ({ id, ...verdict }));
  }

  async lookup(records: readonly LedgerRecord[]): Promise<Set<string>> {
    if (records.length === 0) return new Set();
    const body = await this.ask('POST', 'lookup', { ids: records.map((r) => r.id) });
    return new Set(read(lookupReply, body, 'lookup').found);
  }

  async totals(from: string, to: string): Promise<LedgerTotals> {
    const q = new URLSearchParams({ from, to });
    return read(totalsReply, await this.ask('GET', `totals?${q}`), 'totals');
  }

  private async ask(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const reply = await exchange(this.opts, method, joinUrl(this.opts.url, path), body);
    if (!isReply(reply)) throw new LedgerRequestError(reply);
    const verdict = classify(reply.status, reply.headers, reply.body);
    if (verdict.kind !== 'delivered') throw new LedgerRequestError(verdict);
    return reply.body;
  }
}

function read<T extends z.ZodType>(schema: T, body: unknown, what: string): z.output<T> {
  const r = schema.safeParse(body);
  if (!r.success) throw new LedgerRequestError({ kind: 'retry', message: `the ledger's ${what} reply is not what the JSON batch API answers: ${messageOf(body) || r.error.issues[0]!.message}` });
  return r.data;
}
