/** `ovn-gateway ledger`: delivery to the network's ledger: the outbox, dead letters, reconciliation. */
import { InvalidArgumentError, type Command } from 'commander';
import { resolve } from 'node:path';
import type { LedgerTransport } from '../../../../ledger-client/src/types.js';
import { loadConfig } from '../../config/load.js';
import { mappingContext, type LedgerConfig } from '../../ledger/config.js';
import { Outbox } from '../../ledger/outbox.js';
import { reconcile } from '../../ledger/reconcile.js';
import { createTransport } from '../../ledger/transport.js';
import { CliError, withJournal } from '../common.js';
import { list, out } from '../print.js';

/** Runs `fn` with the outbox of the config's journal and the configured ledger; closes the journal when it is done. */
async function withLedger<T>(opts: { config: string }, fn: (outbox: Outbox, transport: LedgerTransport, ledger: LedgerConfig) => T | Promise<T>): Promise<T> {
  const { config: cfg, baseDir } = loadConfig(opts.config);
  if (!cfg.ledger) throw new CliError(`${opts.config}: no ledger section (url, transport, gatewayId)`);
  const ledger = cfg.ledger;
  return withJournal({ data: resolve(baseDir, cfg.gateway.dataDir) }, (journal) => fn(new Outbox(journal, mappingContext(ledger, cfg.billing)), createTransport(ledger, journal), ledger));
}

export function registerLedgerCommands(program: Command): void {
  const ledgerCmd = program.command('ledger').description("delivery to the network's ledger: the outbox, dead letters, reconciliation");
  ledgerCmd
    .command('status')
    .description('records waiting, delivered and refused (works with the gateway running or not)')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action((opts: { config: string }) =>
      withLedger(opts, (outbox) => {
        const c = outbox.counts();
        out(`pending ${c.pending}${c.oldestPending ? ` (oldest from ${c.oldestPending})` : ''}, delivered ${c.delivered}${c.lastDeliveredAt ? ` (last at ${c.lastDeliveredAt})` : ''}, dead letters ${c.dead}`);
      }),
    );
  ledgerCmd
    .command('dead-letters')
    .description('records the ledger refused, with its message')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action((opts: { config: string }) =>
      withLedger(opts, (outbox) => {
        const rows = outbox.deadLetters().map((d) => [d.seq, d.toolId, `${d.record.type}${'action' in d.record ? ` ${d.record.action}` : ''}`, d.recordId, d.lastError]);
        list(['seq', 'tool', 'record', 'record id', 'error'], rows, 'no dead letters');
      }),
    );
  ledgerCmd
    .command('retry')
    .argument('[seq]', 'the dead letter number (from dead-letters)', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a dead letter number');
      return Number(v);
    })
    .option('--all', 'every dead letter, in order (records refused because a record they depend on was)')
    .description('put a dead letter back in its queue, once the cause is fixed; the running gateway sends it within 30 s')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action((seq: number | undefined, opts: { config: string; all?: boolean }) =>
      withLedger(opts, (outbox) => {
        if (opts.all) return out(`${outbox.retryAllDead()} dead letters back in their queues`);
        if (seq === undefined) throw new CliError('give a dead letter number, or --all');
        try {
          const r = outbox.retryDead(seq);
          out(`${seq}: back in the queue of ${r.toolId}`);
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      }),
    );
  ledgerCmd
    .command('reconcile')
    .description("compare what the gateway sent with what the ledger holds, per record type, action and unit; exit 1 when they differ")
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .requiredOption('--from <date>', 'records created from (YYYY-MM-DD or ISO date-time)')
    .requiredOption('--to <date>', 'records created before')
    .action(async (opts: { config: string; from: string; to: string }) => {
      const [from, to] = [opts.from, opts.to].map((d) => {
        const t = Date.parse(d);
        if (Number.isNaN(t)) throw new CliError(`not a date: "${d}" (YYYY-MM-DD or an ISO date-time)`);
        return new Date(t).toISOString();
      }) as [string, string];
      await withLedger(opts, async (outbox, transport, ledger) => {
        const r = await reconcile(outbox, transport, from, to).catch((err: Error) => {
          throw new CliError(`cannot ask the ledger at ${ledger.url}: ${err.message}`);
        });
        out(`${r.from} … ${r.to}: the gateway sent ${r.gateway.records} records, the ledger holds ${r.ledger.records}`);
        for (const d of r.differences) out(`  ${d.key}: gateway ${d.gateway}, ledger ${d.ledger}`);
        if (r.differences.length) process.exitCode = 1;
        else out('  no differences');
      });
    });
}
