/** `ovn-gateway notify`: notifications to people: the backlog, dead letters, putting them back, a test message. */
import { InvalidArgumentError, type Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { createChannel, type Delivery } from '../../notify/channels.js';
import type { NotificationsConfig } from '../../notify/config.js';
import { NotificationStore } from '../../notify/outbox.js';
import { CliError, withJournal } from '../common.js';
import { complain, list, out } from '../print.js';

function notificationsOf(file: string): { cfg: NotificationsConfig; dataDir: string; name: string; baseDir: string } {
  const { config, baseDir } = loadConfig(file);
  if (!config.notifications) throw new CliError(`${file}: no notifications section (channels and recipients)`);
  return { cfg: config.notifications, dataDir: resolve(baseDir, config.gateway.dataDir), name: config.gateway.name, baseDir };
}

/** Runs `fn` with the notifications table of the config's journal; closes the journal when it is done. */
function withStore<T>(opts: { config: string }, fn: (store: NotificationStore) => T): T {
  const { cfg, dataDir } = notificationsOf(opts.config);
  return withJournal({ data: dataDir }, (journal) => fn(new NotificationStore(journal, cfg)));
}

export function registerNotifyCommands(program: Command): void {
  const notify = program.command('notify').description('notifications to people: the backlog, dead letters, a test message per channel');
  notify
    .command('status')
    .description('notifications waiting, delivered and dead (works with the gateway running or not)')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action((opts: { config: string }) =>
      withStore(opts, (store) => {
        const c = store.counts();
        out(`pending ${c.pending}${c.oldestPending ? ` (oldest from ${c.oldestPending})` : ''}${c.held ? `, held for quiet hours ${c.held}` : ''}, delivered ${c.delivered}, dead letters ${c.dead}`);
      }),
    );
  notify
    .command('dead-letters')
    .description('notifications given up on, with the reason')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action((opts: { config: string }) =>
      withStore(opts, (store) => {
        const dead = store.deadLetters();
        list(['seq', 'channel', 'kind', 'key', 'tries', 'reason'], dead.map((d) => [d.seq, `${d.channel}${d.address ? ` ${d.address}` : ''}`, d.kind, d.key, d.attempts, d.lastError]), 'no dead letters');
      }),
    );
  notify
    .command('retry')
    .argument('[seq]', 'the dead letter number (from dead-letters)', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a dead letter number');
      return Number(v);
    })
    .option('--all', 'every dead letter, in order')
    .description('put a dead letter back in its queue, once the cause is fixed; the running gateway sends it within 30 s')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action((seq: number | undefined, opts: { config: string; all?: boolean }) =>
      withStore(opts, (store) => {
        if (opts.all) return out(`${store.retryAllDead()} dead letters back in their queues`);
        if (seq === undefined) throw new CliError('give a dead letter number, or --all');
        try {
          const r = store.retryDead(seq);
          out(`${seq}: back in the queue of ${r.channel}${r.address ? ` ${r.address}` : ''}`);
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      }),
    );
  notify
    .command('test')
    .argument('<channel>', 'a channel named in notifications.channels')
    .option('--to <address>', 'for an email channel: the address (default: the first recipient given for it)')
    .description('send a test message on a channel now, not through the queue; exit 1 when it fails, with the reason')
    .requiredOption('-c, --config <file>', 'the gateway configuration')
    .action(async (name: string, opts: { config: string; to?: string }) => {
      const { cfg, name: gateway, baseDir } = notificationsOf(opts.config);
      const channelCfg = cfg.channels[name];
      if (!channelCfg) throw new CliError(`no channel "${name}" (channels: ${Object.keys(cfg.channels).join(', ') || 'none'})`);
      const address = channelCfg.kind === 'email' ? (opts.to ?? Object.values(cfg.recipients).flat().find((d) => d.channel === name && d.to)?.to) : '';
      if (address === undefined) throw new CliError(`channel "${name}" sends e-mail: give the address with --to`);
      const at = new Date().toISOString();
      const d: Delivery = { seq: 0, key: `test:${name}:${at}`, kind: 'test', severity: 'info', address, createdAt: at, message: { title: `Test from ${gateway}`, summary: `A test of the notification channel "${name}" (${channelCfg.kind}).`, facts: [['Sent at', at]] } };
      const channel = createChannel(channelCfg, gateway, baseDir);
      try {
        await channel.send(d);
        out(`sent a test message on ${name} (${channelCfg.kind}${address ? ` to ${address}` : ''})`);
      } catch (err) {
        complain(`${name}: ${(err as Error).message}`);
        process.exitCode = 1;
      } finally {
        channel.close();
      }
    });
}
