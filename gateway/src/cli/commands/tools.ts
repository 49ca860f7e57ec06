/** `ovn-gateway tools`: the shared tools' status (available, blocked, in maintenance) and open sessions, from the journal. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { openSessionsOf, setToolStatus, toolStatusOf } from '../../sessions/projection.js';
import { CliError, withData, withJournal, type DataOptions } from '../common.js';
import { list, out } from '../print.js';

const TOOL_STATUS = { block: 'blocked', maintenance: 'maintenance', release: 'available' } as const;

export function registerToolCommands(program: Command): void {
  const tools = program.command('tools').description("shared tools: their status (available, blocked, in maintenance) and open sessions, from the journal");
  withData(tools.command('list'))
    .description('list the tools the journal knows with their status and open session')
    .action((opts: DataOptions) => {
      const ids = new Set<string>(opts.config ? loadConfig(opts.config).config.tools.map((t) => t.id) : []);
      withJournal(opts, (journal) => {
        for (const e of journal.events({ kinds: ['tool.status', 'session.started'], limit: Number.MAX_SAFE_INTEGER })) if (e.deviceId) ids.add(e.deviceId);
        const open = openSessionsOf(journal);
        const rows = [...ids].sort().map((id) => {
          const st = toolStatusOf(journal, id);
          const s = open.find((o) => o.toolId === id);
          const why = st.reason ? ` (${st.reason}${st.by ? `, by ${st.by}` : ''})` : '';
          return [id, `${st.status}${why}`, s ? `of ${s.affiliateId} since ${s.startedAt} (${s.useType})` : 'none'];
        });
        list(['tool', 'status', 'session'], rows, 'no tools (the configuration lists them; give --config)');
      });
    });
  for (const [command, status] of Object.entries(TOOL_STATUS)) {
    withData(tools.command(command).argument('<tool>'))
      .description(
        status === 'available' ? 'make a blocked tool or one in maintenance available again' : `${command === 'block' ? 'block a tool' : 'take a tool into maintenance'}: badges are refused; a running session goes on (stop it with sessions stop)`,
      )
      .option('--reason <text>', 'why, for the journal and the people badging')
      .option('--by <who>', 'who did it')
      .action((tool: string, opts: DataOptions & { reason?: string; by?: string }) => {
        if (opts.config && !loadConfig(opts.config).config.tools.some((t) => t.id === tool)) throw new CliError(`no tool "${tool}" in ${opts.config}`);
        withJournal(opts, (journal) => {
          const st = setToolStatus(journal, tool, status, opts.reason ?? null, opts.by ?? null);
          out(`${tool}: ${st.status}${st.reason ? ` (${st.reason})` : ''}`);
        });
      });
  }
}
