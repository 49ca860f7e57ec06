/**
 * Every benchmark by the name `npm run bench -- <name>` knows it by, in the order a whole run
 * takes them. The suite's smoke test runs each one here at its tiny size.
 */
import { benchAffiliates } from './affiliates.js';
import { benchApi } from './api.js';
import { benchBadgeRelay } from './badge-relay.js';
import { benchSplit } from './billing.js';
import { benchCodec } from './codec.js';
import { benchDashboard } from './dashboard.js';
import { benchFairSplit } from './fairsplit.js';
import { benchInvoice } from './invoice.js';
import { benchJournal } from './journal.js';
import { benchLedger } from './ledger.js';
import { benchMeter } from './meter.js';
import { benchMetrics } from './metrics.js';
import { benchMoonraker } from './moonraker.js';
import { benchMqtt } from './mqtt.js';
import { benchNodeFirmware } from './node-firmware.js';
import { benchNotify } from './notify.js';
import { benchPrinter } from './printer.js';
import { benchRoundTrip } from './roundtrip.js';
import { benchSessionClose } from './session-close.js';
import { benchStatement } from './statement.js';
import type { Bench } from './stats.js';
import { benchUpload } from './upload.js';

export const BENCHES: Record<string, Bench> = {
  codec: benchCodec,
  meter: benchMeter,
  roundtrip: benchRoundTrip,
  'node-firmware': benchNodeFirmware,
  'badge-relay': benchBadgeRelay,
  'session-close': benchSessionClose,
  printer: benchPrinter,
  upload: benchUpload,
  moonraker: benchMoonraker,
  journal: benchJournal,
  mqtt: benchMqtt,
  billing: benchSplit,
  fairsplit: benchFairSplit,
  statement: benchStatement,
  invoice: benchInvoice,
  ledger: benchLedger,
  notify: benchNotify,
  api: benchApi,
  affiliates: benchAffiliates,
  dashboard: benchDashboard,
  metrics: benchMetrics,
};
