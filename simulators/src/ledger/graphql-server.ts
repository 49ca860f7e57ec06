/**
 * The simulated ledger's GraphQL: the published schema of its flavour (ledger-client/schemas/),
 * executed with graphql-js, with resolvers over the store. A document the schema refuses is
 * refused as a real server refuses it (graphql-js's own messages: unknown fields, arguments and
 * types, undeclared variables, wrong variable types, input fields the type lacks, scalars that
 * are not what the specification says). Beyond the schema: every reference must name an object
 * of the right type that the ledger holds, an action must be a Valueflows action, and in hREA
 * mode hREA's own rules apply (validation.ts). The ledger chooses every id and deduplicates
 * nothing, as Valueflows servers do.
 *
 * What it resolves: the create mutations the ledger client uses (processes, economic events,
 * claims, commitments, people, organisations, units, resource specifications), every root query
 * by id, every root list (Relay connections from `first`/`after`; 0.8's `start`/`limit`), and a
 * process's input events. Anything else answers that the simulator does not implement it.
 * Nothing is simulator-only: reconciliation reads the same lists a real server has.
 */
import {
  execute,
  getNamedType,
  getNullableType,
  getOperationAST,
  GraphQLError,
  isAbstractType,
  isCompositeType,
  isListType,
  isObjectType,
  parse,
  validate,
  type DocumentNode,
  type GraphQLFieldResolver,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';
import { FLAVOURS, type Flavour } from '../../../ledger-client/src/flavours.js';
import { loadSchema } from '../../../ledger-client/src/schemas.js';
import type { Faults } from './ledger-app.js';
import type { LedgerStore, VfObject } from './ledger-store.js';
import { actionOf, hreaProblemOf, VF_ACTIONS } from './validation.js';

interface GraphqlRequest {
  query: string;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
}

interface GraphqlReply {
  status: number;
  body: unknown;
  /** A mutation ran (and may have stored something). */
  mutation: boolean;
}

/** The create mutations: their argument and the type and payload field of what they create. */
const CREATES: Record<string, { arg: string; typename: string; payload: string }> = {
  createProcess: { arg: 'process', typename: 'Process', payload: 'process' },
  createEconomicEvent: { arg: 'event', typename: 'EconomicEvent', payload: 'economicEvent' },
  createClaim: { arg: 'claim', typename: 'Claim', payload: 'claim' },
  createCommitment: { arg: 'commitment', typename: 'Commitment', payload: 'commitment' },
  createPerson: { arg: 'person', typename: 'Person', payload: 'agent' },
  createOrganization: { arg: 'organization', typename: 'Organization', payload: 'agent' },
  createUnit: { arg: 'unit', typename: 'Unit', payload: 'unit' },
  createResourceSpecification: { arg: 'resourceSpecification', typename: 'ResourceSpecification', payload: 'resourceSpecification' },
};

/** The gateway's records among them: what the `reject` fault refuses. */
const RECORD_TYPES = new Set(['Process', 'EconomicEvent', 'Claim', 'Commitment']);
/** The flows: what names an action. */
const FLOWS = new Set(['EconomicEvent', 'Claim', 'Commitment']);

const AGENT = ['Person', 'Organization'];
/** What each input's references must name (none of the other types is held here, so naming one is refused). */
const REFS: Record<string, Record<string, readonly string[]>> = {
  EconomicEvent: {
    provider: AGENT,
    receiver: AGENT,
    inputOf: ['Process'],
    outputOf: ['Process'],
    triggeredBy: ['EconomicEvent'],
    resourceConformsTo: ['ResourceSpecification'],
    resourceInventoriedAs: ['EconomicResource'],
    toResourceInventoriedAs: ['EconomicResource'],
    realizationOf: ['Agreement'],
    atLocation: ['SpatialThing'],
    toLocation: ['SpatialThing'],
  },
  Claim: { provider: AGENT, receiver: AGENT, triggeredBy: ['EconomicEvent'], resourceConformsTo: ['ResourceSpecification'] },
  Commitment: {
    provider: AGENT,
    receiver: AGENT,
    inputOf: ['Process'],
    outputOf: ['Process'],
    resourceConformsTo: ['ResourceSpecification'],
    resourceInventoriedAs: ['EconomicResource'],
    clauseOf: ['Agreement'],
    independentDemandOf: ['Plan'],
    plannedWithin: ['Plan'],
    atLocation: ['SpatialThing'],
  },
  Process: { basedOn: ['ProcessSpecification'], plannedWithin: ['Plan'] },
  ResourceSpecification: { defaultUnitOfResource: ['Unit'], defaultUnitOfEffort: ['Unit'] },
  Organization: { primaryLocation: ['SpatialThing'] },
};

/** The most a list answers at once. */
const MAX_PAGE = 100;

const refuse = (message: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });

export class LedgerGraphql {
  private readonly schema: GraphQLSchema;
  private readonly hrea: boolean;
  /** Parsed and validated documents by their text: clients send the same few shapes again and again. */
  private readonly documents = new Map<string, DocumentNode>();

  constructor(
    private readonly store: LedgerStore,
    private readonly faults: Faults,
    readonly flavour: Flavour,
  ) {
    this.hrea = flavour === 'hrea';
    this.schema = loadSchema(FLAVOURS[flavour].schemas[0]!);
    this.bind();
  }

  /** Executes a request: 400 with the schema's words when the document or its variables are refused, 200 otherwise. */
  run(req: GraphqlRequest): GraphqlReply {
    let document = this.documents.get(req.query);
    if (!document) {
      try {
        document = parse(req.query);
      } catch (err) {
        return { status: 400, mutation: false, body: { errors: [{ ...(err as GraphQLError).toJSON(), extensions: { code: 'GRAPHQL_PARSE_FAILED' } }] } };
      }
      const invalid = validate(this.schema, document);
      if (invalid.length) return { status: 400, mutation: false, body: { errors: invalid.map((e) => ({ ...e.toJSON(), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })) } };
      if (this.documents.size >= 1000) this.documents.delete(this.documents.keys().next().value!);
      this.documents.set(req.query, document);
    }
    const mutation = getOperationAST(document, req.operationName)?.operation === 'mutation';
    const run = () =>
      execute({
        schema: this.schema,
        document,
        variableValues: req.variables ?? {},
        operationName: req.operationName,
        fieldResolver: this.fieldResolver,
        typeResolver: (value) => (value as VfObject).__typename,
      });
    // One commit per request, as the resolvers are synchronous; each mutation still stands alone.
    const result = mutation ? this.store.db.transaction(run)() : run();
    if ('then' in result) throw new Error('the simulated ledger resolves synchronously');
    // No data at all: the variables (or the operation name) were refused before anything ran.
    if (result.data === undefined) return { status: 400, mutation, body: { errors: (result.errors ?? []).map((e) => ({ ...e.toJSON(), extensions: { code: 'BAD_USER_INPUT' } })) } };
    return { status: 200, mutation, body: result.errors?.length ? { data: result.data, errors: result.errors.map((e) => e.toJSON()) } : { data: result.data } };
  }

  /** A stored reference as the object it names, when it is of the type the field wants. */
  private load(id: string, named: GraphQLNamedType): unknown {
    if (named.name === 'Action') return actionOf(id, this.hrea) ?? null;
    const o = this.store.object(id);
    return o && this.typenamesOf(named).includes(o.__typename) ? o : null;
  }

  private typenamesOf(named: GraphQLNamedType): string[] {
    return isAbstractType(named) ? this.schema.getPossibleTypes(named).map((t) => t.name) : [named.name];
  }

  /** Fields read as stored; a reference (an id) where an object is wanted is the object. */
  private readonly fieldResolver: GraphQLFieldResolver<unknown, unknown> = (source, _args, _ctx, info) => {
    const value = (source as Record<string, unknown>)[info.fieldName];
    const named = getNamedType(info.returnType);
    if (!isCompositeType(named) || value == null) return value;
    if (typeof value === 'string') return this.load(value, named);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.map((v) => this.load(v, named)).filter((v) => v !== null);
    return value;
  };

  private bind(): void {
    for (const field of Object.values(this.schema.getQueryType()!.getFields())) {
      const named = getNamedType(field.type);
      if (field.args.some((a) => a.name === 'id')) field.resolve = (_s, args: { id: string }) => this.load(args.id, named);
      else if (named.name === 'Action') field.resolve = () => [...VF_ACTIONS.values()];
      else if (named.name.endsWith('Connection') && isObjectType(named)) field.resolve = (_s, args) => this.connection(named.name, this.nodeTypenames(named), args);
      else if (isListType(getNullableType(field.type))) field.resolve = (_s, args) => this.startLimit(this.typenamesOf(named), args);
    }
    for (const field of Object.values(this.schema.getMutationType()!.getFields())) {
      const c = CREATES[field.name];
      field.resolve = c
        ? (_s, args: Record<string, unknown>) => this.create(c, args)
        : () => {
            throw new GraphQLError(`${field.name}: not implemented by the simulated ledger`, { extensions: { code: 'NOT_IMPLEMENTED' } });
          };
    }
    const process = this.schema.getType('Process');
    const inputs = isObjectType(process) ? process.getFields()[FLAVOURS[this.flavour].processInputs] : undefined;
    if (inputs) {
      inputs.resolve = (source, args: { filter?: unknown }) => {
        if (args.filter != null) throw refuse('filter: the simulated ledger does not filter a process’s events');
        return this.store.inputsOf((source as VfObject).id);
      };
    }
  }

  /** The types a connection's nodes may have. */
  private nodeTypenames(connection: GraphQLObjectType): string[] {
    const edge = getNamedType(connection.getFields().edges!.type);
    if (!isObjectType(edge)) throw new Error(`${connection.name}.edges: not edges`);
    return this.typenamesOf(getNamedType(edge.getFields().node!.type));
  }

  private connection(name: string, typenames: string[], args: Record<string, unknown>) {
    for (const unsupported of ['filter', 'last', 'before']) if (args[unsupported] != null) throw refuse(`${unsupported}: the simulated ledger reads lists forward only, unfiltered (first, after)`);
    const first = Math.min(MAX_PAGE, Math.max(0, Number(args.first ?? MAX_PAGE)));
    const afterSeq = args.after == null ? 0 : Number(args.after);
    if (!Number.isSafeInteger(afterSeq)) throw refuse(`after: not a cursor of ${name}`);
    const rows = this.store.list(typenames, { afterSeq }, first + 1);
    const page = rows.slice(0, first);
    return {
      edges: page.map((r) => ({ cursor: String(r.seq), node: r.object })),
      pageInfo: { hasNextPage: rows.length > first, hasPreviousPage: afterSeq > 0, startCursor: page[0] ? String(page[0].seq) : null, endCursor: page.at(-1) ? String(page.at(-1)!.seq) : null, pageLimit: first },
    };
  }

  /** 0.8's lists: `limit` objects after the one whose id is `start`. */
  private startLimit(typenames: string[], args: Record<string, unknown>) {
    const limit = Math.min(MAX_PAGE, Math.max(0, Number(args.limit ?? MAX_PAGE)));
    return this.store.list(typenames, { afterId: (args.start as string | null | undefined) ?? null }, limit).map((r) => r.object);
  }

  private create(c: (typeof CREATES)[string], args: Record<string, unknown>) {
    const input = { ...(args[c.arg] as Record<string, unknown>) };
    if (c.typename === 'EconomicEvent' && args.newInventoriedResource != null) throw refuse('newInventoriedResource: the simulated ledger holds no economic resources');
    if (RECORD_TYPES.has(c.typename) && this.faults.reject > 0) {
      this.faults.reject--;
      this.store.refused(input);
      throw refuse(this.faults.rejectMessage);
    }
    const problem = this.problemOf(c.typename, input);
    if (problem) {
      this.store.refused(input);
      throw refuse(`${c.arg}${problem.startsWith('.') ? '' : ': '}${problem}`);
    }
    return { [c.payload]: this.store.create(c.typename, input) };
  }

  /** What the ledger refuses beyond the schema: `.field: why` for a field, else a sentence about the whole. */
  private problemOf(typename: string, input: Record<string, unknown>): string | null {
    if (this.hrea && (typename === 'EconomicEvent' || typename === 'Commitment')) {
      const p = hreaProblemOf(typename, input);
      if (p) return p;
    }
    if (FLOWS.has(typename) && !actionOf(String(input.action), this.hrea)) return `.action: unknown action "${String(input.action)}" (Valueflows: ${[...VF_ACTIONS.keys()].join(', ')})`;
    for (const [field, allowed] of Object.entries(REFS[typename] ?? {})) {
      const value = input[field];
      for (const id of value == null ? [] : Array.isArray(value) ? value : [value]) {
        if (!allowed.includes(this.store.object(String(id))?.__typename ?? '')) return `.${field}: no ${allowed.join(' or ')} "${String(id)}" here`;
      }
    }
    for (const m of ['resourceQuantity', 'effortQuantity']) {
      const unit = (input[m] as { hasUnit?: unknown } | undefined)?.hasUnit;
      if (unit != null && this.store.object(String(unit))?.__typename !== 'Unit') return `.${m}.hasUnit: no Unit "${String(unit)}" here`;
    }
    // hREA identifies a unit by its symbol: a second unit with one is refused.
    if (this.hrea && typename === 'Unit' && this.store.list(['Unit'], {}, Number.MAX_SAFE_INTEGER).some((u) => u.object.symbol === input.symbol)) return `.symbol: a Unit "${String(input.symbol)}" exists`;
    return null;
  }
}
