/** Where and how the gateway delivers its records to the network's ledger. */
import { z } from 'zod';
import { FLAVOUR_NAMES } from '../../../ledger-client/src/flavours.js';

export const ledgerSchema = z.strictObject({
  url: z
    .string()
    .regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'an http:// or https:// URL, e.g. https://ledger.example.org/api/graphql')
    .describe('The ledger: its GraphQL endpoint, or the base URL of the JSON batch API; https gives TLS.'),
  transport: z.enum(['graphql', 'json']).default('json').describe('graphql: Valueflows GraphQL (vf-graphql, hREA, Bonfire); json: the plain JSON batch API.'),
  flavour: z
    .enum(FLAVOUR_NAMES)
    .default('vf-graphql')
    .describe(
      'GraphQL server flavour, each pinned to the published schema its requests are checked against: vf-graphql (0.9), vf-graphql-0.8 (0.8.5), hrea (hREA), bonfire (vf-graphql 0.9). Money owed goes as Claims on vf-graphql 0.9 and Bonfire, as Commitments on hREA and 0.8, which have no Claim naming provider and receiver.',
    ),
  token: z.string().min(1).optional().describe('Bearer token for the ledger (keep the config file readable by the service only).'),
  gatewayId: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, dots, dashes and underscores')
    .describe("This gateway's id in the network: part of every record's stable id. Never change it once records were sent."),
  batchSize: z.number().int().min(1).max(1000).default(100).describe('Records sent in one request.'),
  timeoutMs: z.number().int().min(100).default(10_000).describe('A request without an answer after this many milliseconds is an unknown outcome, retried after asking the ledger which records it holds.'),
  backoff: z
    .strictObject({
      initialMs: z.number().int().min(10).default(1000).describe('First retry delay, in milliseconds.'),
      maxMs: z.number().int().min(100).default(300_000).describe('Cap of the retry delay, in milliseconds.'),
    })
    .default({ initialMs: 1000, maxMs: 300_000 })
    .describe('Retries wait this long, doubling with jitter up to the cap (or what Retry-After says).'),
  alarm: z
    .strictObject({
      backlog: z.number().int().min(1).default(10_000).describe('Health says degraded when more records than this wait.'),
      ageS: z.number().int().min(1).default(3600).describe('… or when the oldest has waited longer than this many seconds.'),
    })
    .default({ backlog: 10_000, ageS: 3600 })
    .describe('When health says degraded and a warning is logged; nothing is dropped to make room.'),
});

export type LedgerConfig = z.output<typeof ledgerSchema>;

/** What the mapping needs besides the events: this gateway's id and the lab's currency (CAD, cents, without billing). */
export function mappingContext(ledger: LedgerConfig, billing: { currency: string; minorUnit: number } | undefined) {
  return { gatewayId: ledger.gatewayId, currency: billing?.currency ?? 'CAD', minorUnit: billing?.minorUnit ?? 2 };
}
