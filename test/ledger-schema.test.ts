/**
 * Every GraphQL document the ledger client builds, validated with graphql-js (`validate`, then
 * `getVariableValues` for the variables) against each published schema its flavour is pinned to
 * (ledger-client/schemas/): the records of generated journals, the agents, units and
 * specifications they name, the lookups and the lists reconciliation reads. A document a real
 * server would refuse fails here, not at the ledger.
 */
import fc from 'fast-check';
import { getVariableValues, parse, validate, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { directoryCreate } from '../ledger-client/src/directory.js';
import { FLAVOUR_NAMES, FLAVOURS, type Flavour } from '../ledger-client/src/flavours.js';
import { recordsFor } from '../ledger-client/src/mapping.js';
import { loadSchema, SCHEMA_NAMES, type SchemaName } from '../ledger-client/src/schemas.js';
import type { LedgerRecord } from '../ledger-client/src/types.js';
import { LISTS, mutationDocument, pageDocument, processInputsDocument, recordCreate, referencesOf, type GqlRequest, type ListName } from '../ledger-client/src/vf-documents.js';
import { journal } from './ledger-arbitraries.js';
import { CTX, exampleEvents } from './ledger-example.js';

const schemas = new Map<SchemaName, GraphQLSchema>(SCHEMA_NAMES.map((n) => [n, loadSchema(n)]));

/** What the schema says of a request: its validation errors, then its variables' errors. */
function problems(schema: GraphQLSchema, req: GqlRequest): string[] {
  const doc = parse(req.query);
  const errors = validate(schema, doc);
  if (errors.length) return errors.map((e) => e.message);
  const op = doc.definitions[0] as OperationDefinitionNode;
  const vars = getVariableValues(schema, op.variableDefinitions ?? [], req.variables);
  return vars.errors?.map((e) => e.message) ?? [];
}

/** The server's id of anything of ours (the transport resolves them before it builds a document). */
const theirs = (id: string) => `srv-${id}`;

/** Every document the client builds for these records on this flavour. */
function documentsFor(records: readonly LedgerRecord[], flavour: Flavour): GqlRequest[] {
  const traits = FLAVOURS[flavour];
  const creates = records.map((r) => recordCreate(r, traits, CTX.gatewayId, theirs));
  const named = [...new Set(records.flatMap((r) => { const x = referencesOf(r); return [...x.agents, ...x.units, ...x.specs]; }))];
  return [
    ...creates.map((c) => mutationDocument([c])),
    ...(creates.length > 1 ? [mutationDocument(creates)] : []),
    ...named.map((id) => mutationDocument([directoryCreate(id)])),
    ...(Object.keys(LISTS) as ListName[]).filter((l) => l !== (traits.owed === 'claim' ? 'commitments' : 'claims')).flatMap((l) => [pageDocument(l, traits, null), pageDocument(l, traits, 'cursor-1')]),
    processInputsDocument(['p-1', 'p-2'], traits),
  ];
}

describe.each(FLAVOUR_NAMES)('documents of the %s flavour', (flavour) => {
  it.each(FLAVOURS[flavour].schemas)('validate against %s for every generated journal', (name) => {
    const schema = schemas.get(name)!;
    fc.assert(
      fc.property(journal, (events) => {
        const records = events.flatMap((e) => recordsFor(e, CTX));
        for (const req of documentsFor(records, flavour)) expect(problems(schema, req), req.query).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it.each(FLAVOURS[flavour].schemas)('validate against %s for the README example', (name) => {
    const ex = exampleEvents();
    const records = [ex.ended, ex.charge, ex.correction].flatMap((e) => recordsFor(e, CTX));
    for (const req of documentsFor(records, flavour)) expect(problems(schemas.get(name)!, req), req.query).toEqual([]);
  });
});

describe('the validation discriminates', () => {
  const ex = exampleEvents();
  const claims = recordsFor(ex.charge, CTX);

  it('refuses a flavour’s documents on a schema that lacks what they use', () => {
    const onHrea = documentsFor(claims, 'vf-graphql').flatMap((req) => problems(schemas.get('hrea/0.0.1-alpha.22')!, req));
    expect(onHrea.some((m) => m.startsWith('Unknown type "ClaimCreateParams".'))).toBe(true);
    expect(onHrea.some((m) => m.startsWith('Cannot query field "createClaim" on type "Mutation".'))).toBe(true);
    const on08 = documentsFor(claims, 'vf-graphql').flatMap((req) => problems(schemas.get('vf-graphql/0.8.5')!, req));
    expect(on08.some((m) => m.includes('Field "provider" is not defined by type "ClaimCreateParams"'))).toBe(true);
  });

  it('checks the scalars: a Decimal, a DateTime and an ID must be what the specification says', () => {
    const [create] = [recordCreate(claims[0]!, FLAVOURS['vf-graphql'], 'lab-1', theirs)];
    const bad = { ...create!, params: { ...create!.params, resourceQuantity: { hasNumericalValue: 'twelve', hasUnit: 'u' }, created: 'yesterday' } };
    const found = problems(schemas.get('vf-graphql/0.9.0-alpha.10')!, mutationDocument([bad])).join('\n');
    expect(found).toMatch(/hasNumericalValue.*expected a decimal number/);
    expect(found).toMatch(/created.*expected an ISO 8601 date-time/);
  });
});
