/**
 * Billing scenarios end to end, through the real node link and the journal:
 * - co-owners paid back to the cent of their caps, then the tool in the pool of shareables (by a
 *   session's charge, or by a custodian's correction);
 * - the simulated lab (`npm start`): Ada's commercial print, checked to the cent against figures
 *   computed here by hand, in integer cents, from what the session measured;
 * - corrections, closed months and verification through the `ovn-gateway billing` commands.
 *
 * The expected figures are written out here with BigInt arithmetic from the tariffs; they are
 * never obtained by calling the billing code.
 */
import { spawn } from 'node:child_process';
import { parse as parseCsv } from 'csv-parse/sync';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyCharges } from '../gateway/src/billing/billing.js';
import type { Printer } from '../gateway/src/devices/printer/driver.js';
import { createToken } from '../gateway/src/http/tokens.js';
import { formatMinor } from '../ledger-client/src/money.js';
import { loadConfig } from '../gateway/src/config/load.js';
import type { RunningGateway } from '../gateway/src/gateway.js';
import { Journal, type JournalEvent } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { startLab } from '../simulators/src/lab.js';
import type { CaughtMail, MailCatcher } from '../simulators/src/mail/mail-catcher.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { PrinterSim } from '../simulators/src/printer/printer-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { adminFetch, demoLabOnFreePorts, freePort, SIM_CLOCK_RATE, startTestGateway, tempDir, waitFor, type TestGateway } from './helpers.js';

const ADA = '04A1B2C3';

// ---- arithmetic by hand: integer cents, BigInt only ----

/** A recorded measurement (durationS to 0.1 s, filamentG to the milligram) as a whole number of 10^-decimals units, read from its decimal text. */
function exact(x: number, decimals: number): bigint {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(String(x));
  if (!m || (m[2] ?? '').length > decimals) throw new Error(`${x} is not a decimal with at most ${decimals} decimals`);
  return BigInt(m[1]! + (m[2] ?? '').padEnd(decimals, '0'));
}
/** n / d rounded to the nearest integer, halves up (n, d ≥ 0). */
const roundHalfUp = (n: bigint, d: bigint) => (2n * n + d) / (2n * d);
const ceilDiv = (n: bigint, d: bigint) => (n + d - 1n) / d;
/** `total` split in proportion to `weights`: shares rounded down, the units left one each to the largest remainders, equal remainders to the earlier weight. */
function largestRemainder(total: bigint, weights: readonly bigint[]): bigint[] {
  const sum = weights.reduce((a, w) => a + w, 0n);
  const shares = weights.map((w) => (total * w) / sum);
  const rems = weights.map((w, i) => total * w - shares[i]! * sum);
  let left = total - shares.reduce((a, s) => a + s, 0n);
  const order = weights.map((_, i) => i).sort((a, b) => (rems[a]! === rems[b]! ? a - b : rems[a]! > rems[b]! ? -1 : 1));
  for (const i of order) {
    if (left === 0n) break;
    shares[i]!++;
    left--;
  }
  return shares;
}
/** Cents as the CSV writes them: 1234n → "12.34", -150n → "-1.50". */
const money = (c: bigint) => `${c < 0n ? '-' : ''}${(c < 0n ? -c : c) / 100n}.${String((c < 0n ? -c : c) % 100n).padStart(2, '0')}`;

// ---- helpers ----

interface Part {
  account: string;
  affiliateId?: string;
  amount: number;
}
interface Price {
  billedMin: number;
  usage: number;
  material: number;
  technician: number;
  total: number;
  cash: boolean;
}
const priceOf = (e: JournalEvent) => e.data.price as Price;
const partsOf = (e: JournalEvent) => e.data.parts as Part[];
const coOwnerPaid = (e: JournalEvent, who: string) => partsOf(e).find((p) => p.account === 'co-owner' && p.affiliateId === who)?.amount ?? 0;

/** Every charge conserves money: its parts sum exactly to the price, which is usage + material + technician. */
function expectConserved(charges: readonly JournalEvent[]): void {
  for (const c of charges) {
    const price = priceOf(c);
    expect(price.usage + price.material + price.technician, `charge ${c.id}`).toBe(price.total);
    expect(partsOf(c).reduce((a, p) => a + p.amount, 0), `charge ${c.id}`).toBe(price.total);
    expect(partsOf(c).every((p) => Number.isSafeInteger(p.amount) && p.amount >= 0), `charge ${c.id}`).toBe(true);
  }
}

const quietLogger = () =>
  createLogger(
    { level: 'warn', format: 'json' },
    new Writable({
      write(_chunk, _enc, done) {
        done();
      },
    }),
  );

async function getJson<T>(gw: Pick<TestGateway, 'fetch'>, url: string): Promise<T> {
  const res = await gw.fetch(url);
  expect(res.status, url).toBe(200);
  return (await res.json()) as T;
}

/** Ada's n-th session at the node's tool: badge in, let it run at least 0.1 s (the resolution durations are recorded at: a 0.0 s session bills nothing), badge out, until its charge is journaled. */
async function badgeSession(gw: TestGateway, sim: MeteringNodeSim, n: number): Promise<void> {
  await waitFor(() => !sim.truth().relay.sensed, 10_000, 'relay off before badging in');
  sim.badge(ADA);
  await waitFor(() => gw.journal.events({ kind: 'session.started', limit: 10_000 }).length === n, 10_000, `session ${n} started`);
  await waitFor(async () => {
    const tool = await getJson<{ session: { durationS: number } | null }>(gw, `${gw.url}/api/tools/printer`);
    return (tool.session?.durationS ?? 0) >= 0.1;
  });
  sim.badge(ADA);
  await waitFor(() => gw.journal.events({ kind: 'billing.charge', limit: 10_000 }).length === n, 10_000, `session ${n} charged`);
}

/** The tariffs of scenario 1: every session here is a few hundred ms, so commercial is 15 min at 6.00/h = 1.50, raised to the minimum 2.50, split 20/20/60: maintenance 0.50, infrastructure 0.50, payback 1.50. Caps: ann 1.00 × 1.2 = 1.20, ben 3.00 × 1.2 = 3.60. */
const smallPrinter = {
  tariffs: {
    commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.50', split: { maintenance: 20, infrastructure: 20, payback: 60 } },
    community: { hourlyRate: '2.00', billedTime: 'active', incrementMin: 15, split: { maintenance: 60, infrastructure: 40, payback: 0 } },
  },
  coOwnership: { multiplier: '1.2', coOwners: [{ affiliate: 'ann', contribution: '1.00' }, { affiliate: 'ben', contribution: '3.00' }] },
};

// ---- 1 ----

describe('co-owner payback to the cap, then the pool of shareables', () => {
  let sim: MeteringNodeSim;
  let transport: SimTransport;
  let gw: TestGateway;
  const charges = () => gw.journal.events({ kind: 'billing.charge', limit: 10_000 });
  const pooledEvents = () => gw.journal.events({ kind: 'tool.pooled', limit: 10_000 });

  beforeAll(async () => {
    sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200 });
    transport = await serveTcp(sim, '127.0.0.1', 0);
    gw = await startTestGateway({
      devices: [{ id: 'n1', kind: 'metering-node', serial: { path: transport.address } }],
      tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      billing: { currency: 'CAD', tools: { printer: smallPrinter } },
      affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }] }],
    });
    await waitFor(async () => (await gw.health()).devices[0]!.state === 'online');
  });

  afterAll(async () => {
    await gw?.stop();
    await transport?.close();
  });

  const session = (n: number) => badgeSession(gw, sim, n);

  it('pays each co-owner exactly their cap, pools the tool with the charge that repays them, then sends the payback share to the funds', async () => {
    // By hand: 1.50 of payback shared 100:300 is 37.5 / 112.5 cents a session. Cumulative-fair:
    // after the 1st, 37 / 113 (ben's 113th cent is due at 113/300 of a cent per contributed cent,
    // before ann's 38th at 38/100); after the 2nd exactly 75 / 225 (38 / 112); after the 3rd
    // 112 / 338 (37 / 113). Ann has 1.12 (room 0.08), ben 3.38 (room 0.22): the 4th session pays
    // 0.08 and 0.22, and the excess of 1.20 goes to the funds 20:20, 0.60 each. Maintenance
    // 0.50 + 0.60 = 1.10, infrastructure 1.10, total 2.50.
    let n = 0;
    while (pooledEvents().length === 0 && n < 10) await session(++n);
    expect(n).toBe(4);
    // Two more sessions after the pool.
    await session(++n);
    await session(++n);

    const all = charges();
    expect(all).toHaveLength(6);
    expectConserved(all);
    expect(all.map((c) => priceOf(c))).toEqual(Array(6).fill({ billedMin: 15, usage: 250, material: 0, technician: 0, total: 250, cash: true }));
    const split = (maintenance: number, infrastructure: number, ann: number, ben: number): Part[] => [
      { account: 'material', amount: 0 },
      { account: 'technician', amount: 0 },
      { account: 'maintenance', amount: maintenance },
      { account: 'infrastructure', amount: infrastructure },
      { account: 'co-owner', affiliateId: 'ann', amount: ann },
      { account: 'co-owner', affiliateId: 'ben', amount: ben },
    ];
    expect(all.map(partsOf)).toEqual([
      split(50, 50, 37, 113),
      split(50, 50, 38, 112),
      split(50, 50, 37, 113),
      split(110, 110, 8, 22), // crosses the caps: exactly up to them, the excess to the funds pro rata
      split(125, 125, 0, 0), // pooled: the whole 1.50 of payback to the funds, 20:20
      split(125, 125, 0, 0),
    ]);
    // Each co-owner's total payback is exactly their cap.
    expect(all.reduce((a, c) => a + coOwnerPaid(c, 'ann'), 0)).toBe(120);
    expect(all.reduce((a, c) => a + coOwnerPaid(c, 'ben'), 0)).toBe(360);
    // What each charge saw: the co-owners' payback so far, and whether the tool was pooled.
    expect(all.map((c) => (c.data.inputs as { coOwners: { received: number }[] }).coOwners.map((o) => o.received))).toEqual([
      [0, 0],
      [37, 113],
      [75, 225],
      [112, 338],
      [120, 360],
      [120, 360],
    ]);
    expect(all.map((c) => (c.data.inputs as { pooled: boolean }).pooled)).toEqual([false, false, false, false, true, true]);

    // Exactly one tool.pooled, journaled right after the charge that repaid the last co-owner,
    // which itself follows the end of its session: one transaction.
    const pooled = pooledEvents();
    expect(pooled).toHaveLength(1);
    const crossing = all[3]!;
    expect(pooled[0]!.id).toBe(crossing.id + 1);
    expect(pooled[0]!.deviceId).toBe('printer');
    const ended = gw.journal.events({ kind: 'session.ended', limit: 10_000 });
    expect(ended[3]!.id).toBe(crossing.id - 1);
    expect(pooled[0]!.data).toEqual({
      sessionId: ended[3]!.data.sessionId,
      chargeEventId: crossing.id,
      multiplier: '1.2',
      coOwners: [
        { affiliateId: 'ann', contribution: 100, cap: 120 },
        { affiliateId: 'ben', contribution: 300, cap: 360 },
      ],
    });

    expect(await getJson(gw, `${gw.url}/api/billing/payback`)).toEqual([
      {
        toolId: 'printer',
        pooled: true,
        multiplier: '1.2',
        coOwners: [
          { affiliateId: 'ann', contribution: 100, cap: 120, paid: 120, remaining: 0 },
          { affiliateId: 'ben', contribution: 300, cap: 360, paid: 360, remaining: 0 },
        ],
        paid: 480,
        cap: 480,
        remaining: 0,
        estimatedSessionsToPool: 0,
      },
    ]);

    // The statement over the months these sessions ended in adds the same up.
    const periods = all.map((c) => c.data.period as string);
    const st = await getJson<{ funds: Record<string, number>; payback: { affiliateId: string; amount: number }[] }>(gw, `${gw.url}/api/billing/statement?from=${periods[0]}&to=${periods.at(-1)}`);
    expect(st.funds).toEqual({ material: 0, technician: 0, maintenance: 3 * 50 + 110 + 2 * 125, infrastructure: 3 * 50 + 110 + 2 * 125, payback: 480, total: 6 * 250 });
    expect(st.payback).toEqual([
      { affiliateId: 'ann', amount: 120 },
      { affiliateId: 'ben', amount: 360 },
    ]);

    expect(verifyCharges(gw.journal)).toEqual({ checked: 6, mismatches: [] });
  });
});

describe('a correction that repays the last co-owner', () => {
  let sim: MeteringNodeSim;
  let transport: SimTransport;
  let gw: TestGateway;

  beforeAll(async () => {
    sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200 });
    transport = await serveTcp(sim, '127.0.0.1', 0);
    gw = await startTestGateway({
      devices: [{ id: 'n1', kind: 'metering-node', serial: { path: transport.address } }],
      tools: [{ id: 'printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      billing: { currency: 'CAD', tools: { printer: smallPrinter } },
      // Ada's sessions are community use by default: they pay nobody back.
      affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }], useType: 'community' }],
    });
    await waitFor(async () => (await gw.health()).devices[0]!.state === 'online');
  });

  afterAll(async () => {
    await gw?.stop();
    await transport?.close();
  });

  it('pools the tool with that correction, once', async () => {
    for (let n = 1; n <= 4; n++) await badgeSession(gw, sim, n);
    const charges = gw.journal.events({ kind: 'billing.charge' });
    expect(charges.map((c) => (c.data.parts as Part[]).filter((p) => p.account === 'co-owner').reduce((a, p) => a + p.amount, 0))).toEqual([0, 0, 0, 0]);
    // The custodian finds the four were commercial: corrected one by one, they pay ann and ben
    // back as in scenario 1, and the fourth reaches both caps.
    const corrections: { eventId: number; delta: Part[] }[] = [];
    for (const c of charges) {
      const res = await gw.fetch(`${gw.url}/api/billing/corrections`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sessionId: c.data.sessionId, useType: 'commercial', reason: 'sold prints' }),
      });
      expect(res.status).toBe(201);
      corrections.push((await res.json()) as (typeof corrections)[number]);
    }
    const paid = (d: Part[], who: string) => d.find((p) => p.account === 'co-owner' && p.affiliateId === who)?.amount ?? 0;
    expect(corrections.map((c) => [paid(c.delta, 'ann'), paid(c.delta, 'ben')])).toEqual([
      [37, 113],
      [38, 112],
      [37, 113],
      [8, 22],
    ]);
    const pooled = gw.journal.events({ kind: 'tool.pooled' });
    expect(pooled).toHaveLength(1);
    expect(pooled[0]!.id).toBe(corrections[3]!.eventId + 1); // in the correction's transaction
    expect(pooled[0]!.data).toMatchObject({ sessionId: charges[3]!.data.sessionId, chargeEventId: corrections[3]!.eventId });
    expect(await getJson(gw, `${gw.url}/api/billing/payback`)).toMatchObject([{ pooled: true, paid: 480, remaining: 0 }]);

    // Another correction of that session, and a new session: the tool is pooled once only.
    const again = await gw.fetch(`${gw.url}/api/billing/corrections`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionId: charges[3]!.data.sessionId, technicianMin: 0, reason: 'checked again' }),
    });
    expect(again.status).toBe(201);
    await badgeSession(gw, sim, 5);
    expect(gw.journal.events({ kind: 'tool.pooled' })).toHaveLength(1);
    expect(verifyCharges(gw.journal)).toEqual({ checked: 10, mismatches: [] });
  });
});

// ---- 2 ----

describe('the simulated lab (config/simulated-lab.yaml): Ada’s commercial print', () => {
  let gw: RunningGateway & Pick<TestGateway, 'fetch'>;
  let catcher: MailCatcher;
  // The lab's printer simulator runs at timeScale 5: demo.gcode would take over 5 minutes. Here it
  // runs at 60; the simulator plays SD moves at most about 20× real time (it catches up at most 1
  // simulated second per 50 ms tick), so the print takes about 45 s: longer than the node scenario's
  // badge-out at 27 s, so the end is deferred until the print is done, as in `npm start`.
  const PRINTER_TIME_SCALE = 60;

  beforeAll(async () => {
    const running = await demoLabOnFreePorts({ logger: quietLogger() }, (cfg) => {
      for (const s of cfg.simulators) if (s.kind === 'printer') s.timeScale = PRINTER_TIME_SCALE;
    });
    gw = Object.assign(running, { fetch: adminFetch(running).fetch });
    catcher = running.simulators.find((s) => s.name === 'mail')!.sim as MailCatcher;
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('charges the session to the cent: line items, funds, CSV row and payback progress', { timeout: 150_000 }, async () => {
    const ended = await waitFor(() => gw.journal.events({ kind: 'session.ended' })[0], 120_000, "Ada's session to end after the print");
    const kinds = gw.journal.events({ deviceId: 'printer', limit: 10_000 }).map((e) => e.kind);
    expect(kinds).toContain('session.end-deferred'); // she badged out while it printed
    const s = ended.data as { sessionId: string; affiliateId: string; useType: string; reason: string; endedAt: string; durationS: number; activeS: number; filamentG: number; technicianMin: number };
    expect(s).toMatchObject({ affiliateId: 'ada', useType: 'commercial', reason: 'badge-out', technicianMin: 0 });
    // the gateway holds demo.gcode: the print on the card is metered from the file
    const fromFile = { source: 'file', uncertaintyMm: 0, uncertaintyG: 0, flagged: null };
    expect(ended.data.material).toEqual(fromFile);
    expect(s.filamentG).toBeGreaterThan(0);
    const month = s.endedAt.slice(0, 7);

    // ---- by hand, from the seed tariff (commercial at the shared printer) ----
    // Time: the session's duration, rounded up to 15-minute increments.
    const ms = exact(s.durationS, 3);
    const billedMin = ceilDiv(ms, 15n * 60_000n) * 15n;
    // Usage: 6.00 an hour = 600 cents per 60 min, half up; at least the minimum 2.00 when any time is billed.
    let usage = roundHalfUp(billedMin * 600n, 60n);
    if (billedMin > 0n && usage < 200n) usage = 200n;
    // Material: PLA at 0.030 a gram = 3 cents per 1000 mg, half up to the cent.
    const mg = exact(s.filamentG, 3);
    const material = roundHalfUp(mg * 3n, 1000n);
    const technician = 0n;
    const total = usage + material + technician;
    // The usage fee split 30/20/50 by largest remainder (ties: maintenance, infrastructure, payback).
    const [maintenance, infrastructure, payback] = largestRemainder(usage, [30n, 20n, 50n]) as [bigint, bigint, bigint];
    // The payback shared by the 11 contributions pro rata (ties to the earlier co-owner); caps 1.2 × contribution.
    const agreement: [string, bigint][] = [
      ['ada', 80000n],
      ['bo', 60000n],
      ['chen', 50000n],
      ['dara', 40000n],
      ['emeka', 40000n],
      ['farah', 30000n],
      ['gil', 30000n],
      ['hiro', 25000n],
      ['ines', 20000n],
      ['jonas', 15000n],
      ['kaya', 10000n],
    ];
    const shares = largestRemainder(
      payback,
      agreement.map(([, c]) => c),
    );
    expect(shares.reduce((a, x) => a + x, 0n)).toBe(payback);
    // A short print: one increment, the minimum charge; 1.00 of payback, 0.20 a 800.00 contribution.
    // (Guards the hand figures above against a scenario that changes under them.)
    expect([billedMin, usage, maintenance, infrastructure, payback]).toEqual([15n, 200n, 60n, 40n, 100n]);
    expect(shares).toEqual([20n, 15n, 13n, 10n, 10n, 8n, 7n, 6n, 5n, 4n, 2n]);

    // ---- the journal's charge ----
    const charge = gw.journal.events({ kind: 'billing.charge' })[0]!;
    expect(charge.id).toBe(ended.id + 1);
    expect(charge.data).toMatchObject({ sessionId: s.sessionId, affiliateId: 'ada', useType: 'commercial', period: month, currency: 'CAD' });
    expect(charge.data.price).toEqual({ billedMin: Number(billedMin), usage: Number(usage), material: Number(material), technician: 0, total: Number(total), cash: true });
    expect(charge.data.parts).toEqual([
      { account: 'material', amount: Number(material) },
      { account: 'technician', amount: 0 },
      { account: 'maintenance', amount: Number(maintenance) },
      { account: 'infrastructure', amount: Number(infrastructure) },
      ...agreement.map(([affiliateId], i) => ({ account: 'co-owner', affiliateId, amount: Number(shares[i]!) })),
    ]);

    // ---- her receipt, caught by the lab's mail catcher ----
    const receipt = await new Promise<CaughtMail>((resolve) => {
      const find = () => catcher.caught.find((m) => m.to.includes('ada@simulated-lab.example') && m.subject.startsWith('Receipt'));
      const found = find();
      if (found) resolve(found);
      else catcher.onMail(() => find() && resolve(find()!));
    });
    expect(receipt.subject).toBe(`Receipt: printer, ${formatMinor(total, 2)} CAD`);
    expect(catcher.caught.filter((m) => m.subject.startsWith('Receipt'))).toHaveLength(1);

    // ---- the statement ----
    const st = await getJson<{
      currency: string;
      sessions: { sessionId: string; affiliateId: string; billedMin: number; entries: { kind: string; useType: string; cash: boolean; items: Record<string, number> }[]; net: Record<string, number> }[];
      funds: Record<string, number>;
      payback: { affiliateId: string; amount: number }[];
    }>(gw, `${gw.url}/api/billing/statement?from=${month}`);
    expect(st.currency).toBe('CAD');
    expect(st.sessions).toHaveLength(1);
    const items = { usage: Number(usage), material: Number(material), technician: 0, total: Number(total) };
    expect(st.sessions[0]).toMatchObject({ sessionId: s.sessionId, affiliateId: 'ada', billedMin: Number(billedMin), net: items, material: fromFile });
    expect(st.sessions[0]!.entries).toHaveLength(1);
    expect(st.sessions[0]!.entries[0]).toMatchObject({ kind: 'charge', useType: 'commercial', cash: true, items });
    expect(st.funds).toEqual({ material: Number(material), technician: 0, maintenance: Number(maintenance), infrastructure: Number(infrastructure), payback: Number(payback), total: Number(total) });
    expect(Object.fromEntries(st.payback.map((p) => [p.affiliateId, p.amount]))).toEqual(Object.fromEntries(agreement.map(([who], i) => [who, Number(shares[i]!)] as const).filter(([, paid]) => paid > 0)));

    // ---- the CSV export ----
    const res = await gw.fetch(`${gw.url}/api/billing/statement?from=${month}&format=csv`);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const [header, ...rows] = (await res.text()).trimEnd().split('\n').map((l) => l.split(','));
    const row = rows.find((r) => r[header!.indexOf('session')] === s.sessionId);
    expect(row, 'the CSV row of the session').toBeDefined();
    const cell = (name: string) => row![header!.indexOf(name)];
    expect([cell('period'), cell('tool'), cell('affiliate'), cell('use_type'), cell('billed_min'), cell('entry'), cell('cash'), cell('currency')]).toEqual([month, 'printer', 'ada', 'commercial', String(billedMin), 'charge', 'yes', 'CAD']);
    expect([cell('usage'), cell('material'), cell('technician'), cell('total')]).toEqual([money(usage), money(material), money(technician), money(total)]);
    expect(cell('material_source')).toBe('file');

    // ---- the payback progress ----
    const progress = await getJson<{ toolId: string; pooled: boolean; coOwners: { affiliateId: string; contribution: number; cap: number; paid: number; remaining: number }[]; paid: number; cap: number; remaining: number; estimatedSessionsToPool: number }[]>(gw, 
      `${gw.url}/api/billing/payback`,
    );
    // the statement gives the same progress beside the period's payback
    expect((st as unknown as { paybackProgress: unknown }).paybackProgress).toEqual(progress);
    const caps = agreement.map(([, c]) => (c * 12n) / 10n);
    const remaining = caps.reduce((a, c) => a + c, 0n) - payback;
    expect(progress).toEqual([
      {
        toolId: 'printer',
        pooled: false,
        multiplier: '1.2',
        coOwners: agreement.map(([affiliateId, contribution], i) => ({ affiliateId, contribution: Number(contribution), cap: Number(caps[i]!), paid: Number(shares[i]!), remaining: Number(caps[i]! - shares[i]!) })),
        paid: Number(payback),
        cap: 480000,
        remaining: Number(remaining),
        // At 1.00 of payback a session: 4,799 more sessions like this one.
        estimatedSessionsToPool: Number(ceilDiv(remaining, payback)),
      },
    ]);
    expect(verifyCharges(gw.journal)).toEqual({ checked: 1, mismatches: [] });
  });
});

// ---- 3 ----

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');

/** Runs `ovn-gateway …` as a user would, to its exit. */
function ovn(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a print from the card whose file is given after it ended', () => {
  const FILE = 'tiny-part.gcode';
  const gcode = readFileSync(join(import.meta.dirname, 'fixtures', 'sd', FILE), 'latin1');
  let node: MeteringNodeSim;
  let printerSim: PrinterSim;
  const transports: SimTransport[] = [];
  let gw: TestGateway;

  beforeAll(async () => {
    node = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200 });
    printerSim = new PrinterSim({ timeScale: 50, keepaliveMs: 100, sdLinesPerS: 100, sdFiles: { [FILE]: gcode } });
    transports.push(await serveTcp(node, '127.0.0.1', 0), await serveTcp(printerSim, '127.0.0.1', 0));
    gw = await startTestGateway({
      devices: [
        { id: 'n1', kind: 'metering-node', serial: { path: transports[0]!.address } },
        { id: 'mk3s', kind: 'printer', serial: { path: transports[1]!.address, reconnect: { initialMs: 50, maxMs: 300 } }, pollIntervalS: 1, maxRetractionMm: 12, timeouts: { communicationMs: 400, maxConsecutive: 3, startMs: 300 } },
      ],
      tools: [{ id: 'printer', node: 'n1', printer: 'mk3s', idleTimeoutMin: 60, warnBeforeOffS: 0 }],
      billing: { currency: 'CAD', materials: { PLA: { pricePerGram: '0.030' } }, tools: { printer: smallPrinter } },
      affiliates: [{ id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }] }],
    });
    // idle with its print counter read: a print started now is metered from the counter
    const printer = gw.devices.get('mk3s') as Printer;
    await waitFor(() => printer.state === 'idle' && printer.health().detail.printCounterMm != null && node.truth().relay.sensed === false, 15_000, 'printer idle, counter read');
  });

  afterAll(async () => {
    await gw?.stop();
    for (const t of transports) await t.close();
  });

  it('meters the ended print from the file and corrects the session that held it once it has ended, once, with who gave it', { timeout: 60_000 }, async () => {
    node.badge(ADA);
    const started = await waitFor(() => gw.journal.events({ kind: 'session.started' })[0], 10_000, 'session started');
    const truthBefore = printerSim.truth().totalExtrudedG;
    printerSim.startSdPrint(FILE);
    const jobEnd = await waitFor(() => gw.journal.events({ kind: 'printer.job-ended', deviceId: 'mk3s' })[0], 30_000, 'print ended');
    const grams = printerSim.truth().totalExtrudedG - truthBefore;
    expect(jobEnd.data).toMatchObject({ outcome: 'finished', file: FILE, material: { source: 'printer-counter' }, sd: { total: gcode.length, done: true } });

    // the file given while her session is still open: nothing to correct yet, and nothing lost
    const custodian = createToken(gw.journal, { role: 'custodian', name: 'Carla' }).token;
    const put = () => fetch(`${gw.url}/api/devices/mk3s/files/${FILE}`, { method: 'PUT', headers: { 'content-type': 'text/plain', authorization: `Bearer ${custodian}` }, body: gcode });
    const early = (await (await put()).json()) as { metered: { sessionId: string; correction: unknown; skipped: string }[] };
    expect(early.metered).toEqual([expect.objectContaining({ sessionId: started.data.sessionId, correction: null, skipped: expect.stringMatching(/is still open: give the file again once it has ended$/) })]);
    expect(gw.journal.events({ kind: 'printer.job-metered' })).toEqual([]);

    node.badge(ADA);
    const charge = await waitFor(() => gw.journal.events({ kind: 'billing.charge' })[0], 10_000, 'session charged');
    expect(charge.data).toMatchObject({ sessionId: started.data.sessionId, material: { source: 'printer-counter' } });

    // given again once it has ended: the print is metered from it, the session corrected in her name
    const res = await put();
    expect(res.status).toBe(200);
    const body = (await res.json()) as { metered: { jobId: string; filamentG: number; sessionId: string; skipped: string | null; correction: { change: unknown; reason: string; by: string } }[] };
    expect(body.metered).toHaveLength(1);
    const [m] = body.metered;
    expect(m).toMatchObject({ jobId: jobEnd.data.jobId, sessionId: started.data.sessionId, skipped: null, correction: { change: { kind: 'material', source: 'file' }, reason: 'metered from the attached file', by: 'Carla' } });
    expect(Math.abs(m!.filamentG - grams)).toBeLessThanOrEqual(grams * 0.001 + 0.001);
    expect(gw.journal.events({ kind: 'printer.job-metered', deviceId: 'mk3s' }).map((e) => e.data.jobId)).toEqual([jobEnd.data.jobId]);

    // the bill follows: the statement's net material is the file's grams at 0.030 a gram
    const month = (charge.data.endedAt as string).slice(0, 7);
    const st = await getJson<{ sessions: { sessionId: string; net: { material: number } }[] }>(gw, `${gw.url}/api/billing/statement?from=${month}`);
    const mg = BigInt(Math.round((charge.data.inputs as { usage: { filamentG: number } }).usage.filamentG * 1000 + (m!.filamentG - (jobEnd.data.filamentG as number)) * 1000));
    expect(st.sessions[0]!.net.material).toBe(Number(roundHalfUp(mg * 3n, 1000n)));
    const csv = parseCsv(await (await gw.fetch(`${gw.url}/api/billing/statement?from=${month}&format=csv`)).text(), { columns: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.entry!.split(' ')[0], r.material_source, r.reason])).toEqual([
      ['charge', 'printer-counter', ''],
      ['correction', 'file', 'metered from the attached file'],
    ]);

    // given again: nothing more to meter
    expect(((await (await put()).json()) as { metered: unknown[] }).metered).toEqual([]);
  });
});

describe('corrections through the CLI, on a stopped gateway’s journal', () => {
  let dir: string;
  let file: string;
  let sessions: { sessionId: string; activeS: number; endedAt: string }[];
  let month: string;

  beforeAll(async () => {
    dir = tempDir('billing-cli');
    file = join(dir, 'lab.yaml');
    const port = await freePort();
    writeFileSync(
      file,
      `gateway: { name: CLI billing lab, dataDir: data }
simulators: [{ kind: node, listen: "127.0.0.1:${port}", nodeId: n1, timeScale: 60 }]
devices: [{ id: n1, kind: metering-node, nodeId: n1, maxClockRate: ${SIM_CLOCK_RATE}, serial: { path: "socket://127.0.0.1:${port}" } }]
tools: [{ id: printer, node: n1, idleTimeoutMin: 60, warnBeforeOffS: 0 }]
billing:
  currency: CAD
  tools:
    printer:
      tariffs:
        commercial: { hourlyRate: "6.00", incrementMin: 15, minimumCharge: "2.00", split: { maintenance: 30, infrastructure: 20, payback: 50 } }
        community:  { hourlyRate: "2.00", billedTime: active, incrementMin: 15, split: { maintenance: 60, infrastructure: 40, payback: 0 } }
      coOwnership: { coOwners: [{ affiliate: ada, contribution: "300.00" }, { affiliate: bo, contribution: "100.00" }] }
affiliates: [{ id: ada, name: Ada, badges: ["${ADA}"], qualifications: [{ tool: printer }] }]
`,
    );
    // The sessions happen two months ago (the wall clock only; durations are monotonic): a month
    // can be closed once it has ended, and the next one is still open for a later correction.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const today = new Date();
    vi.setSystemTime(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 2, 10, 12)));
    const gw = await startLab(loadConfig(file), { httpPort: 0, logger: quietLogger() }).catch((err: unknown) => {
      vi.useRealTimers();
      throw err;
    });
    try {
      const node = gw.simulators[0]!.sim as MeteringNodeSim;
      await waitFor(() => gw.devices.get('n1')!.health().state === 'online');
      // Two commercial sessions, each busy a little (the node counts 60 simulated seconds a second).
      for (let n = 1; n <= 2; n++) {
        await waitFor(() => !node.truth().relay.sensed);
        node.badge(ADA);
        await waitFor(() => gw.journal.events({ kind: 'session.started' }).length === n);
        const activeBefore = node.truth().activeS;
        node.setBusy(true);
        await waitFor(() => node.truth().activeS >= activeBefore + 30);
        node.setBusy(false);
        node.badge(ADA);
        await waitFor(() => gw.journal.events({ kind: 'billing.charge' }).length === n);
      }
      sessions = gw.journal.events({ kind: 'session.ended' }).map((e) => e.data as (typeof sessions)[number]);
    } finally {
      await gw.stop();
      vi.useRealTimers();
    }
    month = sessions[0]!.endedAt.slice(0, 7);
  });

  const nextMonth = (m: string) => {
    const [y, mo] = m.split('-').map(Number) as [number, number];
    return mo === 12 ? `${y + 1}-01` : `${y}-${String(mo + 1).padStart(2, '0')}`;
  };

  it('prints the statement as JSON, CSV and a table', { timeout: 120_000 }, async () => {
    const [json, csv, table] = await Promise.all([
      ovn('billing', 'statement', '--config', file, '--from', month, '--format', 'json'),
      ovn('billing', 'statement', '--config', file, '--from', month, '--format', 'csv'),
      ovn('billing', 'statement', '--config', file, '--from', month, '--format', 'table'),
    ]);
    for (const r of [json, csv, table]) expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });

    // Two sessions of a few seconds: 15 min at 6.00/h = 1.50 → the minimum 2.00; split 30/20/50
    // = 0.60 / 0.40 / 1.00; payback 1.00 shared 300:100 = 0.75 / 0.25.
    const st = JSON.parse(json.stdout) as {
      currency: string;
      sessions: { sessionId: string; net: { total: number } }[];
      funds: Record<string, number>;
      payback: { affiliateId: string; amount: number }[];
      paybackProgress: { toolId: string; paid: number; cap: number }[];
    };
    expect(st.currency).toBe('CAD');
    // the period's payback per co-owner under one key, where the tool stands all told under another
    expect(st.payback).toEqual([
      { affiliateId: 'ada', amount: 150 },
      { affiliateId: 'bo', amount: 50 },
    ]);
    expect(st.paybackProgress).toMatchObject([{ toolId: 'printer', paid: 200, cap: 48000 }]);
    expect(st.sessions.map((s) => [s.sessionId, s.net.total])).toEqual(sessions.map((s) => [s.sessionId, 200]));
    expect(st.funds).toEqual({ material: 0, technician: 0, maintenance: 120, infrastructure: 80, payback: 200, total: 400 });

    const [header, ...rows] = csv.stdout.trimEnd().split('\n').map((l) => l.split(','));
    expect(header!.slice(0, 4)).toEqual(['period', 'session', 'tool', 'affiliate']);
    expect(rows).toHaveLength(2);
    for (const [i, r] of rows.entries()) {
      const cell = (name: string) => r[header!.indexOf(name)];
      expect([cell('period'), cell('session'), cell('use_type'), cell('billed_min'), cell('entry'), cell('currency'), cell('usage'), cell('material'), cell('technician'), cell('total')]).toEqual([
        month,
        sessions[i]!.sessionId,
        'commercial',
        '15',
        'charge',
        'CAD',
        '2.00',
        '0.00',
        '0.00',
        '2.00',
      ]);
    }

    expect(table.stdout).toContain(`Statement ${month} … ${month} (CAD)`);
    for (const s of sessions) expect(table.stdout).toContain(s.sessionId.slice(0, 8));
    expect(table.stdout).toMatch(/maintenance\s+1\.20\n/);
    expect(table.stdout).toMatch(/payback\s+2\.00\n/);
    expect(table.stdout).toMatch(/total\s+4\.00\n/);
    expect(table.stdout).toContain('Co-owner payback at printer: paid 2.00 of 480.00, remaining 478.00');
  });

  it('corrects a session to community use, closes the month, sends a later correction to the next month, and verifies', { timeout: 120_000 }, async () => {
    const [first, second] = sessions as [(typeof sessions)[number], (typeof sessions)[number]];
    // By hand: community bills the active time, 15-minute increments, 2.00/h, no minimum; 60/40/0.
    const activeBilledMin = ceilDiv(exact(first.activeS, 3), 15n * 60_000n) * 15n;
    const community = roundHalfUp(activeBilledMin * 200n, 60n);
    const [cMaint] = largestRemainder(community, [60n, 40n, 0n]) as [bigint];
    const delta = community - 200n;

    const c = await ovn('billing', 'correct', first.sessionId, '--config', file, '--use-type', 'community', '--reason', 'printed for the repair café', '--by', 'custodian');
    expect(c, c.stderr).toMatchObject({ code: 0, stderr: '' });
    const m = /^correction (\d+) of charge (\d+) in (\d{4}-\d{2}): (-?\d+\.\d{2}) CAD\n$/.exec(c.stdout);
    expect(m, c.stdout).not.toBeNull();
    expect([m![3], m![4]]).toEqual([month, money(delta)]);

    const closed = await ovn('billing', 'close', month, '--config', file, '--by', 'custodian');
    expect(closed).toMatchObject({ code: 0, stdout: `${month} closed: 1 invoice (${month.slice(0, 4)}-0001)\n`, stderr: '' });
    const again = await ovn('billing', 'close', month, '--config', file, '--by', 'custodian');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`${month} is already closed`);

    // The month is closed: a correction to one of its sessions lands in the next.
    const reason = '=HYPERLINK("http://example.org","test print, not a use")';
    const v = await ovn('billing', 'correct', second.sessionId, '--config', file, '--void', '--reason', reason, '--by', 'custodian');
    expect(v, v.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^correction \\d+ of charge \\d+ in ${nextMonth(month)}: -2\\.00 CAD\\n$`)) });

    const st = JSON.parse((await ovn('billing', 'statement', '--config', file, '--from', month, '--format', 'json')).stdout) as {
      sessions: { sessionId: string; entries: { kind: string; useType: string; items: { total: number }; correction?: { reason: string; by: string } }[]; net: { total: number } }[];
      funds: Record<string, number>;
    };
    const one = st.sessions.find((s) => s.sessionId === first.sessionId)!;
    expect(one.entries.map((e) => [e.kind, e.useType, e.items.total])).toEqual([
      ['charge', 'commercial', 200],
      ['correction', 'community', Number(delta)],
    ]);
    expect(one.entries[1]!.correction).toMatchObject({ reason: 'printed for the repair café', by: 'custodian' });
    expect(one.net.total).toBe(Number(community));
    // The month: the corrected session as community use, the second still commercial (its void is next month's).
    expect(st.funds).toEqual({ material: 0, technician: 0, maintenance: Number(cMaint) + 60, infrastructure: Number(community - cMaint) + 40, payback: 100, total: Number(community) + 200 });
    const next = JSON.parse((await ovn('billing', 'statement', '--config', file, '--from', nextMonth(month), '--format', 'json')).stdout) as { sessions: { sessionId: string; net: { total: number } }[]; funds: Record<string, number> };
    expect(next.sessions.map((s) => [s.sessionId, s.net.total])).toEqual([[second.sessionId, -200]]);
    expect(next.funds).toEqual({ material: 0, technician: 0, maintenance: -60, infrastructure: -40, payback: -100, total: -200 });
    // In the CSV the reason a spreadsheet would run as a formula is text; the negative amounts stay numbers.
    const csv = parseCsv((await ovn('billing', 'statement', '--config', file, '--from', nextMonth(month), '--format', 'csv')).stdout, { columns: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.entry!.startsWith('correction of'), r.total, r.reason])).toEqual([[true, '-2.00', `'${reason}`]]);

    const verify = await ovn('billing', 'verify', '--config', file);
    expect(verify).toMatchObject({ code: 0, stdout: '4 charges and corrections recomputed: all match\n', stderr: '' });

    // The journal: corrections reference the charges they correct; nothing was edited.
    const journal = Journal.open(join(dir, 'data'));
    try {
      const charges = journal.events({ kind: 'billing.charge' });
      expect(journal.events({ kind: 'billing.correction' }).map((e) => [e.data.corrects, e.data.sessionId, e.data.by])).toEqual([
        [charges[0]!.id, first.sessionId, 'custodian'],
        [charges[1]!.id, second.sessionId, 'custodian'],
      ]);
      expect(journal.events({ kind: 'billing.period-closed' }).map((e) => e.data)).toEqual([{ period: month, by: 'custodian' }]);
      expect(verifyCharges(journal)).toEqual({ checked: 4, mismatches: [] });
    } finally {
      journal.close();
    }
  });

  it('refuses what it cannot do with a clear message and a non-zero exit code', { timeout: 120_000 }, async () => {
    const id = sessions[0]!.sessionId;
    const cases: [string[], RegExp][] = [
      [['billing', 'correct', 'no-such-session', '--config', file, '--use-type', 'community', '--reason', 'r', '--by', 'custodian'], /no charge for session no-such-session/],
      [['billing', 'correct', id, '--config', file, '--use-type', 'community', '--by', 'custodian'], /required option '--reason <text>' not specified/],
      [['billing', 'correct', id, '--config', file, '--use-type', 'community', '--reason', '  ', '--by', 'custodian'], /a correction needs a reason/],
      [['billing', 'correct', id, '--config', file, '--use-type', 'comercial', '--reason', 'r', '--by', 'custodian'], /unknown use type "comercial" \(this lab has commercial, community, project\)/],
      [['billing', 'correct', id, '--config', file, '--reason', 'r', '--by', 'custodian'], /give exactly one of --void, --use-type, --material-g, --technician-min/],
      [['billing', 'close', '2026-13', '--config', file, '--by', 'custodian'], /a period is a month written YYYY-MM, not "2026-13"/],
      [['billing', 'close', 'november', '--config', file, '--by', 'custodian'], /a period is a month written YYYY-MM, not "november"/],
      [['billing', 'close', new Date().toISOString().slice(0, 7), '--config', file, '--by', 'custodian'], /^\d{4}-\d{2} has not ended yet: a month can be closed from the first day of the next \(UTC\)\n$/],
      [['billing', 'statement', '--config', file, '--from', '2026-13'], /expected a month YYYY-MM/],
      [['billing', 'statement', '--config', file, '--from', month, '--format', 'xml'], /--format: table, csv or json, not "xml"/],
      [['billing', 'verify', '--config', join(dir, 'missing.yaml')], /missing\.yaml/],
    ];
    const results = await Promise.all(cases.map(([args]) => ovn(...args)));
    for (const [i, r] of results.entries()) {
      const [args, message] = cases[i]!;
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.code, args.join(' ')).not.toBeNull();
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stdout, args.join(' ')).toBe('');
    }
    // The running month cannot be closed, as through the API: a refusal of the command, exit 2.
    const running = await ovn('billing', 'close', new Date().toISOString().slice(0, 7), '--config', file, '--by', 'custodian');
    expect(running.code, running.stderr).toBe(2);
    // Nothing was recorded by the refusals.
    expect((await ovn('billing', 'verify', '--config', file)).stdout).toBe('4 charges and corrections recomputed: all match\n');
  });
});
