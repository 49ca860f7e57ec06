/** `ovn-gateway config`: a configuration file checked, or the schema it follows. */
import type { Command } from 'commander';
import { checkNamedFiles } from '../../config/files.js';
import { loadConfig } from '../../config/load.js';
import { configJsonSchema } from '../../config/schema.js';
import { out } from '../print.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('check a configuration file or print its schema');
  config
    .command('check')
    .description('validate a configuration file and the files it names (scenarios, TLS certificate and key) and list every problem')
    .argument('<file>')
    .action((file: string) => {
      const loaded = loadConfig(file);
      checkNamedFiles(loaded);
      const { config: cfg, file: abs } = loaded;
      out(`${abs}: ok (${cfg.devices.length} device${cfg.devices.length === 1 ? '' : 's'}, ${cfg.simulators.length} simulator${cfg.simulators.length === 1 ? '' : 's'})`);
    });
  config
    .command('schema')
    .description('print the JSON Schema of the configuration file')
    .action(() => out(JSON.stringify(configJsonSchema(), null, 2)));
}
