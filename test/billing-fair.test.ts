/**
 * Cumulative-fair allocation (allocation 2): after every split, every co-owner's payback so far
 * is within one minor unit of their exact pro-rata share of all the payback so far, and each of
 * the usage fee's parts (maintenance, infrastructure, payback) within one unit of its exact
 * percentage of all the usage fees so far; caps and the pool of shareables land exactly; every
 * split sums to the charge. Checked against exact BigInt arithmetic of our own, over tens of
 * thousands of sessions (a million in `npm run bench -- fairsplit`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Billing, verifyCharges } from '../gateway/src/billing/billing.js';
import { billingSchema } from '../gateway/src/billing/config.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { tempDir } from './helpers.js';
import { carryAdded, computeCharge, type ChargeInputs } from '../gateway/src/billing/charge.js';
import { capOf, splitCharge, type CoOwner, type FundCarry, type Shares, type SplitInput } from '../gateway/src/billing/split.js';

/** The seed's printer as the demo lab's agreement has it: 4,000.00 by 11 co-owners, cap 4,800.00. */
const SEED: [string, number][] = [
  ['ada', 80_000],
  ['bo', 60_000],
  ['chen', 50_000],
  ['dara', 40_000],
  ['emeka', 40_000],
  ['farah', 30_000],
  ['gil', 30_000],
  ['hiro', 25_000],
  ['ines', 20_000],
  ['jonas', 15_000],
  ['kaya', 10_000],
];

const TARIFF_SPLITS: Shares[] = [
  { maintenance: 30, infrastructure: 20, payback: 50 },
  { maintenance: 60, infrastructure: 40, payback: 0 },
  { maintenance: 33, infrastructure: 33, payback: 34 },
  { maintenance: 1, infrastructure: 2, payback: 97 },
];

/** A small deterministic generator. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s % n;
  };
}

interface Run {
  contributions: number[];
  multiplier: string;
  sessions: number;
  seed: number;
  /** Usage fees drawn up to this many units (with many minimum charges of 200). */
  maxUsage: number;
  splits: Shares[];
}

/**
 * Runs `sessions` splits in a row, carrying the co-owners' running totals and the fund carry as
 * the journal does, and checks every bound after each one. Returns what happened, for the
 * figures asserted by the callers.
 */
function simulate(run: Run) {
  const rnd = lcg(run.seed);
  const owners: CoOwner[] = run.contributions.map((contribution, i) => ({ affiliateId: `co-owner-${i}`, contribution, received: 0 }));
  const C = BigInt(run.contributions.reduce((a, b) => a + b, 0));
  const caps = run.contributions.map((c) => capOf(c, run.multiplier));
  const K = caps.reduce((a, b) => a + b, 0);
  let carry: FundCarry = [0, 0, 0];
  // Exact cumulative shares of the usage fees, in hundredths of a unit, and what each part got.
  const exact = [0n, 0n, 0n];
  const got = [0n, 0n, 0n];
  let pooled = false;
  let pooledAt = -1;
  let excessSeen = false;
  let worstCoOwner = 0;
  for (let s = 0; s < run.sessions; s++) {
    const check = (ok: boolean, what: string) => {
      if (!ok) throw new Error(`after session ${s}: ${what} (${JSON.stringify(run)})`);
    };
    const shares = run.splits[rnd(run.splits.length)]!;
    const usage = rnd(4) === 0 ? 200 : rnd(run.maxUsage + 1);
    const material = rnd(3) === 0 ? rnd(500) : 0;
    const input: SplitInput = {
      price: { usage, material, technician: 0, total: usage + material, cash: true },
      shares,
      coOwners: owners,
      multiplier: run.multiplier,
      excessTo: 'maintenance',
      pooled,
      allocation: 2,
      fundCarry: carry,
    };
    const r = splitCharge(input);
    const amounts = r.parts.map((p) => p.amount);
    check(amounts.reduce((a, b) => a + b, 0) === usage + material, 'the parts sum to the charge');
    check(amounts.every((a) => Number.isSafeInteger(a) && a >= 0), 'every part is a whole amount ≥ 0');
    const coSum = amounts.slice(4).reduce((a, b) => a + b, 0);
    for (let i = 0; i < owners.length; i++) owners[i] = { ...owners[i]!, received: owners[i]!.received + amounts[4 + i]! };
    // Co-owners: |received × C − P × c| < C, i.e. within one unit of the exact share.
    const P = BigInt(owners.reduce((a, o) => a + o.received, 0));
    for (let i = 0; i < owners.length; i++) {
      const o = owners[i]!;
      check(o.received <= caps[i]!, `${o.affiliateId} within their cap`);
      const dev = BigInt(o.received) * C - P * BigInt(o.contribution);
      const absDev = dev < 0n ? -dev : dev;
      if (absDev >= C) throw new Error(`session ${s}: ${o.affiliateId} has ${o.received}, exact share ${Number(P * BigInt(o.contribution)) / Number(C)}`);
      worstCoOwner = Math.max(worstCoOwner, Number(absDev) / Number(C));
    }
    // The usage fee's three parts. Infrastructure never takes excess here (excessTo: maintenance);
    // maintenance and payback are told apart until the first excess.
    const pcts = [shares.maintenance, shares.infrastructure, shares.payback];
    for (let f = 0; f < 3; f++) exact[f] = exact[f]! + BigInt(usage * pcts[f]!);
    const infra = BigInt(amounts[3]!);
    got[1] = got[1]! + infra;
    const mPlusP = BigInt(amounts[2]! + coSum);
    const excess = pooled || owners.some((o, i) => o.received >= caps[i]!);
    if (!excessSeen && !excess) {
      got[0] = got[0]! + BigInt(amounts[2]!);
      got[2] = got[2]! + BigInt(coSum);
    } else {
      excessSeen = true;
      // From here the two are only known together.
      got[0] = got[0]! + mPlusP;
    }
    const within = (f: number) => {
      const d = got[f]! * 100n - exact[f]!;
      return d > -100n && d < 100n;
    };
    check(within(1), 'infrastructure within a unit');
    if (!excessSeen) {
      check(within(0), 'maintenance within a unit');
      check(within(2), 'payback within a unit');
    } else {
      const d = (got[0]! + got[2]!) * 100n - (exact[0]! + exact[2]!);
      check(d > -200n && d < 200n, 'maintenance and payback within a unit each');
    }
    // The carry is exactly what is owed to each part, within one unit.
    carry = r.fundCarry!;
    check(carry[0] + carry[1] + carry[2] === 0, 'the carry sums to 0');
    check(Math.abs(carry[0]) < 100 && Math.abs(carry[1]) < 100 && Math.abs(carry[2]) < 100, 'the carry within ±100');
    check(BigInt(-carry[1]) === got[1]! * 100n - exact[1]!, "the carry is what infrastructure is owed");
    // The pool of shareables: exactly when every cap is reached, each exactly.
    if (r.poolReached) {
      check(!pooled && owners.every((o, i) => o.received === caps[i]), 'pooled once, every cap exactly');
      pooled = true;
      pooledAt = s;
    } else if (!pooled) {
      check(owners.some((o, i) => o.received < caps[i]!), 'not pooled while a co-owner is owed');
    }
  }
  return { owners, pooled, pooledAt, paid: owners.reduce((a, o) => a + o.received, 0), K, worstCoOwner };
}

describe('cumulative-fair allocation (allocation 2)', () => {
  it("the seed's printer: 40,000 sessions, every co-owner within a cent after each, the pool at exactly 4,800.00", () => {
    const r = simulate({ contributions: SEED.map(([, c]) => c), multiplier: '1.2', sessions: 40_000, seed: 4, maxUsage: 4_000, splits: TARIFF_SPLITS });
    expect(r.pooled).toBe(true);
    expect(r.paid).toBe(480_000);
    expect(r.K).toBe(480_000);
    expect(r.pooledAt).toBeGreaterThan(1_000);
    expect(r.worstCoOwner).toBeLessThan(1);
  });

  it('dara and emeka, with equal contributions, are paid the same to a cent; chen and gil in their 5:3 ratio', () => {
    // Only minimum charges (2.00: 1.00 of payback a session), as in a month of short jobs.
    const owners: CoOwner[] = SEED.map(([affiliateId, contribution]) => ({ affiliateId, contribution, received: 0 }));
    let carry: FundCarry = [0, 0, 0];
    for (let s = 0; s < 153; s++) {
      const r = splitCharge({ price: { usage: 200, material: 0, technician: 0, total: 200, cash: true }, shares: TARIFF_SPLITS[0]!, coOwners: owners, multiplier: '1.2', excessTo: 'funds', pooled: false, allocation: 2, fundCarry: carry });
      carry = r.fundCarry!;
      r.parts.slice(4).forEach((p, i) => (owners[i] = { ...owners[i]!, received: owners[i]!.received + p.amount }));
    }
    const got = Object.fromEntries(owners.map((o) => [o.affiliateId, o.received]));
    // 153 sessions × 100 of payback = 15,300, of which dara's and emeka's exact share is 1,530 each.
    expect(Math.abs(got.dara! - got.emeka!)).toBeLessThanOrEqual(1);
    expect(Math.abs(got.dara! - 1530)).toBeLessThan(1 + 1e-9);
    // chen 500, gil 300: exact 1,912.5 and 1,147.5.
    expect([1912, 1913]).toContain(got.chen);
    expect([1147, 1148]).toContain(got.gil);
  });

  it('a 1-cent payback a session still goes round everyone in proportion', () => {
    const r = simulate({ contributions: [3, 2, 1, 1], multiplier: '100', sessions: 5_000, seed: 7, maxUsage: 3, splits: [{ maintenance: 0, infrastructure: 0, payback: 100 }] });
    expect(r.worstCoOwner).toBeLessThan(1);
  });

  it('holds for any contributions, multiplier (caps that are not whole units too) and mix of tariffs', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 14 }),
        fc.constantFrom('1', '1.2', '1.15', '1.333', '1.05', '2.5'),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.constantFrom(100, 2_000, 50_000),
        (contributions, multiplier, seed, maxUsage) => {
          const r = simulate({ contributions, multiplier, sessions: 1_500, seed, maxUsage, splits: TARIFF_SPLITS });
          if (r.pooled) expect(r.paid).toBe(r.K);
        },
      ),
      { numRuns: 60, seed: 19 },
    );
  });

  it('brings a state left uneven by per-session rounding back within a cent, never taking anything back', () => {
    // As after charges of allocation 1: dara ahead of emeka by 16 cents.
    const owners: CoOwner[] = SEED.map(([affiliateId, contribution]) => ({ affiliateId, contribution, received: contribution / 10 }));
    owners[3] = { ...owners[3]!, received: owners[3]!.received + 16 };
    owners[4] = { ...owners[4]!, received: owners[4]!.received - 16 };
    let carry: FundCarry = [40, -90, 50];
    for (let s = 0; s < 40; s++) {
      const r = splitCharge({ price: { usage: 200, material: 0, technician: 0, total: 200, cash: true }, shares: TARIFF_SPLITS[0]!, coOwners: owners, multiplier: '1.2', excessTo: 'funds', pooled: false, allocation: 2, fundCarry: carry });
      carry = r.fundCarry!;
      r.parts.forEach((p) => expect(p.amount).toBeGreaterThanOrEqual(0));
      r.parts.slice(4).forEach((p, i) => (owners[i] = { ...owners[i]!, received: owners[i]!.received + p.amount }));
    }
    expect(Math.abs(owners[3]!.received - owners[4]!.received)).toBeLessThanOrEqual(1);
  });

  it('selfPayback: redistribute gives a co-owner nothing from their own session, the others all of it', () => {
    const owners: CoOwner[] = SEED.map(([affiliateId, contribution]) => ({ affiliateId, contribution, received: 0 }));
    const base = { price: { usage: 2000, material: 0, technician: 0, total: 2000, cash: true }, shares: TARIFF_SPLITS[0]!, coOwners: owners, multiplier: '1.2', excessTo: 'funds' as const, pooled: false, allocation: 2 as const, payer: 'ada' };
    const allowed = splitCharge(base);
    expect(allowed.parts[4]!.amount).toBe(200); // 1,000 × 800 / 4,000
    const r = splitCharge({ ...base, selfPayback: 'redistribute' });
    expect(r.parts[4]!.amount).toBe(0);
    expect(r.parts.slice(4).reduce((a, p) => a + p.amount, 0)).toBe(1000);
    expect(r.parts[5]!.amount).toBe(188); // bo: 1,000 × 600 / 3,200 = 187.5
    // Someone who is not a co-owner: as allowed.
    expect(splitCharge({ ...base, payer: 'zoe', selfPayback: 'redistribute' }).parts).toEqual(splitCharge({ ...base, payer: 'zoe' }).parts);
    // The only co-owner's own session: nobody else to pay, the payback part is excess.
    const alone = splitCharge({ ...base, coOwners: [owners[0]!], selfPayback: 'redistribute' });
    expect(alone.parts[4]!.amount).toBe(0);
    expect(alone.parts[2]!.amount + alone.parts[3]!.amount).toBe(2000);
  });

  it('refuses an unknown allocation, policy or a carry that does not sum to 0', () => {
    const base: SplitInput = { price: { usage: 200, material: 0, technician: 0, total: 200, cash: true }, shares: TARIFF_SPLITS[0]!, coOwners: [], multiplier: '1.2', excessTo: 'funds', pooled: false };
    expect(() => splitCharge({ ...base, allocation: 3 as never })).toThrow(/allocation must be 1 or 2/);
    expect(() => splitCharge({ ...base, selfPayback: 'never' as never })).toThrow(/selfPayback must be/);
    expect(() => splitCharge({ ...base, allocation: 2, fundCarry: [1, 0, 0] })).toThrow(/fundCarry must be three whole numbers summing to 0/);
  });

  it('a charge journaled before (inputs without allocation) recomputes the old way; a new one says allocation 2', () => {
    // ann 1.00 and ben 3.00, 1.50 of payback: 37.5 / 112.5 cents.
    const old: ChargeInputs = {
      usage: { durationS: 600, activeS: 600, filamentG: 0, technicianMin: 0, ownMaterial: false },
      tariff: { hourlyRate: '6.00', billedTime: 'session', incrementMin: 15, minimumCharge: '2.50', chargeMaterial: true, cash: true },
      shares: { maintenance: 20, infrastructure: 20, payback: 60 },
      minorUnit: 2,
      materialPricePerGram: null,
      technicianRatePerHour: '0',
      coOwners: [
        { affiliateId: 'ann', contribution: 100, received: 0 },
        { affiliateId: 'ben', contribution: 300, received: 0 },
      ],
      multiplier: '1.2',
      excessTo: 'funds',
      pooled: false,
    };
    const before = computeCharge(old);
    expect(before.parts.slice(4).map((p) => p.amount)).toEqual([38, 112]); // the tie to the first listed, as then
    expect(before.fundCarry).toBeUndefined();
    expect(carryAdded(old)).toEqual([0, 0, 0]);
    const now = computeCharge({ ...old, allocation: 2, fundCarry: [0, 0, 0], payer: 'zoe', selfPayback: 'allowed' });
    expect(now.parts.slice(4).map((p) => p.amount)).toEqual([37, 113]);
    expect(now.fundCarry).toEqual([0, 0, 0]);
    // A use with no cash charge moves no money: the carry stays.
    const valued = computeCharge({ ...old, tariff: { ...old.tariff!, cash: false }, allocation: 2, fundCarry: [10, -30, 20] });
    expect(valued.fundCarry).toEqual([10, -30, 20]);
  });

  it('through the journal: the agreement\'s selfPayback, the carry kept with charges and corrections, billing verify', () => {
    const config = billingSchema.parse({
      tools: {
        printer: {
          tariffs: { commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.00', split: { maintenance: 33, infrastructure: 33, payback: 34 } } },
          coOwnership: { selfPayback: 'redistribute', coOwners: [{ affiliate: 'ann', contribution: '1.00' }, { affiliate: 'ben', contribution: '3.00' }, { affiliate: 'cy', contribution: '1.00' }] },
        },
      },
    });
    const journal = Journal.open(tempDir('billing-fair'));
    try {
      const billing = new Billing(config, journal);
      const charge = (i: number, affiliateId: string, durationS: number) =>
        journal.durably(() =>
          billing.charge({ sessionId: `s${i}`, toolId: 'printer', affiliateId, useType: 'commercial', startedAt: '2026-11-15T10:00:00.000Z', endedAt: '2026-11-15T11:00:00.000Z', durationS, activeS: durationS, filamentG: 0 }),
        );
      charge(1, 'zoe', 600); // 2.00: 0.68 of payback, 13.6 / 40.8 / 13.6
      charge(2, 'ben', 600); // ben's own: 0.68 to ann and cy, 34 each
      charge(3, 'zoe', 2400); // 45 min: 4.50, 148.5 / 148.5 / 153 exactly
      charge(4, 'zoe', 600);
      const charges = journal.events({ kind: 'billing.charge' });
      const parts = charges.map((e) => (e.data.parts as { amount: number }[]).slice(2).map((p) => p.amount));
      // maintenance, infrastructure, ann, ben, cy
      expect(parts[0]).toEqual([66, 66, 14, 41, 13]);
      expect(parts[1]).toEqual([66, 66, 34, 0, 34]);
      // The half cent to maintenance (tie), carried: infrastructure is owed it.
      expect(parts[2]![0]! + parts[2]![1]!).toBe(297);
      expect(parts[2]![0]).toBe(149);
      const inputs = charges.map((e) => e.data.inputs as ChargeInputs);
      expect(inputs.map((i) => [i.allocation, i.payer, i.selfPayback])).toEqual([
        [2, 'zoe', 'redistribute'],
        [2, 'ben', 'redistribute'],
        [2, 'zoe', 'redistribute'],
        [2, 'zoe', 'redistribute'],
      ]);
      expect(inputs.map((i) => i.fundCarry)).toEqual([
        [0, 0, 0],
        [0, 0, 0],
        [0, 0, 0],
        [-50, 50, 0],
      ]);
      expect(billing.fundCarry('printer')).toEqual([-50, 50, 0]);
      billing.correct('s1', { kind: 'technician', technicianMin: 30 }, 'helped', 'custodian');
      billing.correct('s3', { kind: 'void' }, 'a test print', 'custodian');
      // Without s3, nothing is carried; every stored charge still recomputes, and the carry agrees.
      expect(billing.fundCarry('printer')).toEqual([0, 0, 0]);
      expect(verifyCharges(journal).mismatches).toEqual([]);
    } finally {
      journal.close();
    }
  });
});
