/**
 * The agents, units and resource specifications the records name, as objects of a GraphQL ledger,
 * which gives each an id of its own. At first contact each is found on the server or created
 * there, once; from then on the server's id is read from the id map the records' ids are kept in
 * (the journal's `ledger_ids`), so it survives restarts.
 *
 * - Units are found by their symbol (`h`, `g`, `CAD`): hREA identifies a unit by it, and a unit
 *   the network already has is the one to use.
 * - Agents and specifications are found by the marker the gateway writes in their note,
 *   `[ovn-gateway ‹our id›]`. An agent that already exists on the server (an affiliate who
 *   registered there) is used once its note ends with that marker.
 * A lookup reads the whole list (no Valueflows server filters by note); it happens only when an
 * id is missing from the map.
 */
import { LedgerRequestError, messageOf } from './classify.js';
import type { FlavourTraits } from './flavours.js';
import { CREATE, directoryMarker, mutationDocument, PAGE_SIZE, pageDocument, readDirectoryMarker, type Create, type GqlRequest, type ListName } from './vf-documents.js';

/** Our ids → the ids a server chose for them (records, agents, units, specifications). */
export interface LedgerIdMap {
  get(id: string): string | undefined;
  set(id: string, ledgerId: string): void;
}

/** A GraphQL body as the server answered it; a request that failed as a whole throws a LedgerRequestError. */
export interface GqlBody {
  data?: Record<string, unknown> | null;
  errors?: { message?: unknown; path?: unknown[]; extensions?: { code?: unknown } }[];
}
export type Ask = (req: GqlRequest) => Promise<GqlBody>;

/** Field errors a server reports when it is in trouble rather than refusing the request. */
export const TRANSIENT_CODES = new Set(['INTERNAL_SERVER_ERROR', 'SERVICE_UNAVAILABLE', 'TIMEOUT', 'UNAVAILABLE']);

/** OM2 units as Units of a server (currencies: their ISO 4217 code is label and symbol). */
const OM2: Record<string, { label: string; symbol: string }> = {
  'om2:hour': { label: 'hour', symbol: 'h' },
  'om2:minute': { label: 'minute', symbol: 'min' },
  'om2:second': { label: 'second', symbol: 's' },
  'om2:gram': { label: 'gram', symbol: 'g' },
  'om2:kilogram': { label: 'kilogram', symbol: 'kg' },
  'om2:kilowattHour': { label: 'kilowatt hour', symbol: 'kWh' },
  'om2:one': { label: 'one', symbol: 'one' },
};

function unitProfile(unit: string): { label: string; symbol: string } {
  const known = OM2[unit];
  if (known) return known;
  const code = /^iso4217:([A-Z]{3})$/.exec(unit)?.[1];
  if (code) return { label: code, symbol: code };
  throw new Error(`${unit} is not a unit the ledger client knows (om2:… or iso4217:…)`);
}

/** Our unit of a server's symbol (what reconciliation sums by); an unknown symbol stays as it is. */
export function unitOfSymbol(symbol: string): string {
  if (/^[A-Z]{3}$/.test(symbol)) return `iso4217:${symbol}`;
  return Object.entries(OM2).find(([, u]) => u.symbol === symbol)?.[0] ?? symbol;
}

/** What the server calls an agent of ours: affiliates are people, the rest organisations (ids.ts `agent`). */
function agentCreate(id: string): Create {
  const [kind = '', a = '', b] = id.split(':');
  const note = directoryMarker(id);
  if (kind === 'affiliate') return { creation: CREATE.person, params: { name: a, note } };
  const name = kind === 'custodian' ? `custodian of ${a}` : kind === 'co-owners' ? `co-owners of ${a}` : kind === 'fund' ? (b ? `${b} fund of ${a}` : `${a} fund`) : id;
  return { creation: CREATE.organization, params: { name, note } };
}

/** A resource specification of ours (ids.ts `spec`). */
function specCreate(id: string): Create {
  const [, kind, what = ''] = id.split(':');
  const name = kind === 'tool' ? `${what} (shared tool)` : kind === 'material' ? `material used on ${what}` : kind === 'work' ? `${what} work` : what;
  return { creation: CREATE.spec, params: { name, note: directoryMarker(id) } };
}

const listOf = (id: string): 'agents' | 'units' | 'specs' => (id.startsWith('spec:') ? 'specs' : /^(om2|iso4217):/.test(id) ? 'units' : 'agents');

/** The create mutation of an agent, unit or specification of ours. */
export function directoryCreate(id: string): Create {
  switch (listOf(id)) {
    case 'units':
      return { creation: CREATE.unit, params: unitProfile(id) };
    case 'specs':
      return specCreate(id);
    case 'agents':
      return agentCreate(id);
  }
}

type Node = Record<string, unknown> & { id?: unknown };

/** Reads a root list page by page; `visit` returns true when it has found all it wanted. */
export async function scan(ask: Ask, list: ListName, traits: FlavourTraits, visit: (node: Node) => boolean | void): Promise<void> {
  let cursor: string | null = null;
  const seen = new Set<string>();
  for (;;) {
    const body = await ask(pageDocument(list, traits, cursor));
    const page = body.data?.page as { edges?: { node: Node }[]; pageInfo?: { hasNextPage?: boolean; endCursor?: string | null } } | Node[] | null | undefined;
    if (!page) throw new LedgerRequestError({ kind: 'retry', message: `the ledger did not answer its list of ${list}: ${messageOf(body) || 'no data'}` });
    const nodes = Array.isArray(page) ? page : (page.edges ?? []).map((e) => e.node);
    let fresh = 0;
    for (const n of nodes) {
      if (typeof n.id === 'string' && !seen.has(n.id)) {
        seen.add(n.id);
        fresh++;
      }
      if (visit(n)) return;
    }
    if (Array.isArray(page)) {
      // start/limit: a short page is the last; a page with nothing new means the server ignores `start`.
      if (nodes.length < PAGE_SIZE || fresh === 0) return;
      cursor = String(nodes.at(-1)!.id);
    } else {
      if (!page.pageInfo?.hasNextPage || !page.pageInfo.endCursor) return;
      cursor = page.pageInfo.endCursor;
    }
  }
}

export class Directory {
  constructor(
    private readonly ask: Ask,
    private readonly ids: LedgerIdMap,
    private readonly traits: FlavourTraits,
  ) {}

  /**
   * Makes sure the server's ids of these agents, units and specifications are in the map: found
   * on the server, or created there. Throws a LedgerRequestError for what it could not resolve.
   */
  async resolve(ourIds: Iterable<string>): Promise<void> {
    const missing = new Set([...ourIds].filter((id) => this.ids.get(id) === undefined));
    if (missing.size === 0) return;
    for (const list of new Set([...missing].map(listOf))) {
      await scan(this.ask, list, this.traits, (n) => {
        const ours = list === 'units' ? unitOfSymbol(String(n.symbol)) : readDirectoryMarker(n.note);
        if (ours && missing.has(ours) && typeof n.id === 'string') {
          this.ids.set(ours, n.id);
          missing.delete(ours);
        }
        return missing.size === 0;
      });
    }
    if (missing.size === 0) return;
    // What cannot be described to a server (a unit no ledger knows) fails alone; the rest is created.
    const create: { id: string; c: Create }[] = [];
    const failed: string[] = [];
    for (const id of missing) {
      try {
        create.push({ id, c: directoryCreate(id) });
      } catch (err) {
        failed.push((err as Error).message);
      }
    }
    let transient = false;
    if (create.length) {
      const body = await this.ask(mutationDocument(create.map((x) => x.c)));
      create.forEach(({ id, c }, i) => {
        const made = (body.data?.[`r${i}`] as Record<string, { id?: unknown } | null> | null | undefined)?.[c.creation.payload];
        if (typeof made?.id === 'string') this.ids.set(id, made.id);
        else failed.push(`the ledger did not create ${id}: ${(body.errors ?? []).filter((e) => e.path?.[0] === `r${i}`).map((e) => String(e.message)).join('; ') || 'no answer'}`);
      });
      transient = (body.errors ?? []).some((e) => TRANSIENT_CODES.has(String(e.extensions?.code)));
    }
    if (failed.length) throw new LedgerRequestError({ kind: transient ? 'retry' : 'permanent', message: failed.join('; ') });
  }
}
