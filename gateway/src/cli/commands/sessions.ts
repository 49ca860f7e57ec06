/** `ovn-gateway sessions`: usage sessions at the tools, through the running gateway's API. */
import type { Command } from 'commander';
import { callApi, DEFAULT_URL } from '../common.js';
import { out } from '../print.js';

const showSession = (s: Record<string, unknown>) =>
  `${String(s.toolId)}\t${String(s.affiliateId)}\t${String(s.useType)}\t${String(s.startedAt)} → ${String(s.endedAt ?? 'running')}\t${Number(s.durationS).toFixed(0)} s, active ${String(s.activeS)} s, ${Number(s.energyWh).toFixed(1)} Wh, ${Number(s.filamentG).toFixed(2)} g` +
  (s.reason ? `\t${String(s.reason)}` : '');

const jsonBody = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export function registerSessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('usage sessions at the tools, through the running gateway');
  sessions
    .command('list')
    .description('running sessions, then ended ones (newest first)')
    .option('--tool <id>')
    .option('--affiliate <id>')
    .option('--from <date>', 'ended at or after (YYYY-MM-DD or ISO date-time)')
    .option('--to <date>', 'started before')
    .option('--limit <n>', 'ended sessions to show', '50')
    .option('--url <url>', 'the gateway', DEFAULT_URL)
    .action(async (opts: { tool?: string; affiliate?: string; from?: string; to?: string; limit: string; url: string }) => {
      const running = (await callApi(opts.url, '/api/tools')) as unknown as { session: Record<string, unknown> | null }[];
      for (const t of running) if (t.session && (!opts.tool || t.session.toolId === opts.tool) && (!opts.affiliate || t.session.affiliateId === opts.affiliate)) out(showSession(t.session));
      const q = new URLSearchParams(Object.entries({ tool: opts.tool, affiliate: opts.affiliate, from: opts.from, to: opts.to, limit: opts.limit }).filter((e): e is [string, string] => e[1] !== undefined));
      for (const s of (await callApi(opts.url, `/api/sessions?${q}`)) as unknown as Record<string, unknown>[]) out(showSession(s));
    });
  sessions
    .command('stop')
    .argument('<tool>')
    .description("end the tool's running session now and switch it off, even while it is busy (a maintainer's forced stop)")
    .option('--by <who>', 'who stops it', 'cli')
    .option('--url <url>', 'the gateway', DEFAULT_URL)
    .action(async (tool: string, opts: { by: string; url: string }) => {
      out(showSession(await callApi(opts.url, `/api/tools/${encodeURIComponent(tool)}/session/stop`, jsonBody('POST', { by: opts.by }))) + '\tforce-stop');
    });
  sessions
    .command('use-type')
    .argument('<tool>')
    .argument('<type>', 'one of the config\'s useTypes')
    .description("change the running session's use type (commercial, community, project…)")
    .option('--by <who>', 'who changes it')
    .option('--url <url>', 'the gateway', DEFAULT_URL)
    .action(async (tool: string, useType: string, opts: { by?: string; url: string }) => {
      out(showSession(await callApi(opts.url, `/api/tools/${encodeURIComponent(tool)}/session/use-type`, jsonBody('PUT', { useType, by: opts.by }))));
    });
}
