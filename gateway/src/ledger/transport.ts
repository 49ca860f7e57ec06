/** The transport the config asks for, with the ids a GraphQL ledger chose (records, agents, units, specifications) kept in the journal database. */
import { GraphqlTransport, type LedgerIdMap } from '../../../ledger-client/src/graphql.js';
import { JsonBatchTransport } from '../../../ledger-client/src/json-batch.js';
import type { LedgerTransport } from '../../../ledger-client/src/types.js';
import type { Journal } from '../journal/journal.js';
import type { LedgerConfig } from './config.js';

function ledgerIds(journal: Journal): LedgerIdMap {
  const get = journal.db.prepare('SELECT ledger_id FROM ledger_ids WHERE record_id = ?').pluck();
  const set = journal.db.prepare('INSERT OR REPLACE INTO ledger_ids (record_id, ledger_id) VALUES (?, ?)');
  return { get: (id) => get.get(id) as string | undefined, set: (id, ledgerId) => void set.run(id, ledgerId) };
}

export function createTransport(cfg: LedgerConfig, journal: Journal): LedgerTransport {
  const http = { url: cfg.url, token: cfg.token, timeoutMs: cfg.timeoutMs };
  return cfg.transport === 'graphql' ? new GraphqlTransport({ ...http, flavour: cfg.flavour, gatewayId: cfg.gatewayId, ids: ledgerIds(journal) }) : new JsonBatchTransport(http);
}
