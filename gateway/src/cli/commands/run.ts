/** `ovn-gateway run`: the gateway, and the config's simulators with it unless they run in a process of their own. */
import { InvalidArgumentError, type Command } from 'commander';
import { checkNamedFiles } from '../../config/files.js';
import { resolve } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { setJournalAside } from '../../journal/backup.js';
import { out } from '../print.js';
import { startGateway } from '../../gateway.js';
import { notifySystemd } from '../../systemd.js';
import { startSimulatedLab } from './sim.js';

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
};

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the gateway')
    .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
    .option('--http-port <port>', 'HTTP port, overriding gateway.http.port', port)
    .option('--fresh', 'start from an empty journal: the one in the data directory is moved aside (journal.replaced.<time>.sqlite), not deleted; for starting a demo over')
    .option('--no-simulators', "leave out the config's simulators: they run in a process of their own (ovn-gateway sim lab --config <file>)")
    .action(async (opts: { config: string; httpPort?: number; simulators: boolean; fresh?: boolean }) => {
      const loaded = loadConfig(opts.config);
      // what the config names is checked before the journal is opened
      checkNamedFiles(loaded, { simulators: opts.simulators });
      if (opts.fresh) {
        const aside = setJournalAside(resolve(loaded.baseDir, loaded.config.gateway.dataDir));
        if (aside) out(`the journal so far is kept at ${aside}; starting from an empty one`);
      }
      const start = { httpPort: opts.httpPort };
      // a config without simulators (a production one) never loads their code
      const gw = opts.simulators && loaded.config.simulators.length > 0 ? await startSimulatedLab(loaded, start) : await startGateway(loaded, start);
      // A write the storage refused (disk full, failing SD card) where nobody could catch it must not
      // stop the gateway: the relays keep following the sessions, health says what is wrong.
      process.on('uncaughtException', (err) => {
        if (gw.storage.absorb(err)) return;
        gw.log.fatal({ err }, 'uncaught exception');
        process.exit(1);
      });
      // Under systemd (Type=notify): ready once the journal is open and the devices are connecting.
      const notify = (state: string) => void notifySystemd(state).catch((err: Error) => gw.log.error(err.message));
      notify(`READY=1\nSTATUS=journal open, ${gw.devices.size} device(s) connecting, API on ${gw.url}`);
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        notify('STOPPING=1\nSTATUS=switching idle tools off and closing their sessions');
        gw.log.info({ signal }, 'stopping');
        gw.stop().then(
          () => process.exit(0),
          (err: Error) => {
            gw.log.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    });
}
