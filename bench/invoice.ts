/**
 * Invoices: one affiliate's month as a PDF with many sessions (target < 100 ms), and closing a
 * month of 1,000 affiliates — numbering their invoices in the close's transaction, then writing
 * every PDF, as `ovn-gateway billing invoices` does (target < 60 s for both).
 *
 * The journal is filled through the real write path (Billing.charge per session, in
 * transactions), with the simulated lab's co-financed printer (11 co-owners, so a cash session
 * has up to 15 parts), GST and QST configured, a correction per affiliate in ten.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AccessStore } from '../gateway/src/access/store.js';
import { Billing } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { affiliatesWithMoney } from '../gateway/src/billing/invoice.js';
import { loadConfig } from '../gateway/src/config/load.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { median, rng, round, type BenchResult, type BenchSize } from './stats.js';

const SIZES = {
  full: { sessions: [50, 400], runs: 10, affiliates: 1_000, perAffiliate: 5 },
  tiny: { sessions: [5, 20], runs: 1, affiliates: 10, perAffiliate: 2 },
} satisfies Record<BenchSize, object>;
type Size = { sessions: readonly number[]; runs: number; affiliates: number; perAffiliate: number };
const PDF_TARGET_MS = 100;
const CLOSE_TARGET_S = 60;
const MONTH = '2026-10';

function billingFor(journal: Journal): Billing {
  const lab = loadConfig(fileURLToPath(new URL('../config/simulated-lab.yaml', import.meta.url))).config;
  const cfg = billingSchema.parse({
    ...lab.billing,
    documents: { labName: 'Atelier partagé', address: ['5000 rue Iberville', 'Montréal QC'], timeZone: 'America/Toronto' },
    taxes: [
      { id: 'gst', name: 'GST', rate: '5', exemptUseTypes: ['community'] },
      { id: 'qst', name: 'QST', rate: '9.975', exemptUseTypes: ['community'] },
    ],
  });
  return new Billing(cfg, journal, new Map([['printer', 'PLA']]), ['commercial', 'community', 'project']);
}

function fill(journal: Journal, billing: Billing, affiliates: number, perAffiliate: number, seed: number): void {
  const random = rng(seed);
  const access = new AccessStore(journal);
  const useTypes = ['commercial', 'commercial', 'commercial', 'community', 'project'];
  for (let a = 0; a < affiliates; a++) access.put({ id: `a${a}`, name: `Affiliate ${a}`, badges: [] });
  const ids: string[] = [];
  journal.durably(() => {
    for (let a = 0; a < affiliates; a++) {
      for (let k = 0; k < perAffiliate; k++) {
        const start = Date.UTC(2026, 9, 1) + random(29 * 86_400_000);
        const durationS = 300 + random(4 * 3600);
        const sessionId = `m${seed}-${a}-${k}`;
        ids.push(sessionId);
        billing.charge({ sessionId, toolId: 'printer', affiliateId: `a${a}`, useType: useTypes[random(useTypes.length)]!, startedAt: new Date(start).toISOString(), endedAt: new Date(start + durationS * 1000).toISOString(), durationS, activeS: Math.floor(durationS * 0.8), filamentG: random(200_000) / 1000 });
      }
    }
  });
  for (let i = 0; i < ids.length; i += perAffiliate * 10) billing.correct(ids[i]!, { kind: 'technician', technicianMin: 15 }, 'helped with the first layer', 'custodian');
}

export async function benchInvoice(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const s: Size = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-invoice-'));
  try {
    // One affiliate's month, a busy one and a very busy one.
    const single: BenchResult[] = [];
    for (const sessions of s.sessions) {
      const one = Journal.open(join(dir, `one-${sessions}`));
      try {
        const billing = billingFor(one);
        fill(one, billing, 1, sessions, 1);
        billing.closePeriod(MONTH, 'custodian', new Date('2026-11-01T08:00:00Z'));
        await billing.monthPdf('a0', MONTH); // warm-up: fonts and the JIT
        const times: number[] = [];
        let bytes = 0;
        for (let r = 0; r < s.runs; r++) {
          const t0 = process.hrtime.bigint();
          bytes = (await billing.monthPdf('a0', MONTH)).length;
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        const ms = median(times);
        single.push({ bench: `invoice-pdf-${sessions}`, path: `one affiliate's month as a PDF: ${sessions} sessions, corrections, GST and QST (${round(bytes / 1024)} KB)`, sessions, ms: round(ms, 1), target: `< ${PDF_TARGET_MS} ms`, pass: ms < PDF_TARGET_MS });
      } finally {
        one.close();
      }
    }

    // A month of many affiliates: the close (numbering), then every PDF.
    const many = Journal.open(join(dir, 'many'));
    try {
      const billing = billingFor(many);
      fill(many, billing, s.affiliates, s.perAffiliate, 2);
      const t0 = process.hrtime.bigint();
      const issued = billing.closePeriod(MONTH, 'custodian', new Date('2026-11-01T08:00:00Z'));
      const closeS = Number(process.hrtime.bigint() - t0) / 1e9;
      if (issued.length !== affiliatesWithMoney(many, MONTH).length) throw new Error(`${issued.length} invoices for ${affiliatesWithMoney(many, MONTH).length} affiliates with money`);
      const t1 = process.hrtime.bigint();
      for (const i of issued) await billing.monthPdf(i.affiliateId, MONTH);
      const pdfsS = Number(process.hrtime.bigint() - t1) / 1e9;
      return [
        ...single,
        { bench: 'invoice-close', path: `closing a month: numbering ${issued.length} affiliates' invoices (${s.perAffiliate} sessions each) in one transaction`, invoices: issued.length, seconds: round(closeS, 2) },
        {
          bench: 'invoice-close-pdfs',
          path: `the close and every one of the ${issued.length} PDFs (billing invoices --month)`,
          invoices: issued.length,
          seconds: round(closeS + pdfsS, 2),
          target: `< ${CLOSE_TARGET_S} s for 1,000`,
          ...(size === 'full' ? { pass: closeS + pdfsS < CLOSE_TARGET_S } : {}),
        },
      ];
    } finally {
      many.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
