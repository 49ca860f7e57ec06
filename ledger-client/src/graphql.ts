/**
 * Valueflows GraphQL (vf-graphql, hREA, Bonfire): `createProcess`, `createEconomicEvent` and
 * `createClaim` mutations, `process`, `economicEvent` and `claim` queries by id.
 *
 * Server flavours (../README.md, "GraphQL flavours"):
 * - `vf-graphql`: the vf-graphql schema where the create params also take the record's `id`,
 *   `created` and `corrects` (what the ledger simulator speaks). The server keeps our ids, so
 *   it deduplicates and a lookup asks for them; all records of a batch go in one request as
 *   aliased mutations, executed in order.
 * - `hrea`, `bonfire`: the server chooses every id and knows none of those three fields. Our
 *   id, creation time and correction link are written at the end of the note; references to
 *   earlier records are translated to the server's ids through `ids`, which must outlive the
 *   process (the outbox's acknowledged ids); one request per record, since a record may point
 *   at the one before it. Agents and units are the server's own objects: map ours with `resolve`.
 */
import { classify, LedgerRequestError, messageOf, type Verdict } from './classify.js';
import { exchange, isReply, type HttpLedgerOptions } from './http.js';
import type { EventAction, LedgerRecord, LedgerTotals, LedgerTransport, Measure, Outcome } from './types.js';

export type Flavour = 'vf-graphql' | 'hrea' | 'bonfire';

interface FlavourTraits {
  /** Action ids as this server spells them. */
  actions: Record<EventAction, string>;
  /** The server takes our ids (and `created`, `corrects`) in the create params. */
  clientIds: boolean;
  /** The server answers `ledgerTotals(from, to)`. */
  totals: boolean;
}

/**
 * One row per server. The four actions the mapping uses are spelled alike everywhere; the
 * multi-word ones differ (hREA and Bonfire say `deliver-service`, hREA also takes
 * `deliver_service`), which is why the ids live here and not in the mapping.
 */
export const FLAVOURS: Record<Flavour, FlavourTraits> = {
  'vf-graphql': { actions: { use: 'use', consume: 'consume', work: 'work', transfer: 'transfer' }, clientIds: true, totals: true },
  hrea: { actions: { use: 'use', consume: 'consume', work: 'work', transfer: 'transfer' }, clientIds: false, totals: false },
  bonfire: { actions: { use: 'use', consume: 'consume', work: 'work', transfer: 'transfer' }, clientIds: false, totals: false },
};

/** Our record ids → the ids a server chose for them. */
export interface LedgerIdMap {
  get(id: string): string | undefined;
  set(id: string, ledgerId: string): void;
}

export interface GraphqlOptions extends HttpLedgerOptions {
  flavour?: Flavour;
  ids?: LedgerIdMap;
  /** Our agent, unit and resource ids as the server knows them (default: unchanged). */
  resolve?: { agent?(id: string): string; unit?(unit: string): string; resource?(id: string): string };
}

/** Field errors the server reports when it is in trouble rather than refusing the record. */
const TRANSIENT_CODES = new Set(['INTERNAL_SERVER_ERROR', 'SERVICE_UNAVAILABLE', 'TIMEOUT', 'UNAVAILABLE']);

interface GqlError {
  message?: unknown;
  path?: unknown[];
  extensions?: { code?: unknown };
}
interface GqlBody {
  data?: Record<string, unknown> | null;
  errors?: GqlError[];
}

const MUTATION = {
  process: { field: 'createProcess', arg: 'process', type: 'ProcessCreateParams', payload: 'process' },
  'economic-event': { field: 'createEconomicEvent', arg: 'event', type: 'EconomicEventCreateParams', payload: 'economicEvent' },
  claim: { field: 'createClaim', arg: 'claim', type: 'ClaimCreateParams', payload: 'claim' },
} as const;

export class GraphqlTransport implements LedgerTransport {
  readonly name: string;
  private readonly traits: FlavourTraits;
  private readonly ids: LedgerIdMap;

  constructor(private readonly opts: GraphqlOptions) {
    const flavour = opts.flavour ?? 'vf-graphql';
    this.traits = FLAVOURS[flavour];
    this.name = `graphql (${flavour})`;
    this.ids = opts.ids ?? new Map<string, string>();
  }

  async send(records: readonly LedgerRecord[]): Promise<Outcome[]> {
    if (this.traits.clientIds) return this.sendBatch(records);
    const outcomes: Outcome[] = [];
    for (const r of records) outcomes.push(...(await this.sendBatch([r])));
    return outcomes;
  }

  private async sendBatch(records: readonly LedgerRecord[]): Promise<Outcome[]> {
    if (records.length === 0) return [];
    const vars: Record<string, unknown> = {};
    const defs: string[] = [];
    const fields: string[] = [];
    for (const [i, r] of records.entries()) {
      const params = this.params(r);
      if (typeof params === 'string') return records.map((x) => ({ kind: 'retry', id: x.id, message: params }));
      const m = MUTATION[r.type];
      defs.push(`$r${i}: ${m.type}!`);
      fields.push(`r${i}: ${m.field}(${m.arg}: $r${i}) { ${m.payload} { id } }`);
      vars[`r${i}`] = params;
    }
    const query = `mutation Deliver(${defs.join(', ')}) {\n  ${fields.join('\n  ')}\n}`;
    const reply = await this.post(query, vars);
    if ('kind' in reply) return records.map((r) => ({ id: r.id, ...reply }));
    return records.map((r, i): Outcome => {
      const payload = (reply.data?.[`r${i}`] as Record<string, { id?: unknown } | null> | null | undefined)?.[MUTATION[r.type].payload];
      if (typeof payload?.id === 'string') {
        if (payload.id !== r.id) this.ids.set(r.id, payload.id);
        return { kind: 'delivered', id: r.id };
      }
      const errors = (reply.errors ?? []).filter((e) => e.path?.[0] === `r${i}`);
      if (errors.length === 0) return { kind: 'retry', id: r.id, message: 'the ledger answered nothing for this record: the outcome is unknown' };
      const message = errors.map((e) => String(e.message)).join('; ');
      return errors.some((e) => TRANSIENT_CODES.has(String(e.extensions?.code))) ? { kind: 'retry', id: r.id, message } : { kind: 'permanent', id: r.id, message };
    });
  }

  /** The create params of a record for this server, or why it cannot be sent yet. */
  private params(r: LedgerRecord): Record<string, unknown> | string {
    const resolve = this.opts.resolve ?? {};
    const agentId = (id: string) => resolve.agent?.(id) ?? id;
    const measure = (m: Measure | undefined) => m && { hasNumericalValue: m.hasNumericalValue, hasUnit: resolve.unit?.(m.hasUnit) ?? m.hasUnit };
    const missing: string[] = [];
    // A reference to an earlier record: ours when the server keeps our ids, else the one it chose.
    const ref = (id: string | undefined) => {
      if (id === undefined || this.traits.clientIds) return id;
      const theirs = this.ids.get(id);
      if (theirs === undefined) missing.push(id);
      return theirs;
    };
    let p: Record<string, unknown>;
    if (r.type === 'process') {
      p = { name: r.name, hasBeginning: r.hasBeginning, hasEnd: r.hasEnd, note: r.note };
    } else if (r.type === 'economic-event') {
      p = {
        action: this.traits.actions[r.action],
        provider: agentId(r.provider),
        receiver: agentId(r.receiver),
        inputOf: ref(r.inputOf),
        resourceInventoriedAs: r.resourceInventoriedAs && (resolve.resource?.(r.resourceInventoriedAs) ?? r.resourceInventoriedAs),
        resourceConformsTo: r.resourceConformsTo,
        resourceQuantity: measure(r.resourceQuantity),
        effortQuantity: measure(r.effortQuantity),
        hasBeginning: r.hasBeginning,
        hasEnd: r.hasEnd,
        hasPointInTime: r.hasPointInTime,
        note: r.note,
      };
    } else {
      p = {
        action: this.traits.actions[r.action],
        provider: agentId(r.provider),
        receiver: agentId(r.receiver),
        resourceQuantity: measure(r.resourceQuantity),
        triggeredBy: ref(r.triggeredBy),
        created: r.created,
        due: r.due,
        note: r.note,
      };
    }
    const corrects = r.type === 'process' ? undefined : r.corrects;
    if (this.traits.clientIds) {
      Object.assign(p, { id: r.id, created: r.created, corrects });
    } else {
      const tail = [`ovn-gateway record ${r.id}`, `created ${r.created}`, corrects && `corrects ${this.ids.get(corrects) ?? corrects}`].filter(Boolean).join('; ');
      p.note = `${p.note ? `${String(p.note)}\n` : ''}[${tail}]`;
    }
    if (missing.length) return `the ledger's id of ${missing.join(', ')} is not known here (records it acknowledged must be kept in ids): waiting`;
    return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
  }

  async lookup(ids: readonly string[]): Promise<Set<string>> {
    // Servers that chose their own ids are asked for those; an id never acknowledged is not there.
    const asked = ids.flatMap((id) => {
      const theirs = this.traits.clientIds ? id : this.ids.get(id);
      return theirs === undefined ? [] : [{ id, theirs }];
    });
    if (asked.length === 0) return new Set();
    const defs = asked.map((_, i) => `$i${i}: ID`).join(', ');
    const fields = asked.map((_, i) => `e${i}: economicEvent(id: $i${i}) { id } p${i}: process(id: $i${i}) { id } c${i}: claim(id: $i${i}) { id }`);
    const reply = await this.post(`query Lookup(${defs}) {\n  ${fields.join('\n  ')}\n}`, Object.fromEntries(asked.map((a, i) => [`i${i}`, a.theirs])));
    if ('kind' in reply) throw new LedgerRequestError(reply);
    const found = new Set<string>();
    asked.forEach((a, i) => {
      // A server may answer "not found" as an error on that field instead of null: either way, not held.
      if (['e', 'p', 'c'].some((k) => reply.data?.[`${k}${i}`])) found.add(a.id);
    });
    return found;
  }

  async totals(from: string, to: string): Promise<LedgerTotals> {
    if (!this.traits.totals) throw new LedgerRequestError({ kind: 'permanent', message: `${this.name} has no totals query: reconcile through the server's own reports` });
    const reply = await this.post('query Totals($from: String!, $to: String!) { ledgerTotals(from: $from, to: $to) { records sums { key value } } }', { from, to });
    if ('kind' in reply) throw new LedgerRequestError(reply);
    const t = reply.data?.ledgerTotals as { records?: unknown; sums?: { key: string; value: number }[] } | undefined;
    if (typeof t?.records !== 'number' || !Array.isArray(t.sums)) {
      throw new LedgerRequestError({ kind: 'permanent', message: `the ledger did not answer ledgerTotals: ${messageOf(reply) || 'no data'}` });
    }
    return { records: t.records, sums: Object.fromEntries(t.sums.map((s) => [s.key, s.value])) };
  }

  /** A GraphQL request: the body when the server executed it, or the verdict for all of it. */
  private async post(query: string, variables: Record<string, unknown>): Promise<GqlBody | Exclude<Verdict, { kind: 'delivered' }>> {
    const reply = await exchange(this.opts, 'POST', this.opts.url, { query, variables });
    if (!isReply(reply)) return reply;
    const verdict = classify(reply.status, reply.headers, reply.body);
    if (verdict.kind !== 'delivered') return verdict;
    const body = reply.body as GqlBody;
    if (!body || typeof body !== 'object' || (body.data === undefined && body.errors === undefined)) {
      return { kind: 'retry', message: `the ledger's reply (HTTP ${reply.status}) is not a GraphQL response: the outcome is unknown` };
    }
    // Errors of the whole request (parse, validation) have no path and come without data.
    if (!body.data && body.errors?.length && body.errors.every((e) => !e.path)) {
      const message = messageOf(body);
      return body.errors.some((e) => TRANSIENT_CODES.has(String(e.extensions?.code))) ? { kind: 'retry', message } : { kind: 'permanent', message };
    }
    return body;
  }
}
