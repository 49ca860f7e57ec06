/**
 * The statement endpoint under load: a journal of 100,000 charged sessions over a year
 * (the simulated lab's co-financed printer and four other tools, 500 affiliates), the API
 * listening on loopback with token checks as in production, and a SECOND process issuing
 * keep-alive requests at a fixed concurrency (4, then 16): one affiliate's month, as the dashboard asks
 * for it (`GET /api/billing/statement?from=YYYY-MM&affiliate=…` with a custodian token).
 * Reports requests per second and the latency percentiles the client saw (target p99 < 50 ms).
 *
 * The sessions go through the real write path (`session.started`, `session.ended` and
 * Billing.charge() in transactions of 1,000), as bench/statement.ts starts its journal.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { AccessStore } from '../gateway/src/access/store.js';
import { Billing, printerMaterials, type SessionRecord } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { loadConfig } from '../gateway/src/config/load.js';
import { buildApp } from '../gateway/src/http/app.js';
import { createToken } from '../gateway/src/http/tokens.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { percentile, rng, round, type BenchResult, type BenchSize } from './stats.js';

/**
 * `sessions` charged in transactions of `batch`; for each concurrency (requests in flight at
 * once: a few people at the dashboard, then a crowd), `warmupS` of requests, then `measureS` measured.
 */
const SIZES = {
  full: { sessions: 100_000, batch: 1_000, concurrencies: [4, 16], warmupS: 2, measureS: 10 },
  tiny: { sessions: 1_000, batch: 500, concurrencies: [2], warmupS: 0, measureS: 0.5 },
} satisfies Record<BenchSize, object>;
const AFFILIATES = 500;
const TARGET_P99_MS = 50;
const YEAR_START = Date.UTC(2025, 0, 1);
const YEAR_MS = Date.UTC(2026, 0, 1) - YEAR_START;
const MONTH = '2025-06';
const TOOLS = ['printer', 'printer-2', 'laser', 'cnc', 'embroidery'];

function billingConfig() {
  const lab = loadConfig(fileURLToPath(new URL('../config/simulated-lab.yaml', import.meta.url))).config;
  const tariffs = (rate: string) => ({ commercial: { hourlyRate: rate, incrementMin: 15, minimumCharge: '1.50' }, community: { hourlyRate: '1.50', billedTime: 'active', split: { maintenance: 60, infrastructure: 40, payback: 0 } } });
  const cfg = billingSchema.parse({
    ...lab.billing,
    tools: { ...lab.billing!.tools, 'printer-2': { material: 'PETG', tariffs: tariffs('5.00') }, laser: { tariffs: tariffs('12.00') }, cnc: { tariffs: tariffs('15.00') }, embroidery: { tariffs: tariffs('4.00') } },
  });
  return { cfg, materials: printerMaterials(lab) };
}

/** Fills the journal with `sessions` through the real write path; returns the affiliates. */
function fill(journal: Journal, sessions: number, batchSize: number): string[] {
  const { cfg, materials } = billingConfig();
  const billing = new Billing(cfg, journal, materials);
  const affiliates = Array.from({ length: AFFILIATES }, (_, i) => `aff-${String(i).padStart(4, '0')}`);
  const rnd = rng(0xa91);
  const close = journal.db.transaction((batch: SessionRecord[]) => {
    for (const s of batch) {
      journal.record('session.started', s.toolId, { sessionId: s.sessionId, toolId: s.toolId, affiliateId: s.affiliateId, useType: s.useType, startedAt: s.startedAt });
      journal.record('session.ended', s.toolId, { ...s, reason: 'badge-out' });
      billing.charge(s);
    }
  });
  for (let i = 0; i < sessions; i += batchSize) {
    const batch: SessionRecord[] = [];
    for (let j = i; j < i + batchSize; j++) {
      const endedMs = YEAR_START + Math.floor((j / sessions) * YEAR_MS);
      const durationS = 300 + rnd(6000);
      const toolId = TOOLS[rnd(TOOLS.length)]!;
      const u = rnd(1000) / 1000;
      batch.push({
        sessionId: `s-${j}`,
        toolId,
        affiliateId: affiliates[Math.floor(AFFILIATES * u * u)]!, // a few heavy users, a long tail
        useType: rnd(4) === 0 ? 'community' : 'commercial',
        startedAt: new Date(endedMs - durationS * 1000).toISOString(),
        endedAt: new Date(endedMs).toISOString(),
        durationS,
        activeS: Math.floor(durationS * 0.8),
        filamentG: toolId.startsWith('printer') ? rnd(200_000) / 1000 : 0,
      });
    }
    close(batch);
  }
  return affiliates;
}

/** The load generator, run in its own process: CONCURRENCY workers, each one request at a time on a kept-alive connection. */
const CLIENT = `
const [base, token, affiliates, concurrency, warmupS, measureS, month] = JSON.parse(process.argv[1]);
const latencies = [];
let errors = 0;
let measuring = false;
const end = Date.now() + (warmupS + measureS) * 1000;
setTimeout(() => { measuring = true; }, warmupS * 1000);
let n = 0;
async function worker() {
  while (Date.now() < end) {
    const who = affiliates[n++ % affiliates.length];
    const t = performance.now();
    const res = await fetch(base + '/api/billing/statement?from=' + month + '&affiliate=' + who, { headers: { authorization: 'Bearer ' + token } });
    await res.arrayBuffer();
    const ms = performance.now() - t;
    if (res.status !== 200) errors++;
    if (measuring) latencies.push(ms);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
process.stdout.write(JSON.stringify({ latencies, errors, seconds: measureS }));
`;

function runClient(args: unknown[]): Promise<{ latencies: number[]; errors: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { latencies: number[]; errors: number; seconds: number }) : reject(new Error(`the load process exited with ${code}`))));
  });
}

export async function benchApi(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { sessions, batch, concurrencies, warmupS, measureS } = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-api-'));
  try {
    const t0 = performance.now();
    const journal = Journal.open(dir);
    const affiliates = fill(journal, sessions, batch);
    const fillS = (performance.now() - t0) / 1000;
    const { cfg, materials } = billingConfig();
    const ctx = {
      billing: new Billing(cfg, journal, materials),
      ledger: null,
      bridge: null,
      broker: null,
      storage: null,
      name: 'bench',
      startedAt: new Date(),
      devices: new Map(),
      tools: new Map(),
      journal,
      access: new AccessStore(journal),
      metricsPublic: false,
      trustProxy: [],
      useTypes: [],
    };
    const app = buildApp(ctx, pino({ level: 'silent' }));
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const { token } = createToken(journal, { role: 'custodian', name: 'bench' });
    // the affiliates with sessions that month, in a fixed shuffled order
    const active = journal.db.prepare('SELECT DISTINCT affiliate_id FROM charges WHERE period = ? ORDER BY affiliate_id').pluck().all(MONTH) as string[];
    const order = active.map((a, i) => [a, (i * 7919) % active.length] as const).sort((x, y) => x[1] - y[1]).map(([a]) => a);
    const results: BenchResult[] = [];
    for (const concurrency of concurrencies) {
      const r = await runClient([base, token, order.length ? order : affiliates, concurrency, warmupS, measureS, MONTH]);
      const sorted = r.latencies.sort((a, b) => a - b);
      const at = (p: number) => round(percentile(sorted, p), 2);
      const p99 = at(99);
      results.push({
        bench: `api statement (affiliate month, ${concurrency} in flight from a second process)`,
        sessions,
        journalFillS: round(fillS),
        concurrency,
        requests: sorted.length,
        errors: r.errors,
        requestsPerSec: Math.round(sorted.length / r.seconds),
        p50Ms: at(50),
        p99Ms: p99,
        maxMs: round(sorted.at(-1)!, 2),
        p50Us: Math.round(at(50) * 1000),
        p99Us: Math.round(p99 * 1000),
        target: `p99 < ${TARGET_P99_MS} ms`,
        pass: p99 < TARGET_P99_MS && r.errors === 0,
      });
    }
    await app.close();
    journal.close();
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) for (const r of await benchApi()) console.log(JSON.stringify(r));
