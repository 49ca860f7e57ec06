/**
 * Valueflows GraphQL (vf-graphql 0.9 and 0.8, hREA, Bonfire): the records as `createProcess`,
 * `createEconomicEvent` and `createClaim` (or `createCommitment`) mutations that the published
 * schema of each flavour accepts (flavours.ts, vf-documents.ts).
 *
 * Every such server chooses the ids of what it stores and none deduplicates, so the gateway keeps
 * the id the server gave each record (`ids`, which must outlive the process: the journal's
 * `ledger_ids`), never sends a record the map knows again, and writes its own id in a marker at
 * the end of the note. References to earlier records go by the server's ids; agents, units and
 * resource specifications are created or found at first contact (directory.ts). Records go in
 * order, as few requests as the references allow: a record that names one in the request being
 * built starts the next request.
 *
 * A record whose answer was lost is looked for by its marker: the input events of its process,
 * else the server's list of its type, page by page. Reconciliation reads the same lists.
 */
import { classify, LedgerRequestError, messageOf, type Verdict } from './classify.js';
import { Directory, scan, TRANSIENT_CODES, unitOfSymbol, type GqlBody, type LedgerIdMap } from './directory.js';
import { FLAVOURS, type Flavour, type FlavourTraits } from './flavours.js';
import { exchange, isReply, type HttpLedgerOptions } from './http.js';
import { totalsOf, type Totalled } from './totals.js';
import type { LedgerRecord, LedgerTotals, LedgerTransport, Measure, Outcome } from './types.js';
import { mutationDocument, processInputsDocument, readRecordMarker, recordCreate, referencesOf, type Create, type GqlRequest } from './vf-documents.js';

export type { LedgerIdMap } from './directory.js';

export interface GraphqlOptions extends HttpLedgerOptions {
  flavour?: Flavour;
  /** This gateway's id, written in every record's marker: reconciliation counts this gateway's records only. */
  gatewayId: string;
  /** Our ids → the server's (default: in memory, which forgets them when the process ends). */
  ids?: LedgerIdMap;
}

type Failure = Exclude<Verdict, { kind: 'delivered' }>;

export class GraphqlTransport implements LedgerTransport {
  readonly name: string;
  private readonly traits: FlavourTraits;
  private readonly ids: LedgerIdMap;
  private readonly directory: Directory;

  constructor(private readonly opts: GraphqlOptions) {
    const flavour = opts.flavour ?? 'vf-graphql';
    this.traits = FLAVOURS[flavour];
    this.name = `graphql (${flavour})`;
    this.ids = opts.ids ?? new Map<string, string>();
    this.directory = new Directory((req) => this.ask(req), this.ids, this.traits);
  }

  async send(records: readonly LedgerRecord[]): Promise<Outcome[]> {
    const outcomes = new Map<string, Outcome>();
    const todo: LedgerRecord[] = [];
    for (const r of records) {
      // A record the server already gave an id to is there: sending it again would store it twice.
      if (this.ids.get(r.id) === undefined) todo.push(r);
      else outcomes.set(r.id, { kind: 'delivered', id: r.id });
    }
    const finish = () => records.map((r) => outcomes.get(r.id)!);
    let directoryFailure: string | null = null;
    try {
      await this.directory.resolve(todo.flatMap((r) => directoryRefs(referencesOf(r))));
    } catch (err) {
      if (!(err instanceof LedgerRequestError)) throw err;
      if (err.verdict.kind === 'retry') {
        for (const r of todo) outcomes.set(r.id, { id: r.id, ...err.verdict });
        return finish();
      }
      directoryFailure = err.message;
    }

    let request: { r: LedgerRecord; create: Create }[] = [];
    let stop: Failure | null = null;
    const flush = async () => {
      const sent = request;
      request = [];
      if (sent.length === 0) return;
      const reply = await this.post(mutationDocument(sent.map((s) => s.create)));
      if ('kind' in reply) {
        for (const s of sent) outcomes.set(s.r.id, { id: s.r.id, ...reply });
        // A request that failed as a whole may fail again: the rest waits. A refused document refuses only its own records.
        if (reply.kind === 'retry') stop = reply;
        return;
      }
      sent.forEach((s, i) => outcomes.set(s.r.id, this.outcomeOf(s.r, s.create, reply, `r${i}`)));
    };
    for (const r of todo) {
      const refs = referencesOf(r);
      if (refs.records.some((id) => request.some((s) => s.r.id === id))) await flush();
      if (stop) {
        outcomes.set(r.id, { id: r.id, ...(stop as Failure) });
        continue;
      }
      const blocked = this.blocked(r, refs, outcomes, directoryFailure);
      if (blocked) outcomes.set(r.id, blocked);
      else request.push({ r, create: recordCreate(r, this.traits, this.opts.gatewayId, (id) => this.ids.get(id)!) });
    }
    await flush();
    return finish();
  }

  /** Why a record cannot be sent now, when something it names has no id on the server. */
  private blocked(r: LedgerRecord, refs: ReturnType<typeof referencesOf>, outcomes: Map<string, Outcome>, directoryFailure: string | null): Outcome | null {
    for (const id of refs.records) {
      if (this.ids.get(id) !== undefined) continue;
      const o = outcomes.get(id);
      if (o?.kind === 'retry') return { kind: 'retry', id: r.id, message: `waits for record ${id}: ${o.message}` };
      // The outbox sends a tool's records in order: what is not at the ledger by now was refused.
      return { kind: 'permanent', id: r.id, message: `names record ${id}, which the ledger ${o ? 'refused' : 'does not hold (a dead letter: retry it first)'}` };
    }
    const unresolved = directoryRefs(refs).filter((id) => this.ids.get(id) === undefined);
    return unresolved.length ? { kind: 'permanent', id: r.id, message: directoryFailure ?? `no id at the ledger for ${unresolved.join(', ')}` } : null;
  }

  private outcomeOf(r: LedgerRecord, create: Create, body: GqlBody, alias: string): Outcome {
    const made = (body.data?.[alias] as Record<string, { id?: unknown } | null> | null | undefined)?.[create.creation.payload];
    if (typeof made?.id === 'string') {
      this.ids.set(r.id, made.id);
      return { kind: 'delivered', id: r.id };
    }
    const errors = (body.errors ?? []).filter((e) => e.path?.[0] === alias);
    if (errors.length === 0) {
      // graphql-js answers no data at all when one mutation of a request fails: the others' outcome is unknown.
      const why = body.errors?.length ? 'the ledger refused another record of the request, which leaves this one’s outcome unknown' : 'the ledger answered nothing for this record: the outcome is unknown';
      return { kind: 'retry', id: r.id, message: `${why} (it is looked up before it is sent again)` };
    }
    const message = errors.map((e) => String(e.message)).join('; ');
    return errors.some((e) => TRANSIENT_CODES.has(String(e.extensions?.code))) ? { kind: 'retry', id: r.id, message } : { kind: 'permanent', id: r.id, message };
  }

  async lookup(records: readonly LedgerRecord[]): Promise<Set<string>> {
    const found = new Set<string>();
    const wanted = new Map<string, LedgerRecord>();
    for (const r of records) {
      if (this.ids.get(r.id) === undefined) wanted.set(r.id, r);
      else found.add(r.id);
    }
    const take = (node: Record<string, unknown>) => {
      const m = readRecordMarker(node.note);
      if (m && m.gatewayId === this.opts.gatewayId && wanted.has(m.id) && typeof node.id === 'string') {
        this.ids.set(m.id, node.id);
        found.add(m.id);
        wanted.delete(m.id);
      }
    };
    const ask = (req: GqlRequest) => this.ask(req);
    const left = (type: LedgerRecord['type']) => [...wanted.values()].filter((r) => r.type === type);
    if (left('process').length) await scan(ask, 'processes', this.traits, (n) => (take(n), left('process').length === 0));
    // An input event is among the inputs of its process, when the server names the process: asked there, and only there.
    const processOf = (r: LedgerRecord) => (r.type === 'economic-event' && r.inputOf ? this.ids.get(r.inputOf) : undefined);
    const processes = [...new Set(left('economic-event').flatMap((r) => processOf(r) ?? []))];
    if (processes.length) {
      const body = await this.ask(processInputsDocument(processes, this.traits));
      processes.forEach((_, i) => ((body.data?.[`p${i}`] as Record<string, Record<string, unknown>[] | null> | null | undefined)?.[this.traits.processInputs] ?? []).forEach(take));
    }
    const unplaced = () => left('economic-event').filter((r) => processOf(r) === undefined).length;
    if (unplaced()) await scan(ask, 'events', this.traits, (n) => (take(n), unplaced() === 0));
    if (left('claim').length) await scan(ask, this.owedList, this.traits, (n) => (take(n), left('claim').length === 0));
    return found;
  }

  /** What the server holds of this gateway's records created in [from, to), read from its lists by their markers. */
  async totals(from: string, to: string): Promise<LedgerTotals> {
    const [start, end] = [Date.parse(from), Date.parse(to)];
    const ours = (node: Record<string, unknown>) => {
      const m = readRecordMarker(node.note);
      const at = m ? Date.parse(m.created) : NaN;
      return m?.gatewayId === this.opts.gatewayId && at >= start && at < end;
    };
    const action = (node: Record<string, unknown>) => {
      const id = String((node.action as { id?: unknown } | null)?.id);
      return Object.entries(this.traits.actions).find(([, theirs]) => theirs === id)?.[0] ?? id;
    };
    const measure = (m: unknown): Measure | undefined => {
      const q = m as { hasNumericalValue?: unknown; hasUnit?: { symbol?: unknown } | null } | null | undefined;
      return q ? ({ hasNumericalValue: Number(q.hasNumericalValue), hasUnit: unitOfSymbol(String(q.hasUnit?.symbol)) } as Measure) : undefined;
    };
    const held: Totalled[] = [];
    const ask = (req: GqlRequest) => this.ask(req);
    await scan(ask, 'processes', this.traits, (n) => void (ours(n) && held.push({ type: 'process' })));
    await scan(ask, 'events', this.traits, (n) => void (ours(n) && held.push({ type: 'economic-event', action: action(n), resourceQuantity: measure(n.resourceQuantity), effortQuantity: measure(n.effortQuantity) })));
    await scan(ask, this.owedList, this.traits, (n) => void (ours(n) && held.push({ type: 'claim', action: action(n), resourceQuantity: measure(n.resourceQuantity) })));
    return totalsOf(held);
  }

  private get owedList() {
    return this.traits.owed === 'claim' ? 'claims' : 'commitments';
  }

  /** A request whose answer must come: the body, or a LedgerRequestError. */
  private async ask(req: GqlRequest): Promise<GqlBody> {
    const reply = await this.post(req);
    if ('kind' in reply) throw new LedgerRequestError(reply);
    return reply;
  }

  /** A GraphQL request: the body when the server executed it, or the verdict for all of it. */
  private async post(req: GqlRequest): Promise<GqlBody | Failure> {
    const reply = await exchange(this.opts, 'POST', this.opts.url, req);
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

/** What a record names that the directory resolves: agents, units, specifications (not other records). */
const directoryRefs = (refs: ReturnType<typeof referencesOf>) => [...refs.agents, ...refs.units, ...refs.specs];
