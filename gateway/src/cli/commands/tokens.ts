/** `ovn-gateway tokens create|list|revoke`: API tokens, in the journal database (works with the gateway running or not). */
import { InvalidArgumentError, type Command } from 'commander';
import { AccessStore } from '../../access/store.js';
import { createToken, listTokens, revokeToken, ROLES, type Role } from '../../http/tokens.js';
import { CliError, withData, withJournal } from '../common.js';
import { list, out } from '../print.js';

const role = (v: string): Role => {
  if (!(ROLES as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of ${ROLES.join(', ')}`);
  return v as Role;
};

export function registerTokenCommands(program: Command): void {
  const tokens = program.command('tokens').description('API tokens for the HTTP API and the dashboard (only a hash is kept)');
  withData(tokens.command('create'))
    .description('make a token and print it, once')
    .requiredOption('--role <role>', ROLES.join(' | '), role)
    .option('--affiliate <id>', 'the affiliate an affiliate token belongs to (it sees only their data)')
    .option('--name <label>', 'who or what holds it (shown in lists, and as "by" in the journal)')
    .action((opts: { role: Role; affiliate?: string; name?: string; config?: string; data?: string }) =>
      withJournal(opts, (journal) => {
        if (opts.affiliate && !new AccessStore(journal).get(opts.affiliate)) throw new CliError(`no affiliate "${opts.affiliate}" (affiliates list shows who there is)`);
        const made = createToken(journal, { role: opts.role, affiliateId: opts.affiliate, name: opts.name });
        out(`token ${made.id} (${opts.role}${opts.affiliate ? ` of ${opts.affiliate}` : ''}) made; shown only now:`);
        out(made.token);
        out('send it as "Authorization: Bearer <token>", or open the dashboard at http://<gateway>/#token=<token>');
      }),
    );
  withData(tokens.command('list'))
    .description('the tokens, without their secrets')
    .action((opts: { config?: string; data?: string }) =>
      withJournal(opts, (journal) => {
        const rows = listTokens(journal).map((t) => [t.id, t.role, t.affiliateId, t.name, t.createdAt, t.revokedAt ? `revoked ${t.revokedAt}` : 'active']);
        list(['id', 'role', 'affiliate', 'name', 'created', 'status'], rows, 'no tokens (tokens create makes one)');
      }),
    );
  withData(tokens.command('revoke').argument('<id>', 'the token id (see tokens list)'))
    .description('revoke a token: the next request with it is refused')
    .action((id: string, opts: { config?: string; data?: string }) =>
      withJournal(opts, (journal) => {
        revokeToken(journal, id);
        out(`token ${id} revoked`);
      }),
    );
}
