/** `ovn-gateway backup` and `restore`: copies of the journal, for the SD card that will fail one day. */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { backupJournal, restoreJournal } from '../journal/backup.js';
import { dataDir, withData, type DataOptions } from './common.js';

export function dataCommands(program: Command): void {
  withData(program.command('backup').argument('<file>', 'the copy to write (a new file)'))
    .description("copy the journal consistently, while the gateway runs or not (SQLite's backup API), and check the copy's hash chain")
    .action(async (file: string, opts: DataOptions) => {
      const r = await backupJournal(join(dataDir(opts), 'journal.sqlite'), resolve(file));
      console.log(`${r.file}: ${r.events} events, schema version ${r.schemaVersion}, chain intact`);
    });
  withData(program.command('restore').argument('<file>', 'a copy made by backup'))
    .description('replace the journal with a copy after checking its hash chain; the gateway must be stopped; the replaced journal is kept aside')
    .action((file: string, opts: DataOptions) => {
      const r = restoreJournal(resolve(file), dataDir(opts));
      console.log(`${r.file}: ${r.events} events, schema version ${r.schemaVersion}, chain intact; restored`);
      if (r.replaced) console.log(`the journal it replaced is kept at ${r.replaced}`);
    });
}
