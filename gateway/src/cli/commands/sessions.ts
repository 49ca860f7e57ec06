/** `ovn-gateway sessions`: usage sessions at the tools, through the running gateway's API. */
import type { Command } from 'commander';
import { callApi, withApi, type ApiOptions } from '../common.js';
import { list } from '../print.js';

const SESSION_HEADER = ['tool', 'affiliate', 'use type', 'started → ended', 'usage', 'end'];
const sessionRow = (s: Record<string, unknown>) => [
  s.toolId,
  s.affiliateId,
  s.useType,
  `${String(s.startedAt)} → ${String(s.endedAt ?? 'running')}`,
  `${Number(s.durationS).toFixed(0)} s, active ${String(s.activeS)} s, ${Number(s.energyWh).toFixed(1)} Wh, ${Number(s.filamentG).toFixed(2)} g`,
  s.reason,
];

const jsonBody = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export function registerSessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('usage sessions at the tools, through the running gateway');
  withApi(sessions.command('list'))
    .description('running sessions, then ended ones (newest first)')
    .option('--tool <id>')
    .option('--affiliate <id>')
    .option('--from <date>', 'ended at or after (YYYY-MM-DD or ISO date-time)')
    .option('--to <date>', 'started before')
    .option('--limit <n>', 'ended sessions to show', '50')
    .action(async (opts: { tool?: string; affiliate?: string; from?: string; to?: string; limit: string } & ApiOptions) => {
      const tools = (await callApi(opts, '/api/tools')) as unknown as { session: Record<string, unknown> | null }[];
      const running = tools.flatMap((t) => (t.session && (!opts.tool || t.session.toolId === opts.tool) && (!opts.affiliate || t.session.affiliateId === opts.affiliate) ? [t.session] : []));
      const q = new URLSearchParams(Object.entries({ tool: opts.tool, affiliate: opts.affiliate, from: opts.from, to: opts.to, limit: opts.limit }).filter((e): e is [string, string] => e[1] !== undefined));
      const ended = (await callApi(opts, `/api/sessions?${q}`)) as unknown as Record<string, unknown>[];
      list(SESSION_HEADER, [...running, ...ended].map(sessionRow), 'no sessions');
    });
  withApi(sessions.command('stop'))
    .argument('<tool>')
    .description("end the tool's running session now and switch it off, even while it is busy (a maintainer's forced stop; journaled with the token's name)")
    .action(async (tool: string, opts: ApiOptions) => {
      list(SESSION_HEADER, [sessionRow(await callApi(opts, `/api/tools/${encodeURIComponent(tool)}/session/stop`, jsonBody('POST', {})))], '');
    });
  withApi(sessions.command('use-type'))
    .argument('<tool>')
    .argument('<type>', 'one of the config\'s useTypes')
    .description("change the running session's use type (commercial, community, project…; journaled with the token's name)")
    .action(async (tool: string, useType: string, opts: ApiOptions) => {
      list(SESSION_HEADER, [sessionRow(await callApi(opts, `/api/tools/${encodeURIComponent(tool)}/session/use-type`, jsonBody('PUT', { useType })))], '');
    });
}
