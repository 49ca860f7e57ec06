/** `ovn-gateway`: the one command line of the project. */
import { Command, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { AccessStore, ImportError } from '../access/store.js';
import { ConfigError, formatIssues, loadConfig } from '../config/load.js';
import { Journal, verifyJournalFile } from '../journal/journal.js';
import { CredentialsError, MqttCredentials } from '../mqtt/credentials.js';
import { configJsonSchema } from '../config/schema.js';
import { openSessionsOf, setToolStatus, toolStatusOf } from '../sessions/projection.js';
import { Billing, printerMaterials, verifyCharges, type CorrectionChange } from '../billing/billing.js';
import { FLAVOUR_NAMES, type Flavour } from '../../../ledger-client/src/flavours.js';
import { formatMinor } from '../../../ledger-client/src/money.js';
import { BillingError } from '../billing/money.js';
import { statementCsv, statementTable } from '../billing/render.js';
import { statement } from '../billing/statement.js';
import { Outbox } from '../ledger/outbox.js';
import { reconcile } from '../ledger/reconcile.js';
import { createTransport } from '../ledger/transport.js';
import { mappingContext, type LedgerConfig } from '../ledger/config.js';
import type { LedgerTransport } from '../../../ledger-client/src/types.js';
import { startGateway } from '../gateway.js';
import { TokenError } from '../http/tokens.js';
import { BackupError } from '../journal/backup.js';
import { CliError, dataDir, withData, withJournal } from './common.js';
import { registerTokenCommands } from './tokens.js';
import { notifySystemd } from '../systemd.js';
import { dataCommands } from './data.js';
import { VERSION } from '../version.js';
import { loadScenario, playScenario, type SimControl } from '../../../simulators/src/control.js';
import { nodeControl } from '../../../simulators/src/metering-node/control.js';
import { MeteringNodeSim } from '../../../simulators/src/metering-node/node-sim.js';
import { printerControl } from '../../../simulators/src/printer/control.js';
import { PrinterSim } from '../../../simulators/src/printer/printer-sim.js';
import { rfidControl } from '../../../simulators/src/rfid/control.js';
import { RigSim } from '../../../simulators/src/rig/rig-sim.js';
import { rigControl } from '../../../simulators/src/rig/control.js';
import { Rdm6300Sim } from '../../../simulators/src/rfid/rdm6300-sim.js';
import { ledgerControl } from '../../../simulators/src/ledger/control.js';
import { LedgerSim } from '../../../simulators/src/ledger/ledger-sim.js';
import { hasSocat, servePty, serveTcp, type SimTransport, type SimulatedDevice } from '../../../simulators/src/transports.js';

const program = new Command('ovn-gateway')
  .description('Lab equipment gateway: badges, relays, metering and cost split for shared tools')
  .version(VERSION)
  .showHelpAfterError();

const DEFAULT_URL = 'http://127.0.0.1:8080';

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
};
const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};

program
  .command('run')
  .description('run the gateway')
  .requiredOption('-c, --config <file>', 'configuration file (YAML or JSON)')
  .option('--http-port <port>', 'HTTP port, overriding gateway.http.port', port)
  .action(async (opts: { config: string; httpPort?: number }) => {
    const gw = await startGateway(loadConfig(opts.config), { httpPort: opts.httpPort });
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

program
  .command('print')
  .description('print a G-code file on a printer through the running gateway (print-host mode), or pause, resume or cancel its job')
  .argument('<device>', 'printer id, as in the config')
  .argument('[file]', 'G-code file to print')
  .option('--url <url>', 'the gateway', DEFAULT_URL)
  .option('--pause', 'pause the current job')
  .option('--resume', 'resume the paused job')
  .option('--cancel', 'cancel the current job (the cancel script runs)')
  .option('--follow', 'show progress and filament until the job ends')
  .action(async (id: string, file: string | undefined, opts: { url: string; pause?: boolean; resume?: boolean; cancel?: boolean; follow?: boolean }) => {
    const action = opts.pause ? 'pause' : opts.resume ? 'resume' : opts.cancel ? 'cancel' : null;
    if (!action && !file) throw new CliError('give a G-code file to print, or one of --pause, --resume, --cancel');
    const api = (path: string, init?: RequestInit) => callApi(opts.url, path, init);
    const dev = encodeURIComponent(id);
    let job: Record<string, unknown>;
    if (action) job = await api(`/api/devices/${dev}/jobs/current/${action}`, { method: 'POST' });
    else {
      const gcode = await readFile(file!, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new CliError(`${file}: cannot read it (${err.code ?? err.message})`);
      });
      job = await api(`/api/devices/${dev}/jobs?name=${encodeURIComponent(basename(file!))}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: gcode });
    }
    const show = (j: Record<string, unknown>) => `${String(j.file)}: ${String(j.state)}, ${Math.round(Number(j.progress) * 100)} %, ${Number(j.filamentG).toFixed(2)} g (${Number(j.filamentMm).toFixed(0)} mm)`;
    console.log(show(job));
    while (opts.follow) {
      await new Promise((r) => setTimeout(r, 2000));
      const d = (await api(`/api/devices/${dev}`)).detail as { job: Record<string, unknown> | null; lastJob: Record<string, unknown> | null };
      const current = d.job ?? d.lastJob;
      if (!current || current.id !== job.id) break;
      console.log(show(current));
      if (!d.job) break;
    }
  });

/** A request to the running gateway's API; its error message becomes the command's. */
async function callApi(url: string, path: string, init?: RequestInit): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    // the API wants a token: OVN_GATEWAY_TOKEN (ovn-gateway tokens create)
    const token = process.env.OVN_GATEWAY_TOKEN;
    res = await fetch(`${url}${path}`, token ? { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } } : init);
  } catch {
    throw new CliError(`cannot reach the gateway at ${url}: is it running? (--url to point elsewhere)`);
  }
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new CliError(`${res.status}: ${String(body.message ?? res.statusText)}`);
  return body;
}

const jsonBody = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const withStore = <T>(opts: { config?: string; data?: string }, fn: (store: AccessStore) => T): T => withJournal(opts, (journal) => fn(new AccessStore(journal)));

const affiliates = program.command('affiliates').description('the local allow-list: affiliates, badges, qualifications');
withData(affiliates.command('list'))
  .description('list affiliates with their badges and qualifications')
  .action((opts: { config?: string; data?: string }) =>
    withStore(opts, (store) => {
      const quals = store.qualifications();
      for (const a of store.list()) {
        const q = quals.filter((x) => x.affiliateId === a.id).map((x) => (x.expiresAt ? `${x.toolId} (until ${x.expiresAt.slice(0, 10)})` : x.toolId));
        console.log(`${a.id}\t${a.name}\t${a.status}\tbadges: ${a.badges.join(' ') || '-'}\tqualified: ${q.join(', ') || '-'}`);
      }
    }),
  );
withData(affiliates.command('import').argument('<csv>', 'header: id,name,status,badges,qualifications'))
  .description('import affiliates from a CSV file, all rows or none')
  .action((file: string, opts: { config?: string; data?: string }) => {
    const text = readFileSync(file, 'utf8');
    withStore(opts, (store) => console.log(`${file}: ${store.importCsv(text, file)} affiliates imported`));
  });
withData(affiliates.command('add').argument('<id>'))
  .description('add or update an affiliate')
  .requiredOption('--name <name>', 'display name')
  .option('--badge <uid...>', 'badge UIDs (hex)')
  .option('--suspended', 'add as suspended')
  .option('--use-type <type>', 'default use type of their sessions (one of the config\'s useTypes)')
  .action((id: string, opts: { name: string; badge?: string[]; suspended?: boolean; useType?: string; config?: string; data?: string }) => {
    if (opts.useType && opts.config) {
      const { useTypes } = loadConfig(opts.config).config;
      if (!useTypes.includes(opts.useType)) throw new CliError(`unknown use type "${opts.useType}" (useTypes in ${opts.config}: ${useTypes.join(', ')})`);
    }
    withStore(opts, (store) => {
      const a = store.put({ id, name: opts.name, status: opts.suspended ? 'suspended' : 'active', badges: opts.badge ?? [], useType: opts.useType });
      console.log(`${a.id}: saved (${a.status}, badges: ${a.badges.join(' ') || '-'}${a.useType ? `, use type ${a.useType}` : ''})`);
    });
  });
withData(affiliates.command('qualify').argument('<id>').argument('<tool>'))
  .description('record that an affiliate is trained on a tool')
  .option('--expires <date>', 'YYYY-MM-DD (end of that day, UTC) or an ISO date-time')
  .action((id: string, tool: string, opts: { expires?: string; config?: string; data?: string }) =>
    withStore(opts, (store) => {
      store.qualify(id, tool, opts.expires ?? null);
      console.log(`${id}: qualified on ${tool}${opts.expires ? ` until ${opts.expires}` : ''}`);
    }),
  );
for (const status of ['suspend', 'activate'] as const) {
  withData(affiliates.command(status).argument('<id>'))
    .description(status === 'suspend' ? 'suspend an affiliate (their badges stop switching tools on)' : 'make a suspended affiliate active again')
    .action((id: string, opts: { config?: string; data?: string }) =>
      withStore(opts, (store) => {
        store.setStatus(id, status === 'suspend' ? 'suspended' : 'active');
        console.log(`${id}: ${status === 'suspend' ? 'suspended' : 'active'}`);
      }),
    );
}

const tools = program.command('tools').description("shared tools: their status (available, blocked, in maintenance) and open sessions, from the journal");
withData(tools.command('list'))
  .description('list the tools the journal knows with their status and open session')
  .action((opts: { config?: string; data?: string }) => {
    const ids = new Set<string>(opts.config ? loadConfig(opts.config).config.tools.map((t) => t.id) : []);
    withJournal(opts, (journal) => {
      for (const e of journal.events({ kinds: ['tool.status', 'session.started'], limit: Number.MAX_SAFE_INTEGER })) if (e.deviceId) ids.add(e.deviceId);
      const open = openSessionsOf(journal);
      for (const id of [...ids].sort()) {
        const st = toolStatusOf(journal, id);
        const s = open.find((o) => o.toolId === id);
        const why = st.reason ? ` (${st.reason}${st.by ? `, by ${st.by}` : ''})` : '';
        console.log(`${id}\t${st.status}${why}\t${s ? `session of ${s.affiliateId} since ${s.startedAt} (${s.useType})` : 'no session'}`);
      }
    });
  });
const TOOL_STATUS = { block: 'blocked', maintenance: 'maintenance', release: 'available' } as const;
for (const [command, status] of Object.entries(TOOL_STATUS)) {
  withData(tools.command(command).argument('<tool>'))
    .description(
      status === 'available' ? 'make a blocked tool or one in maintenance available again' : `${command === 'block' ? 'block a tool' : 'take a tool into maintenance'}: badges are refused; a running session goes on (stop it with sessions stop)`,
    )
    .option('--reason <text>', 'why, for the journal and the people badging')
    .option('--by <who>', 'who did it')
    .action((tool: string, opts: { reason?: string; by?: string; config?: string; data?: string }) => {
      if (opts.config && !loadConfig(opts.config).config.tools.some((t) => t.id === tool)) throw new CliError(`no tool "${tool}" in ${opts.config}`);
      withJournal(opts, (journal) => {
        const st = setToolStatus(journal, tool, status, opts.reason ?? null, opts.by ?? null);
        console.log(`${tool}: ${st.status}${st.reason ? ` (${st.reason})` : ''}`);
      });
    });
}

const sessions = program.command('sessions').description('usage sessions at the tools, through the running gateway');
const showSession = (s: Record<string, unknown>) =>
  `${String(s.toolId)}\t${String(s.affiliateId)}\t${String(s.useType)}\t${String(s.startedAt)} → ${String(s.endedAt ?? 'running')}\t${Number(s.durationS).toFixed(0)} s, active ${String(s.activeS)} s, ${Number(s.energyWh).toFixed(1)} Wh, ${Number(s.filamentG).toFixed(2)} g` +
  (s.reason ? `\t${String(s.reason)}` : '');
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
    for (const t of running) if (t.session && (!opts.tool || t.session.toolId === opts.tool) && (!opts.affiliate || t.session.affiliateId === opts.affiliate)) console.log(showSession(t.session));
    const q = new URLSearchParams(Object.entries({ tool: opts.tool, affiliate: opts.affiliate, from: opts.from, to: opts.to, limit: opts.limit }).filter((e): e is [string, string] => e[1] !== undefined));
    for (const s of (await callApi(opts.url, `/api/sessions?${q}`)) as unknown as Record<string, unknown>[]) console.log(showSession(s));
  });
sessions
  .command('stop')
  .argument('<tool>')
  .description("end the tool's running session now and switch it off, even while it is busy (a maintainer's forced stop)")
  .option('--by <who>', 'who stops it', 'cli')
  .option('--url <url>', 'the gateway', DEFAULT_URL)
  .action(async (tool: string, opts: { by: string; url: string }) => {
    console.log(showSession(await callApi(opts.url, `/api/tools/${encodeURIComponent(tool)}/session/stop`, jsonBody('POST', { by: opts.by }))) + '\tforce-stop');
  });
sessions
  .command('use-type')
  .argument('<tool>')
  .argument('<type>', 'one of the config\'s useTypes')
  .description("change the running session's use type (commercial, community, project…)")
  .option('--by <who>', 'who changes it')
  .option('--url <url>', 'the gateway', DEFAULT_URL)
  .action(async (tool: string, useType: string, opts: { by?: string; url: string }) => {
    console.log(showSession(await callApi(opts.url, `/api/tools/${encodeURIComponent(tool)}/session/use-type`, jsonBody('PUT', { useType, by: opts.by }))));
  });

const billingCmd = program.command('billing').description('charges, statements, corrections and accounting periods (needs the config: tariffs and agreements live there)');
/** Runs `fn` with the billing of the config's journal. */
function withBilling<T>(opts: { config: string }, fn: (billing: Billing, journal: Journal) => T): T {
  const { config: cfg, baseDir } = loadConfig(opts.config);
  if (!cfg.billing) throw new CliError(`${opts.config}: no billing section (tariffs, materials, co-owners)`);
  const billing = cfg.billing;
  return withJournal({ data: resolve(baseDir, cfg.gateway.dataDir) }, (journal) => {
    try {
      return fn(new Billing(billing, journal, printerMaterials(cfg), cfg.useTypes), journal);
    } catch (err) {
      if (err instanceof BillingError) throw new CliError(err.message);
      throw err;
    }
  });
}
const month = (v: string) => {
  if (!/^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$/.test(v)) throw new InvalidArgumentError('expected a month YYYY-MM (or a date, whose month counts)');
  return v.slice(0, 7);
};
billingCmd
  .command('statement')
  .description('sessions with their line items, fund totals and co-owner payback for months --from … --to (inclusive)')
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .requiredOption('--from <YYYY-MM>', 'first month', month)
  .option('--to <YYYY-MM>', 'last month (default: --from)', month)
  .option('--affiliate <id>')
  .option('--tool <id>')
  .option('--format <format>', 'table, csv or json', 'table')
  .action((opts: { config: string; from: string; to?: string; affiliate?: string; tool?: string; format: string }) =>
    withBilling(opts, (billing, journal) => {
      const st = statement(journal, { from: opts.from, to: opts.to ?? opts.from, affiliate: opts.affiliate, tool: opts.tool });
      const { currency, minorUnit } = billing.cfg;
      if (opts.format === 'csv') process.stdout.write(statementCsv(st, minorUnit));
      else if (opts.format === 'json') console.log(JSON.stringify({ currency, minorUnit, ...st, payback: billing.payback() }, null, 2));
      else if (opts.format === 'table') process.stdout.write(statementTable(st, billing.payback(), currency, minorUnit));
      else throw new CliError(`--format: table, csv or json, not "${opts.format}"`);
    }),
  );
billingCmd
  .command('correct')
  .argument('<session>', 'the session id (from the statement)')
  .description("correct a session's charge: a new event referencing it; statements show the original, the correction and the net")
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .requiredOption('--reason <text>', 'why (required)')
  .requiredOption('--by <who>', 'the custodian correcting it')
  .option('--void', 'cancel the charge')
  .option('--use-type <type>', 'charge it as another use type')
  .option('--material-g <grams>', 'the material really used, g (0: the affiliate brought their own)', Number)
  .option('--technician-min <minutes>', 'technician time, minutes', Number)
  .action((sessionId: string, opts: { config: string; reason: string; by: string; void?: boolean; useType?: string; materialG?: number; technicianMin?: number }) => {
    const changes: CorrectionChange[] = [
      ...(opts.void ? [{ kind: 'void' } as const] : []),
      ...(opts.useType ? [{ kind: 'use-type', useType: opts.useType } as const] : []),
      ...(opts.materialG !== undefined ? [{ kind: 'material', filamentG: opts.materialG } as const] : []),
      ...(opts.technicianMin !== undefined ? [{ kind: 'technician', technicianMin: opts.technicianMin } as const] : []),
    ];
    if (changes.length !== 1) throw new CliError('give exactly one of --void, --use-type, --material-g, --technician-min');
    if ('filamentG' in changes[0]! && !(changes[0].filamentG >= 0)) throw new CliError('--material-g: a number of grams ≥ 0');
    if ('technicianMin' in changes[0]! && !(Number.isInteger(changes[0].technicianMin) && changes[0].technicianMin >= 0)) throw new CliError('--technician-min: whole minutes ≥ 0');
    withBilling(opts, (billing) => {
      const c = billing.correct(sessionId, changes[0]!, opts.reason, opts.by);
      const total = c.delta.reduce((a, p) => a + p.amount, 0);
      console.log(`correction ${c.eventId} of charge ${c.corrects} in ${c.period}: ${total >= 0 ? '+' : ''}${formatMinor(total, billing.cfg.minorUnit)} ${billing.cfg.currency}`);
    });
  });
billingCmd
  .command('close')
  .argument('<period>', 'the month, YYYY-MM')
  .description('close a month: later corrections to its sessions land in the next open month')
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .requiredOption('--by <who>', 'the custodian closing it')
  .action((period: string, opts: { config: string; by: string }) =>
    withBilling(opts, (billing) => {
      billing.closePeriod(period, opts.by);
      console.log(`${period} closed`);
    }),
  );
billingCmd
  .command('verify')
  .description('recompute every charge and correction from the inputs the journal kept, and compare')
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .action((opts: { config: string }) =>
    withBilling(opts, (_billing, journal) => {
      const r = verifyCharges(journal);
      if (r.mismatches.length) {
        for (const m of r.mismatches) console.error(`event ${m.eventId} (${m.kind}, session ${m.sessionId}): ${m.problem}`);
        process.exit(1);
      }
      console.log(`${r.checked} charges and corrections recomputed: all match`);
    }),
  );

const devicesCmd = program.command('devices').description("devices' own credentials at the embedded MQTT broker (works with the gateway running or not)");
withData(devicesCmd.command('add-mqtt').argument('<id>', 'the device id: its MQTT user name and client id'))
  .description('make MQTT credentials for a device and print its secret, once')
  .option('--rotate', 'replace existing credentials (the old secret stops working; a connected device is disconnected)')
  .action(async (id: string, opts: { rotate?: boolean; config?: string; data?: string }) => {
    const mqtt = opts.config ? loadConfig(opts.config).config.mqtt : undefined;
    const made = await withJournal(opts, (journal) => new MqttCredentials(journal).add(id, { rotate: opts.rotate }));
    console.log(`${id}: MQTT credentials ${made.rotated ? 'replaced (the old secret no longer works)' : 'made'}`);
    console.log(`  user name and client id: ${id}`);
    console.log(`  password:                ${made.secret}`);
    console.log("  shown only now: put it in the device's configuration (the gateway keeps only a hash)");
    if (mqtt) {
      const tls = mqtt.tls ? `, TLS on port ${mqtt.tls.port}` : '';
      console.log(`  broker: ${mqtt.listen}${tls}; topics under ${mqtt.baseTopic}/devices/${id}/ (telemetry, status, badge, reply; commands on command)`);
    }
  });
withData(devicesCmd.command('remove-mqtt').argument('<id>'))
  .description("remove a device's MQTT credentials (a connected device is disconnected within seconds)")
  .action((id: string, opts: { config?: string; data?: string }) =>
    withJournal(opts, (journal) => {
      if (!new MqttCredentials(journal).remove(id)) throw new CliError(`${id} has no MQTT credentials`);
      console.log(`${id}: MQTT credentials removed`);
    }),
  );
withData(devicesCmd.command('list-mqtt'))
  .description('list the devices that have MQTT credentials')
  .action((opts: { config?: string; data?: string }) =>
    withJournal(opts, (journal) => {
      for (const c of new MqttCredentials(journal).list()) console.log(`${c.deviceId}\t${c.createdAt}`);
    }),
  );

registerTokenCommands(program);

const ledgerCmd = program.command('ledger').description("delivery to the network's ledger: the outbox, dead letters, reconciliation");
/** Runs `fn` with the outbox of the config's journal and the configured ledger; closes the journal when it is done. */
async function withLedger<T>(opts: { config: string }, fn: (outbox: Outbox, transport: LedgerTransport, ledger: LedgerConfig) => T | Promise<T>): Promise<T> {
  const { config: cfg, baseDir } = loadConfig(opts.config);
  if (!cfg.ledger) throw new CliError(`${opts.config}: no ledger section (url, transport, gatewayId)`);
  const ledger = cfg.ledger;
  return withJournal({ data: resolve(baseDir, cfg.gateway.dataDir) }, (journal) => fn(new Outbox(journal, mappingContext(ledger, cfg.billing)), createTransport(ledger, journal), ledger));
}
ledgerCmd
  .command('status')
  .description('records waiting, delivered and refused (works with the gateway running or not)')
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .action((opts: { config: string }) =>
    withLedger(opts, (outbox) => {
      const c = outbox.counts();
      console.log(`pending ${c.pending}${c.oldestPending ? ` (oldest from ${c.oldestPending})` : ''}, delivered ${c.delivered}${c.lastDeliveredAt ? ` (last at ${c.lastDeliveredAt})` : ''}, dead letters ${c.dead}`);
    }),
  );
ledgerCmd
  .command('dead-letters')
  .description('records the ledger refused, with its message')
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .action((opts: { config: string }) =>
    withLedger(opts, (outbox) => {
      const dead = outbox.deadLetters();
      if (dead.length === 0) console.log('no dead letters');
      for (const d of dead) console.log(`${d.seq}\t${d.toolId}\t${d.record.type}${'action' in d.record ? ` ${d.record.action}` : ''}\t${d.recordId}\t${d.lastError ?? ''}`);
    }),
  );
ledgerCmd
  .command('retry')
  .argument('[seq]', 'the dead letter number (from dead-letters)', (v) => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a dead letter number');
    return Number(v);
  })
  .option('--all', 'every dead letter, in order (records refused because a record they depend on was)')
  .description('put a dead letter back in its queue, once the cause is fixed; the running gateway sends it within 30 s')
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .action((seq: number | undefined, opts: { config: string; all?: boolean }) =>
    withLedger(opts, (outbox) => {
      if (opts.all) return console.log(`${outbox.retryAllDead()} dead letters back in their queues`);
      if (seq === undefined) throw new CliError('give a dead letter number, or --all');
      try {
        const r = outbox.retryDead(seq);
        console.log(`${seq}: back in the queue of ${r.toolId}`);
      } catch (err) {
        throw new CliError((err as Error).message);
      }
    }),
  );
ledgerCmd
  .command('reconcile')
  .description("compare what the gateway sent with what the ledger holds, per record type, action and unit; exit 1 when they differ")
  .requiredOption('-c, --config <file>', 'the gateway configuration')
  .requiredOption('--from <date>', 'records created from (YYYY-MM-DD or ISO date-time)')
  .requiredOption('--to <date>', 'records created before')
  .action(async (opts: { config: string; from: string; to: string }) => {
    const [from, to] = [opts.from, opts.to].map((d) => {
      const t = Date.parse(d);
      if (Number.isNaN(t)) throw new CliError(`not a date: "${d}" (YYYY-MM-DD or an ISO date-time)`);
      return new Date(t).toISOString();
    }) as [string, string];
    await withLedger(opts, async (outbox, transport, ledger) => {
      const r = await reconcile(outbox, transport, from, to).catch((err: Error) => {
        throw new CliError(`cannot ask the ledger at ${ledger.url}: ${err.message}`);
      });
      console.log(`${r.from} … ${r.to}: the gateway sent ${r.gateway.records} records, the ledger holds ${r.ledger.records}`);
      for (const d of r.differences) console.log(`  ${d.key}: gateway ${d.gateway}, ledger ${d.ledger}`);
      if (r.differences.length) process.exitCode = 1;
      else console.log('  no differences');
    });
  });

withData(program.command('verify'))
  .description("walk the journal's hash chain and name the first event that was altered or removed (read-only; safe while the gateway runs)")
  .action((opts: { config?: string; data?: string }) => {
    const file = join(dataDir(opts), 'journal.sqlite');
    if (!existsSync(file)) throw new CliError(`${file}: no journal there`);
    const r = verifyJournalFile(file);
    if (r.firstBreak) {
      console.error(`${file}: chain broken at event ${r.firstBreak.id} (${r.firstBreak.problem}): ${r.firstBreak.detail}; ${r.events - 1} events before it are intact`);
      process.exit(1);
    }
    console.log(`${file}: ${r.events} events, chain intact (last hash ${r.lastHash.slice(0, 16)}…)`);
  });

const config = program.command('config').description('check a configuration file or print its schema');
config
  .command('check')
  .description('validate a configuration file and list every problem')
  .argument('<file>')
  .action((file: string) => {
    const { config: cfg, file: abs } = loadConfig(file);
    console.log(`${abs}: ok (${cfg.devices.length} device${cfg.devices.length === 1 ? '' : 's'}, ${cfg.simulators.length} simulator${cfg.simulators.length === 1 ? '' : 's'})`);
  });
config
  .command('schema')
  .description('print the JSON Schema of the configuration file')
  .action(() => console.log(JSON.stringify(configJsonSchema(), null, 2)));

const sim = program.command('sim').description('run a simulated device on a TCP port or a pseudo-terminal; reads commands on stdin (type help)');

interface SimCliOptions {
  tcp?: string;
  pty?: string;
  timeScale: number;
  scenario?: string;
}

function simOptions(cmd: Command): Command {
  return cmd
    .option('--tcp <host:port>', 'listen on TCP (point a device at socket://host:port)')
    .option('--pty <path>', 'create a pseudo-terminal linked at <path> (needs socat)')
    .option('--time-scale <x>', 'simulated seconds per real second', positive, 1)
    .option('--scenario <file>', 'play a scenario file (YAML/JSON list of { after, do })');
}

/** Puts a simulator on its wire, plays its scenario and takes commands from stdin until a signal. */
async function runSimulator(opts: SimCliOptions, name: string, device: SimulatedDevice, control: (t: SimTransport) => SimControl): Promise<void> {
  if (!!opts.tcp === !!opts.pty) throw new CliError('give exactly one of --tcp <host:port> or --pty <path>');
  if (opts.pty && !hasSocat()) throw new CliError('--pty needs socat (apt-get install socat); use --tcp otherwise');
  const steps = opts.scenario ? loadScenario(opts.scenario) : [];
  let transport: SimTransport;
  if (opts.tcp) {
    const m = /^(.+):(\d+)$/.exec(opts.tcp);
    if (!m) throw new CliError(`--tcp: expected host:port, got "${opts.tcp}"`);
    transport = await serveTcp(device, m[1]!, Number(m[2]));
  } else {
    transport = await servePty(device, opts.pty!);
  }
  const ctl = control(transport);
  console.error(`${name} at ${transport.address}; type "help" for commands`);
  void playScenario(ctl, steps, (out) => console.log(out)).catch((err: Error) => console.error(err.message));
  commandsFromStdin(ctl, () => transport.close());
}

/** A simulator's commands typed on standard input; Ctrl-C or SIGTERM closes it and exits. */
function commandsFromStdin(ctl: SimControl, close: () => Promise<void>): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'help') return void console.error(ctl.help);
    ctl.run(line).then(
      (out) => out && console.log(out),
      (err: Error) => console.error(err.message),
    );
  });
  const quit = () => void close().then(() => process.exit(0));
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
}

simOptions(sim.command('node'))
  .description('a metering node speaking firmware-protocol (badge reader, relay, energy meter, busy input)')
  .option('--node-id <id>', 'node id sent in HELLO', 'sim-node')
  .option('--power <watts>', 'power drawn while busy', positive, 120)
  .action(async (opts: SimCliOptions & { nodeId: string; power: number }) => {
    const node = new MeteringNodeSim({ nodeId: opts.nodeId, powerW: opts.power, timeScale: opts.timeScale });
    await runSimulator(opts, `simulated node ${opts.nodeId}`, node, (t) => nodeControl(node, t));
  });

simOptions(sim.command('printer'))
  .description('a Marlin 2.x or Prusa MK3 printer with an SD card holding demo.gcode')
  .option('--dialect <name>', 'marlin or prusa', 'marlin')
  .action(async (opts: SimCliOptions & { dialect: string }) => {
    if (opts.dialect !== 'marlin' && opts.dialect !== 'prusa') throw new CliError('--dialect: marlin or prusa');
    const printer = new PrinterSim({ dialect: opts.dialect, timeScale: opts.timeScale });
    await runSimulator(opts, `simulated ${opts.dialect} printer`, printer, (t) => printerControl(printer, t));
  });

simOptions(sim.command('rfid'))
  .description('an RDM6300 125 kHz RFID reader (EM4100 cards) that repeats a card while it is held (--time-scale has no effect)')
  .action(async (opts: SimCliOptions) => {
    const reader = new Rdm6300Sim();
    await runSimulator(opts, 'simulated RDM6300 reader', reader, (t) => rfidControl(reader, t));
  });

sim
  .command('rig')
  .description('a networked instrument on MQTT (the Mosquito sensor rig, or a metered smart plug) connecting to a broker as a device; reads commands on stdin')
  .requiredOption('--url <url>', 'the broker, e.g. mqtt://127.0.0.1:1883')
  .requiredOption('--device <id>', 'its device id (client id and user name)')
  .requiredOption('--base-topic <topic>', "the lab's base topic (mqtt.baseTopic)")
  .option('--password <secret>', 'its secret (ovn-gateway devices add-mqtt <id>); default: $OVN_RIG_SECRET')
  .option('--model <model>', 'mosquito-rig or smart-plug', 'mosquito-rig')
  .option('--power <watts>', 'power drawn while the tool works', positive, 300)
  .option('--idle <watts>', 'power drawn while on and idle', positive, 4)
  .option('--interval <ms>', 'telemetry interval', positive, 2000)
  .option('--time-scale <x>', 'simulated seconds per real second', positive, 1)
  .option('--flaky', 'start in flaky mode (lost messages, dropped connections, bursts)')
  .option('--scenario <file>', 'play a scenario file (YAML/JSON list of { after, do })')
  .action(async (opts: { url: string; device: string; baseTopic: string; password?: string; model: string; power: number; idle: number; interval: number; timeScale: number; flaky?: boolean; scenario?: string }) => {
    if (opts.model !== 'mosquito-rig' && opts.model !== 'smart-plug') throw new CliError('--model: mosquito-rig or smart-plug');
    const password = opts.password ?? process.env.OVN_RIG_SECRET;
    if (!password) throw new CliError(`--password or OVN_RIG_SECRET: the device's secret (ovn-gateway devices add-mqtt ${opts.device} prints it)`);
    const rig = new RigSim({ url: opts.url, deviceId: opts.device, password, baseTopic: opts.baseTopic, model: opts.model, powerW: opts.power, idleW: opts.idle, telemetryIntervalMs: opts.interval, timeScale: opts.timeScale });
    rig.setFlaky(opts.flaky ?? false);
    rig.start();
    const ctl = rigControl(rig);
    console.error(`simulated ${opts.model} ${opts.device} publishing to ${opts.url} under ${opts.baseTopic}/devices/${opts.device}/; type "help" for commands`);
    const steps = opts.scenario ? loadScenario(opts.scenario) : [];
    void playScenario(ctl, steps, (out) => console.log(out)).catch((err: Error) => console.error(err.message));
    commandsFromStdin(ctl, () => rig.stop());
  });

sim
  .command('ledger')
  .description('a Valueflows ledger for the ledger client (JSON batch API and GraphQL, its own SQLite database, fault injection); reads commands on stdin')
  .option('--listen <host:port>', 'where to listen (GraphQL at /graphql)', '127.0.0.1:7400')
  .option('--db <file>', 'SQLite database file', ':memory:')
  .option('--token <token>', 'require this bearer token')
  .option('--flavour <flavour>', `whose published GraphQL schema and rules it speaks: ${FLAVOUR_NAMES.join(', ')}`, (v: string): Flavour => {
    if (!(FLAVOUR_NAMES as readonly string[]).includes(v)) throw new InvalidArgumentError(`one of ${FLAVOUR_NAMES.join(', ')}`);
    return v as Flavour;
  }, 'vf-graphql' as Flavour)
  .action(async (opts: { listen: string; db: string; token?: string; flavour: Flavour }) => {
    const m = /^(.+):(\d+)$/.exec(opts.listen);
    if (!m) throw new CliError(`--listen: expected host:port, got "${opts.listen}"`);
    const ledger = await LedgerSim.start({ host: m[1]!, port: Number(m[2]), db: opts.db, token: opts.token, flavour: opts.flavour });
    const ctl = ledgerControl(ledger);
    console.error(`simulated ledger at ${ledger.url} (GraphQL at ${ledger.url}/graphql, ${ledger.flavour}); type "help" for commands`);
    commandsFromStdin(ctl, () => ledger.close());
  });

dataCommands(program);


try {
  await program.parseAsync();
} catch (err) {
  // refusals of the command as given: the message alone, exit code 2
  if (err instanceof z.ZodError) {
    console.error(formatIssues(err.issues).join('\n'));
    process.exit(2);
  }
  if (err instanceof ConfigError || err instanceof CliError || err instanceof ImportError || err instanceof TokenError || err instanceof BackupError || err instanceof CredentialsError) {
    console.error(err.message);
    process.exit(2);
  }
  const e = err as NodeJS.ErrnoException;
  console.error(`ovn-gateway: ${e.code === 'EADDRINUSE' ? `address already in use (${e.message}); pick another port with --http-port` : e.message}`);
  process.exit(1);
}
