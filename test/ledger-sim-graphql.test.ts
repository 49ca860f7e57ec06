/**
 * The simulated ledger refuses, as the real servers do, every document the ledger client used to
 * send that no published Valueflows schema accepts (one case each), and in hREA mode what hREA's
 * own rules refuse; it stores nothing of a refused document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Flavour } from '../ledger-client/src/flavours.js';
import { LedgerSim } from '../simulators/src/ledger/ledger-sim.js';

interface Reply {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] };
}

const sims = new Map<Flavour, LedgerSim>();
beforeAll(async () => {
  for (const flavour of ['vf-graphql', 'vf-graphql-0.8', 'hrea'] as const) sims.set(flavour, await LedgerSim.start({ flavour }));
});
afterAll(async () => {
  for (const sim of sims.values()) await sim.close();
});

async function ask(flavour: Flavour, query: string, variables: Record<string, unknown> = {}): Promise<Reply> {
  const res = await fetch(`${sims.get(flavour)!.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, body: (await res.json()) as Reply['body'] };
}

/** The ledger's refusal: HTTP 400 and the schema's words, nothing stored. */
async function refused(flavour: Flavour, query: string, variables: Record<string, unknown>, message: string): Promise<void> {
  const before = sims.get(flavour)!.store.list(['Process', 'EconomicEvent', 'Claim', 'Commitment'], {}, 10_000).length;
  const reply = await ask(flavour, query, variables);
  expect(reply.status).toBe(400);
  expect(reply.body.data).toBeUndefined();
  expect(reply.body.errors!.map((e) => e.message).join('\n')).toContain(message);
  expect(sims.get(flavour)!.store.list(['Process', 'EconomicEvent', 'Claim', 'Commitment'], {}, 10_000).length).toBe(before);
}

const PROCESS = { name: 'Use of printer by farah', hasBeginning: '2026-11-24T14:00:00Z', hasEnd: '2026-11-24T15:39:59.900Z' };
const CREATE_PROCESS = 'mutation Deliver($r0: ProcessCreateParams!) { r0: createProcess(process: $r0) { process { id } } }';

/** Agents, a unit, a specification and a process to name, created through the API itself. */
async function fixtures(flavour: Flavour): Promise<{ agent: string; unit: string; spec: string; process: string }> {
  const reply = await ask(
    flavour,
    `mutation Setup($a: AgentCreateParams!, $u: UnitCreateParams!, $s: ResourceSpecificationCreateParams!, $p: ProcessCreateParams!) {
      a: createPerson(person: $a) { agent { id } }
      u: createUnit(unit: $u) { unit { id } }
      s: createResourceSpecification(resourceSpecification: $s) { resourceSpecification { id } }
      p: createProcess(process: $p) { process { id } }
    }`,
    { a: { name: 'farah' }, u: { label: `gram ${Math.random()}`, symbol: `g${Math.random()}` }, s: { name: 'PLA' }, p: PROCESS },
  );
  expect(reply.body.errors).toBeUndefined();
  const d = reply.body.data as Record<string, Record<string, { id: string }>>;
  return { agent: d.a!.agent!.id, unit: d.u!.unit!.id, spec: d.s!.resourceSpecification!.id, process: d.p!.process!.id };
}

describe('documents of the old dialect, which no published schema accepts', () => {
  it('our id in ProcessCreateParams', async () => {
    await refused('vf-graphql', CREATE_PROCESS, { r0: { ...PROCESS, id: '85037c93-b21d-5049-b0c0-80ac5f86acec' } }, 'Field "id" is not defined by type "ProcessCreateParams".');
  });

  it('created in EconomicEventCreateParams', async () => {
    const f = await fixtures('vf-graphql');
    const event = { action: 'use', provider: f.agent, receiver: f.agent, inputOf: f.process, effortQuantity: { hasNumericalValue: '1.5', hasUnit: f.unit }, hasBeginning: '2026-11-24T14:00:00Z', created: '2026-11-24T15:40:00.120Z' };
    await refused('vf-graphql', 'mutation Deliver($r0: EconomicEventCreateParams!) { r0: createEconomicEvent(event: $r0) { economicEvent { id } } }', { r0: event }, 'Field "created" is not defined by type "EconomicEventCreateParams".');
  });

  it('corrects in ClaimCreateParams', async () => {
    await refused('vf-graphql', 'mutation Deliver($r0: ClaimCreateParams!) { r0: createClaim(claim: $r0) { claim { id } } }', { r0: { action: 'transfer', triggeredBy: 'x', corrects: 'y' } }, 'Field "corrects" is not defined by type "ClaimCreateParams".');
  });

  it('a Claim with provider and receiver on 0.8, whose Claim names neither', async () => {
    await refused('vf-graphql-0.8', 'mutation Deliver($r0: ClaimCreateParams!) { r0: createClaim(claim: $r0) { claim { id } } }', { r0: { action: 'transfer', triggeredBy: 'x', provider: 'a', receiver: 'b' } }, 'Field "provider" is not defined by type "ClaimCreateParams".');
  });

  it('a Claim on hREA, which has none', async () => {
    await refused('hrea', 'mutation Deliver($r0: ClaimCreateParams!) { r0: createClaim(claim: $r0) { claim { id } } }', { r0: {} }, 'Cannot query field "createClaim" on type "Mutation".');
  });

  it('a lookup declaring ID where the schema wants ID!', async () => {
    await refused('vf-graphql', 'query Lookup($i0: ID) { e0: economicEvent(id: $i0) { id } }', { i0: 'x' }, 'Variable "$i0" of type "ID" used in position expecting type "ID!".');
  });

  it('a lookup asking hREA for a claim', async () => {
    await refused('hrea', 'query Lookup($i0: ID!) { c0: claim(id: $i0) { id } }', { i0: 'x' }, 'Cannot query field "claim" on type "Query".');
  });

  it('ledgerTotals, which no Valueflows server has', async () => {
    await refused('vf-graphql', 'query Totals($from: String!, $to: String!) { ledgerTotals(from: $from, to: $to) { records } }', { from: 'a', to: 'b' }, 'Cannot query field "ledgerTotals" on type "Query".');
  });

  it('a variable of a type the schema does not define', async () => {
    await refused('vf-graphql', 'mutation Deliver($r0: ProcessParams!) { r0: createProcess(process: $r0) { process { id } } }', { r0: PROCESS }, 'Unknown type "ProcessParams".');
  });

  it('an argument the field does not take', async () => {
    await refused('vf-graphql', 'mutation Deliver($r0: ProcessCreateParams!) { r0: createProcess(process: $r0, id: "x") { process { id } } }', { r0: PROCESS }, 'Unknown argument "id" on field "Mutation.createProcess".');
  });

  it('a variable the operation does not declare', async () => {
    await refused('vf-graphql', 'mutation Deliver($r0: ProcessCreateParams!) { r0: createProcess(process: $r0) { process { id } } r1: createProcess(process: $r1) { process { id } } }', { r0: PROCESS, r1: PROCESS }, 'Variable "$r1" is not defined by operation "Deliver".');
  });

  it('a createProcess whose input says it is a claim', async () => {
    await refused('vf-graphql', CREATE_PROCESS, { r0: { ...PROCESS, type: 'claim' } }, 'Field "type" is not defined by type "ProcessCreateParams".');
  });

  it('a Decimal that is not a number, a DateTime that is not a date-time', async () => {
    await refused('vf-graphql', CREATE_PROCESS, { r0: { ...PROCESS, hasEnd: 'tomorrow' } }, 'expected an ISO 8601 date-time');
    const event = { action: 'use', provider: 'a', receiver: 'a', effortQuantity: { hasNumericalValue: 'a lot', hasUnit: 'h' }, hasBeginning: '2026-11-24T14:00:00Z' };
    await refused('vf-graphql', 'mutation Deliver($r0: EconomicEventCreateParams!) { r0: createEconomicEvent(event: $r0) { economicEvent { id } } }', { r0: event }, 'expected a decimal number');
  });
});

describe('what the ledger refuses beyond the schema', () => {
  const EVENT = 'mutation Deliver($r0: EconomicEventCreateParams!) { r0: createEconomicEvent(event: $r0) { economicEvent { id } } }';

  /**
   * A field error on the record (the request itself ran): what the client takes as a refusal of
   * that record. The payload is non-null, so graphql-js nulls the whole `data`, as every server on it does.
   */
  async function fieldError(flavour: Flavour, event: Record<string, unknown>): Promise<string> {
    const reply = await ask(flavour, EVENT, { r0: event });
    expect(reply.status).toBe(200);
    expect(reply.body.data).toBeNull();
    expect(reply.body.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    return reply.body.errors![0]!.message;
  }

  it('references must name what the ledger holds, of the right type', async () => {
    const f = await fixtures('vf-graphql');
    const use = { action: 'use', provider: f.agent, receiver: f.agent, inputOf: 'no-such-process', resourceConformsTo: f.spec, effortQuantity: { hasNumericalValue: '1', hasUnit: f.unit }, hasBeginning: '2026-11-24T14:00:00Z' };
    expect(await fieldError('vf-graphql', use)).toBe('event.inputOf: no Process "no-such-process" here');
    expect(await fieldError('vf-graphql', { ...use, inputOf: f.process, provider: f.process })).toBe(`event.provider: no Person or Organization "${f.process}" here`);
    expect(await fieldError('vf-graphql', { ...use, inputOf: f.process, effortQuantity: { hasNumericalValue: '1', hasUnit: 'om2:hour' } })).toBe('event.effortQuantity.hasUnit: no Unit "om2:hour" here');
    expect(await fieldError('vf-graphql', { ...use, inputOf: f.process, action: 'borrow' })).toMatch(/^event\.action: unknown action "borrow"/);
  });

  describe('hREA’s rules (rea_economic_event, vf_actions)', () => {
    let f: Awaited<ReturnType<typeof fixtures>>;
    let consume: Record<string, unknown>;
    beforeAll(async () => {
      f = await fixtures('hrea');
      consume = { action: 'consume', provider: f.agent, receiver: f.agent, inputOf: f.process, resourceConformsTo: f.spec, resourceQuantity: { hasNumericalValue: '44.7', hasUnit: f.unit }, hasBeginning: '2026-11-24T14:00:00Z' };
    });

    it('takes a consume that names what was consumed, how much and when', async () => {
      const reply = await ask('hrea', EVENT, { r0: consume });
      expect(reply.body.errors).toBeUndefined();
    });

    it('refuses a consume or a work without a resource reference', async () => {
      const { resourceConformsTo: _, ...bare } = consume;
      expect(await fieldError('hrea', bare)).toBe('event: EconomicEvent must reference an inventoried resource, resource specification or resource classification');
      expect(await fieldError('hrea', { ...bare, action: 'work', resourceQuantity: undefined, effortQuantity: { hasNumericalValue: '12', hasUnit: f.unit } })).toBe(
        'event: EconomicEvent must reference an inventoried resource, resource specification or resource classification',
      );
    });

    it('refuses an event without a quantity, or without a time', async () => {
      expect(await fieldError('hrea', { ...consume, resourceQuantity: undefined })).toBe('event: EconomicEvent must include either a resource quantity or an effort quantity');
      expect(await fieldError('hrea', { ...consume, hasBeginning: undefined })).toBe('event: EconomicEvent must have a beginning, end or exact time');
    });

    it('wants a process for an input action, and none for a transfer', async () => {
      expect(await fieldError('hrea', { ...consume, inputOf: undefined })).toBe("event: EconomicEvent input process required for 'consume' action");
      expect(await fieldError('hrea', { ...consume, action: 'transfer' })).toBe("event: EconomicEvent of 'transfer' action cannot link to processes");
    });

    it('refuses a second unit with a symbol it has (hREA identifies units by symbol)', async () => {
      const symbol = `kWh${Math.random()}`;
      const unit = 'mutation U($u: UnitCreateParams!) { u: createUnit(unit: $u) { unit { id } } }';
      expect((await ask('hrea', unit, { u: { label: 'kilowatt hour', symbol } })).body.errors).toBeUndefined();
      expect((await ask('hrea', unit, { u: { label: 'kWh', symbol } })).body.errors![0]!.message).toBe(`unit.symbol: a Unit "${symbol}" exists`);
    });
  });

  it('vf-graphql mode keeps to the schema: a consume without a resource reference is taken there', async () => {
    const f = await fixtures('vf-graphql');
    const reply = await ask('vf-graphql', EVENT, { r0: { action: 'consume', provider: f.agent, receiver: f.agent, inputOf: f.process, resourceQuantity: { hasNumericalValue: '1', hasUnit: f.unit }, hasBeginning: '2026-11-24T14:00:00Z' } });
    expect(reply.body.errors).toBeUndefined();
  });
});
