/** `ovn-gateway`: the one command line of the project, assembled from one module per command group. */
import { Command } from 'commander';
import { z } from 'zod';
import { ImportError } from '../access/store.js';
import { BillingError } from '../billing/money.js';
import { ConfigError, formatIssues } from '../config/load.js';
import { TokenError } from '../http/tokens.js';
import { BackupError } from '../journal/backup.js';
import { CredentialsError } from '../mqtt/credentials.js';
import { VERSION } from '../version.js';
import { registerAffiliateCommands } from './commands/affiliates.js';
import { registerBillingCommands } from './commands/billing.js';
import { registerConfigCommands } from './commands/config.js';
import { registerDeviceCommands } from './commands/devices.js';
import { registerBackupCommands, registerVerifyCommands } from './commands/journal.js';
import { registerLedgerCommands } from './commands/ledger.js';
import { registerNotifyCommands } from './commands/notify.js';
import { registerPrintCommand } from './commands/print.js';
import { registerRunCommand } from './commands/run.js';
import { registerSessionCommands } from './commands/sessions.js';
import { registerSimCommands } from './commands/sim.js';
import { registerTokenCommands } from './commands/tokens.js';
import { registerToolCommands } from './commands/tools.js';
import { CliError } from './common.js';
import { complain } from './print.js';

/** Every command, in the order `--help` lists them; nothing is parsed or run. */
export function buildProgram(): Command {
  const program = new Command('ovn-gateway')
    .description('Lab equipment gateway: badges, relays, metering and cost split for shared tools')
    .version(VERSION)
    .showHelpAfterError();
  registerRunCommand(program);
  registerPrintCommand(program);
  registerAffiliateCommands(program);
  registerToolCommands(program);
  registerSessionCommands(program);
  registerBillingCommands(program);
  registerDeviceCommands(program);
  registerTokenCommands(program);
  registerLedgerCommands(program);
  registerNotifyCommands(program);
  registerVerifyCommands(program);
  registerConfigCommands(program);
  registerSimCommands(program);
  registerBackupCommands(program);
  return program;
}

/** Runs the command line (bin/ovn-gateway.js calls this); a refusal of the command as given exits 2, any other failure 1. */
export async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync();
  } catch (err) {
    // refusals of the command as given: the message alone, exit code 2
    if (err instanceof z.ZodError) {
      complain(formatIssues(err.issues).join('\n'));
      process.exit(2);
    }
    if (err instanceof ConfigError || err instanceof CliError || err instanceof BillingError || err instanceof ImportError || err instanceof TokenError || err instanceof BackupError || err instanceof CredentialsError) {
      complain(err.message);
      process.exit(2);
    }
    const e = err as NodeJS.ErrnoException;
    complain(`ovn-gateway: ${e.code === 'EADDRINUSE' ? `address already in use (${e.message}); pick another port with --http-port` : e.message}`);
    process.exit(1);
  }
}
