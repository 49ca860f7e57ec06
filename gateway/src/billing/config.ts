/**
 * Tariffs and agreements in the config file: currency, materials, the technician's rate,
 * and per tool its tariff for each use type and its co-owner agreement. Rates are decimal
 * strings, parsed exactly (never binary floats).
 */
import { z } from 'zod';
import { MAX_MINOR_UNIT } from '../../../ledger-client/src/money.js';
import { decimalString } from './money.js';

const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, dots, dashes and underscores');

const shares = z
  .strictObject({
    maintenance: z.number().int().min(0).max(100).describe("% of the usage fee to the tool's maintenance fund"),
    infrastructure: z.number().int().min(0).max(100).describe('% to the general infrastructure fund'),
    payback: z.number().int().min(0).max(100).describe('% to pay back the co-owners (until each has their contribution × multiplier)'),
  })
  .refine((s) => s.maintenance + s.infrastructure + s.payback === 100, { message: 'maintenance + infrastructure + payback must be 100' });

export const tariffSchema = z.strictObject({
  hourlyRate: decimalString.describe('Price of an hour of use, e.g. "8.00".'),
  billedTime: z.enum(['session', 'active']).default('session').describe('session: from badge-in to the end; active: only while the tool is busy.'),
  incrementMin: z.number().int().min(1).max(1440).default(15).describe('Billed time is rounded up to whole increments of this many minutes (1 s is one increment; 0 s is nothing).'),
  minimumCharge: decimalString.default('0').describe('Least usage fee of a session with any billed time.'),
  chargeMaterial: z.boolean().default(true).describe('Whether the material used is charged.'),
  cash: z.boolean().default(true).describe('false: no money is owed (e.g. project use); the session is still valued with this tariff and recorded.'),
  split: shares.default({ maintenance: 30, infrastructure: 20, payback: 50 }).describe('How the usage fee is split, in whole percentages summing to 100.'),
  confirmAbove: decimalString.optional().describe("A print job sent from a slicer quoted above this total (an amount, e.g. \"20.00\") waits for its owner's confirmation (POST /api/print-jobs/<id>/confirm) before their badge releases it; absent: never asked."),
});

const coOwnership = z.strictObject({
  multiplier: decimalString.default('1.2').describe('Each co-owner is paid back up to contribution × multiplier (1.2: their contribution plus 20 % for the risk).'),
  excessTo: z
    .enum(['funds', 'maintenance', 'infrastructure'])
    .default('funds')
    .describe('Where the payback share goes once a co-owner (or all: the tool is then in the pool of shareables) is repaid: funds = maintenance and infrastructure pro rata.'),
  selfPayback: z
    .enum(['allowed', 'redistribute'])
    .default('allowed')
    .describe("A co-owner's share of the payback from a session of their own: allowed = paid to them like anyone's; redistribute = shared among the other co-owners."),
  coOwners: z
    .array(z.strictObject({ affiliate: id.describe('The co-owner (an affiliate id).'), contribution: decimalString.describe('What they put in, e.g. "450.00".') }))
    .min(1)
    .describe('Who co-financed the tool and with how much; the payback part is shared among them pro rata to their contributions.'),
});

const toolBilling = z.strictObject({
  material: z.string().min(1).optional().describe("Material priced for this tool's filament; default: its printer's filament.material."),
  tariffs: z.record(id, tariffSchema).describe('Tariff per use type (one of useTypes); a use type without one is recorded with no charge and no value.'),
  coOwnership: coOwnership.optional().describe('The co-owner agreement, when the tool was co-financed.'),
});

const language = z.enum(['en', 'fr']);

const tax = z.strictObject({
  id: id.describe('Short id of the tax, e.g. gst.'),
  name: z.string().min(1).max(40).describe('Its name on an invoice, e.g. "GST" or "TPS".'),
  rate: decimalString.describe('Percentage of the pre-tax amount, e.g. "5" or "9.975".'),
  registration: z.string().max(40).optional().describe("The lab's registration number for this tax, printed on the invoice."),
  exemptUseTypes: z.array(id).default([]).describe('Use types this tax does not apply to (e.g. community).'),
});

const documents = z.strictObject({
  labName: z.string().min(1).max(120).describe("The lab's name at the top of statements and invoices."),
  address: z.array(z.string().max(120)).max(6).default([]).describe("The lab's postal address, one line each."),
  logo: z.string().min(1).optional().describe('A PNG or JPEG logo printed at the top left; relative to the config file.'),
  language: language.default('en').describe('Language of statements and invoices: en or fr.'),
  languages: z.record(id, language).default({}).describe('Language per affiliate (by id) where it differs from `language`, e.g. { ada: fr }.'),
  timeZone: z
    .string()
    .default('UTC')
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'an IANA time zone such as America/Toronto')
    .describe('Time zone of the dates and times printed on statements (months are still UTC months), e.g. America/Toronto.'),
  invoicePrefix: z.string().regex(/^[A-Z0-9-]{0,12}$/, 'capital letters, digits and dashes').default('').describe('Written before every invoice number (e.g. "FAB-" gives FAB-2026-0001).'),
});

export const billingSchema = z.strictObject({
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as CAD, EUR, USD').default('CAD').describe('ISO 4217 code of the currency every price is in.'),
  minorUnit: z.number().int().min(0).max(MAX_MINOR_UNIT).default(2).describe('Decimals of the currency: 2 for cents.'),
  technicianRate: decimalString.default('0').describe('Price of an hour of a technician helping at a tool.'),
  technicians: z.array(id).default([]).describe('Affiliates whose badge during someone else\'s session counts technician time (badge again to stop) instead of taking over.'),
  materials: z
    .record(z.string().min(1), z.strictObject({ pricePerGram: decimalString }))
    .default({})
    .describe('Price per gram by material name (as in a printer\'s filament.material), e.g. PLA: { pricePerGram: "0.025" }.'),
  tools: z.record(id, toolBilling).default({}).describe('Billing per tool (by tool id): its material, tariffs and co-owner agreement; sessions of a tool not listed are not charged.'),
  corrections: z
    .strictObject({
      maxTechnicianFactor: z.number().min(0).max(1000).default(2).describe("A correction's technician time is at most this many times the session's length (its duration rounded up to its tariff's increment, at least one increment; whole minutes without a tariff)."),
      maxFilamentG: z.number().min(0).max(1_000_000).default(10_000).describe("A correction's filament is at most this many grams."),
    })
    .default({ maxTechnicianFactor: 2, maxFilamentG: 10_000 })
    .describe('Bounds on corrections, so that a slip of the keyboard cannot charge a fortune; a larger correction is refused with the bound.'),
  documents: documents.optional().describe("The lab's name, address and logo on statements and invoices (PDF), and their language; without it they carry the gateway's name only."),
  taxes: z
    .array(tax)
    .default([])
    .refine((t) => new Set(t.map((x) => x.id)).size === t.length, 'tax ids must be unique')
    .describe('Sales taxes added to an invoice, each on the pre-tax amount of the use types it applies to, rounded half up once per invoice (e.g. GST 5 and QST 9.975 in Québec); empty: no tax.'),
});

export type BillingConfig = z.output<typeof billingSchema>;
export type DocumentsConfig = z.output<typeof documents>;
export type TaxConfig = z.output<typeof tax>;
export type TariffConfig = z.output<typeof tariffSchema>;
export type ToolBillingConfig = z.output<typeof toolBilling>;
