/** `ovn-gateway verify`, `repair`, `backup` and `restore`: the journal's hash chain and pages, and copies of the journal for the SD card that will fail one day. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { backupJournal, restoreJournal } from '../../journal/backup.js';
import { repairJournal } from '../../journal/repair.js';
import { checkJournal, describeCheck } from '../../journal/verify.js';
import { CliError, dataDir, withData, type DataOptions } from '../common.js';
import { out, complain } from '../print.js';

export function registerVerifyCommands(program: Command): void {
  withData(program.command('verify'))
    .description("walk the journal's hash chain, compare its end with the head file, and run SQLite's integrity_check; name what was altered, removed or damaged (read-only; safe while the gateway runs)")
    .option('--quick', "SQLite's quick_check instead: faster, without checking that the indexes match the tables")
    .action(async (opts: DataOptions & { quick?: boolean }) => {
      const file = join(dataDir(opts), 'journal.sqlite');
      if (!existsSync(file)) throw new CliError(`${file}: no journal there`);
      report(describeCheck(file, await checkJournal(file, { quick: opts.quick })));
    });
  withData(program.command('repair'))
    .description('rebuild damaged indexes of the journal from its tables, keeping the damaged file aside (the gateway must be stopped); refuses when the events themselves are damaged')
    .action(async (opts: DataOptions) => report(await repairJournal(dataDir(opts))));
}

/** Prints a verdict's lines, to stderr when it is bad, and exits 1 then. */
function report(r: { ok: boolean; lines: string[] }): void {
  for (const line of r.lines) (r.ok ? out : complain)(line);
  if (!r.ok) process.exit(1);
}

export function registerBackupCommands(program: Command): void {
  withData(program.command('backup').argument('<file>', 'the copy to write (a new file)'))
    .description("copy the journal consistently, while the gateway runs or not (SQLite's backup API), and check the copy's hash chain")
    .action(async (file: string, opts: DataOptions) => {
      const r = await backupJournal(join(dataDir(opts), 'journal.sqlite'), resolve(file));
      out(`${r.file}: ${r.events} events, schema version ${r.schemaVersion}, chain intact`);
    });
  withData(program.command('restore').argument('<file>', 'a copy made by backup'))
    .description('replace the journal with a copy after checking its hash chain; the gateway must be stopped; the replaced journal is kept aside')
    .action((file: string, opts: DataOptions) => {
      const r = restoreJournal(resolve(file), dataDir(opts));
      out(`${r.file}: ${r.events} events, schema version ${r.schemaVersion}, chain intact; restored`);
      if (r.replaced) out(`the journal it replaced is kept at ${r.replaced}`);
    });
}
