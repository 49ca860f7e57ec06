/** `ovn-gateway verify`, `backup` and `restore`: the journal's hash chain, and copies of the journal for the SD card that will fail one day. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { backupJournal, restoreJournal } from '../../journal/backup.js';
import { verifyJournalFile } from '../../journal/journal.js';
import { CliError, dataDir, withData, type DataOptions } from '../common.js';

export function registerVerifyCommand(program: Command): void {
  withData(program.command('verify'))
    .description("walk the journal's hash chain and name the first event that was altered or removed (read-only; safe while the gateway runs)")
    .action((opts: DataOptions) => {
      const file = join(dataDir(opts), 'journal.sqlite');
      if (!existsSync(file)) throw new CliError(`${file}: no journal there`);
      const r = verifyJournalFile(file);
      if (r.firstBreak) {
        console.error(`${file}: chain broken at event ${r.firstBreak.id} (${r.firstBreak.problem}): ${r.firstBreak.detail}; ${r.events - 1} events before it are intact`);
        process.exit(1);
      }
      console.log(`${file}: ${r.events} events, chain intact (last hash ${r.lastHash.slice(0, 16)}…)`);
    });
}

export function registerBackupCommands(program: Command): void {
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
