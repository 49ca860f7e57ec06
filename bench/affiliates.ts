/**
 * Listing the allow-list through the API: `GET /api/affiliates` with a custodian token, the
 * API listening on loopback, on an allow-list of 2,000 affiliates with two qualifications each
 * and one affiliate holding 20,000 badges (an allow-list grown before badges per affiliate were
 * bounded; the rows are written directly, as the API now refuses so many). Reports the listing's
 * median and slowest time, and how long `GET /api/health`, sent at the same moment, waited
 * behind it: the listing runs on the event loop every other request needs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AccessStore } from '../gateway/src/access/store.js';
import { buildApp } from '../gateway/src/http/app.js';
import { createToken } from '../gateway/src/http/tokens.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { median, round, type BenchResult, type BenchSize } from './stats.js';

const SIZES = {
  full: { affiliates: 2_000, badges: 20_000, runs: 10 },
  tiny: { affiliates: 50, badges: 500, runs: 2 },
} satisfies Record<BenchSize, object>;

const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export async function benchAffiliates(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { affiliates, badges, runs } = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-affiliates-'));
  try {
    const journal = Journal.open(dir);
    const access = new AccessStore(journal);
    for (let i = 0; i < affiliates; i++) {
      access.put({ id: `aff-${String(i).padStart(4, '0')}`, name: `Affiliate ${i}`, badges: [hex(0x10000000 + i)], qualifications: [{ tool: 'printer' }, { tool: 'laser', expires: '2030-01-01' }] });
    }
    const insert = journal.db.prepare('INSERT INTO badges (uid, affiliate_id) VALUES (?, ?)');
    journal.db.transaction(() => {
      for (let b = 0; b < badges; b++) insert.run(hex(0x20000000 + b), 'aff-0000');
    })();
    const ctx = { billing: null, ledger: null, bridge: null, broker: null, storage: null, name: 'bench', startedAt: new Date(), devices: new Map(), tools: new Map(), journal, access, metricsPublic: false, trustProxy: [], useTypes: [] };
    const app = buildApp(ctx, pino({ level: 'silent' }));
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const { token } = createToken(journal, { role: 'custodian', name: 'bench' });
    const headers = { authorization: `Bearer ${token}` };
    const timed = async (path: string) => {
      const t = performance.now();
      const res = await fetch(base + path, { headers });
      const body = (await res.json()) as unknown[];
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      return { ms: performance.now() - t, body };
    };
    const listMs: number[] = [];
    const healthMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const [list, health] = await Promise.all([timed('/api/affiliates'), timed('/api/health')]);
      if (list.body.length !== affiliates) throw new Error(`listed ${list.body.length} affiliates of ${affiliates}`);
      listMs.push(list.ms);
      healthMs.push(health.ms);
    }
    await app.close();
    journal.close();
    return [
      {
        bench: `api affiliates (${affiliates.toLocaleString('en')} affiliates, one with ${badges.toLocaleString('en')} badges)`,
        affiliates,
        badges,
        runs,
        ms: round(median(listMs), 1),
        maxMs: round(Math.max(...listMs), 1),
        healthBehindMs: round(median(healthMs), 1),
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) for (const r of await benchAffiliates()) console.log(JSON.stringify(r));
