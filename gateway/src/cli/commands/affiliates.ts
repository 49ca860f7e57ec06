/** `ovn-gateway affiliates`: the local allow-list of affiliates, their badges and qualifications, in the journal database. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { AccessStore } from '../../access/store.js';
import { loadConfig } from '../../config/load.js';
import { useTypeIds } from '../../config/schema.js';
import { CliError, withData, withJournal, type DataOptions } from '../common.js';
import { list, out } from '../print.js';

const withStore = <T>(opts: DataOptions, fn: (store: AccessStore) => T): T => withJournal(opts, (journal) => fn(new AccessStore(journal)));

/** The configuration's tools, which qualifications must name; null with --data, where there is no configuration to ask. */
const toolsOf = (opts: DataOptions): ReadonlySet<string> | null => (opts.config ? new Set(loadConfig(opts.config).config.tools.map((t) => t.id)) : null);

/** Refuses an id the allow-list does not have. */
function existing(store: AccessStore, id: string): string {
  if (!store.get(id)) throw new CliError(`no affiliate "${id}" (affiliates list shows who there is)`);
  return id;
}

export function registerAffiliateCommands(program: Command): void {
  const affiliates = program.command('affiliates').description('the local allow-list: affiliates, badges, qualifications');
  withData(affiliates.command('list'))
    .description('list affiliates with their badges, qualifications and e-mail address')
    .action((opts: DataOptions) =>
      withStore(opts, (store) => {
        const quals = store.qualifications();
        const rows = store.list().map((a) => {
          const q = quals.filter((x) => x.affiliateId === a.id).map((x) => (x.expiresAt ? `${x.toolId} (until ${x.expiresAt.slice(0, 10)})` : x.toolId));
          return [a.id, a.name, a.status, a.badges.join(' '), q.join(', '), a.email ?? ''];
        });
        list(['id', 'name', 'status', 'badges', 'qualified', 'email'], rows, 'no affiliates (affiliates add or affiliates import adds them)');
      }),
    );
  withData(affiliates.command('import').argument('<csv>', 'header: id,name,status,badges,qualifications'))
    .description('import affiliates from a CSV file, all rows or none')
    .action((file: string, opts: DataOptions) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new CliError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      const tools = toolsOf(opts);
      withStore(opts, (store) => {
        const n = store.importCsv(text, file, tools);
        out(`${file}: ${n} affiliate${n === 1 ? '' : 's'} imported`);
      });
    });
  withData(affiliates.command('add').argument('<id>'))
    .description('add or update an affiliate')
    .requiredOption('--name <name>', 'display name')
    .option('--badge <uid...>', 'badge UIDs (hex)')
    .option('--suspended', 'add as suspended')
    .option('--use-type <type>', 'default use type of their sessions (one of the config\'s useTypes)')
    .action((id: string, opts: DataOptions & { name: string; badge?: string[]; suspended?: boolean; useType?: string }) => {
      if (opts.useType && opts.config) {
        const useTypes = useTypeIds(loadConfig(opts.config).config.useTypes);
        if (!useTypes.includes(opts.useType)) throw new CliError(`unknown use type "${opts.useType}" (useTypes in ${opts.config}: ${useTypes.join(', ')})`);
      }
      withStore(opts, (store) => {
        const a = store.put({ id, name: opts.name, status: opts.suspended ? 'suspended' : 'active', badges: opts.badge ?? [], useType: opts.useType });
        out(`${a.id}: saved (${a.status}, badges: ${a.badges.join(' ') || '-'}${a.useType ? `, use type ${a.useType}` : ''})`);
      });
    });
  withData(affiliates.command('qualify').argument('<id>').argument('<tool>'))
    .description('record that an affiliate is trained on a tool')
    .option('--expires <date>', 'YYYY-MM-DD (end of that day, UTC) or an ISO date-time')
    .action((id: string, tool: string, opts: DataOptions & { expires?: string }) => {
      const tools = toolsOf(opts);
      if (!tools) throw new CliError(`give --config <file> instead of --data: "${tool}" must be one of its tools`);
      if (!tools.has(tool)) throw new CliError(`no tool "${tool}" in ${opts.config} (tools: ${[...tools].join(', ') || 'none'})`);
      withStore(opts, (store) => {
        store.qualify(existing(store, id), tool, opts.expires ?? null);
        out(`${id}: qualified on ${tool}${opts.expires ? ` until ${opts.expires}` : ''}`);
      });
    });
  for (const status of ['suspend', 'activate'] as const) {
    withData(affiliates.command(status).argument('<id>'))
      .description(status === 'suspend' ? 'suspend an affiliate (their badges stop switching tools on)' : 'make a suspended affiliate active again')
      .action((id: string, opts: DataOptions) =>
        withStore(opts, (store) => {
          store.setStatus(existing(store, id), status === 'suspend' ? 'suspended' : 'active');
          out(`${id}: ${status === 'suspend' ? 'suspended' : 'active'}`);
        }),
      );
  }
}
