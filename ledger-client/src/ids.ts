/**
 * Stable ids and the agents and resources the records name (see ../README.md, "Ids").
 *
 * A record's id is a UUID (version 5: SHA-1 over a fixed namespace and a name) whose name is
 * the gateway id, an anchor in the journal and the record's role among the records of its
 * event. The same journal event therefore always gives the same ids, so a retry can only ever
 * send a record the ledger already holds. Changing anything here changes every id and makes
 * the ledger take records it already has as new ones: the tests pin a few ids for that reason.
 */
import { createHash } from 'node:crypto';

/** The namespace of this gateway's ledger ids (a constant chosen once, never to change). */
const NAMESPACE = Buffer.from('e122789314364156b13cc9f674d7f1e7', 'hex');

/** RFC 9562 UUID version 5 of a name in the namespace. */
function uuidV5(name: string): string {
  const h = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * The id of a record anchored at a session: the records of `session.ended` and `billing.charge`.
 * Both are journaled once per session, in the transaction that closes it, and later events
 * (corrections, pooling) point at their records knowing the session id, not the hash of the
 * event that made them; the session id is a random UUID, so it never repeats across journals.
 */
export function sessionRecordId(gatewayId: string, sessionId: string, role: string): string {
  return uuidV5(JSON.stringify([gatewayId, 'session', sessionId, role]));
}

/** The id of a record anchored at one journal event (its id and hash): corrections, pooling. */
export function eventRecordId(gatewayId: string, eventId: number, hash: string, role: string): string {
  return uuidV5(JSON.stringify([gatewayId, 'event', eventId, hash, role]));
}

/** Agent and resource ids as the records name them. */
export const agent = {
  affiliate: (id: string) => `affiliate:${id}`,
  /** The custodian that holds this gateway's tools and runs them for the network. */
  custodian: (gatewayId: string) => `custodian:${gatewayId}`,
  /** The co-owners of a co-financed tool, as one agent (they hand the tool to the pool together). */
  coOwners: (toolId: string) => `co-owners:${toolId}`,
  maintenanceFund: (toolId: string) => `fund:${toolId}:maintenance`,
  infrastructureFund: 'fund:infrastructure',
  materialFund: 'fund:material',
  technicianFund: 'fund:technician',
} as const;

export const resource = {
  tool: (toolId: string) => `resource:${toolId}`,
} as const;

/**
 * The kinds of resource the events and claims conform to (Valueflows ResourceSpecifications):
 * what hREA requires of every event, and how a GraphQL ledger learns what was used, consumed,
 * worked or owed. The journal does not name a printer's material, so material is per tool.
 */
export const spec = {
  tool: (toolId: string) => `spec:tool:${toolId}`,
  material: (toolId: string) => `spec:material:${toolId}`,
  technicianWork: 'spec:work:technician',
  currency: (code: string) => `spec:currency:${code}`,
} as const;
