import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BillingError } from '../gateway/src/billing/money.js';
import { priceSession, type Price } from '../gateway/src/billing/price.js';
import { capOf, largestRemainder, splitCharge, type CoOwner, type ExcessTo, type Part, type SplitInput } from '../gateway/src/billing/split.js';

const MAX = Number.MAX_SAFE_INTEGER;

/** Seed 004's printer: 4,000.00 co-financed by 11 affiliates (amounts made up, in cents). */
const PRINTER: CoOwner[] = [
  ['tiberius', 100_000],
  ['jim', 75_000],
  ['marie', 50_000],
  ['ivan', 40_000],
  ['abdel', 30_000],
  ['sophie', 30_000],
  ['luc', 25_000],
  ['maria', 20_000],
  ['antoine', 15_000],
  ['yasmin', 10_000],
  ['chen', 5_000],
].map(([affiliateId, contribution]) => ({ affiliateId: affiliateId as string, contribution: contribution as number, received: 0 }));

/** The 2 h 10 min commercial print of billing-price.test.ts: usage 18.00, material 0.90, technician 10.00. */
const PRINT: Price = { billedMin: 135, usage: 1800, material: 90, technician: 1000, total: 2890, cash: true };

const agreement = (over: Partial<SplitInput> = {}): SplitInput => ({
  price: PRINT,
  shares: { maintenance: 30, infrastructure: 20, payback: 50 },
  coOwners: PRINTER,
  multiplier: '1.2',
  excessTo: 'funds',
  pooled: false,
  ...over,
});

const amounts = (parts: Part[]) => parts.map((p) => p.amount);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const fund = (parts: Part[], account: 'maintenance' | 'infrastructure') => parts.find((p) => p.account === account)!.amount;
const coOwnerAmounts = (parts: Part[]) => parts.slice(4).map((p) => p.amount);
/** The co-owners after being paid a split's co-owner parts. */
const paidOut = (owners: readonly CoOwner[], parts: Part[]) => owners.map((o, i) => ({ ...o, received: o.received + parts[4 + i]!.amount }));

describe('largestRemainder', () => {
  it('floors every share, then hands the units left to the largest remainders, earlier first on ties', () => {
    expect(largestRemainder(1800, [30, 20, 50])).toEqual([540, 360, 900]);
    expect(largestRemainder(1, [30, 20, 50])).toEqual([0, 0, 1]); // .3 .2 .5
    expect(largestRemainder(1, [50, 50, 0])).toEqual([1, 0, 0]); // tie: the first
    expect(largestRemainder(2, [34, 33, 33])).toEqual([1, 1, 0]); // .68, then the tie .66/.66 to the earlier
    expect(largestRemainder(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(largestRemainder(0, [0, 0])).toEqual([0, 0]);
    expect(largestRemainder(7, [0, 3, 0])).toEqual([0, 7, 0]);
    expect(() => largestRemainder(1, [0, 0])).toThrow(/all 0/);
    expect(() => largestRemainder(-1, [1])).toThrow(BillingError);
    expect(() => largestRemainder(1, [0.5])).toThrow(/a weight must be a whole number/);
  });

  // A direct statement of the rule: sort by remainder (descending), then by position.
  function reference(total: bigint, weights: bigint[]): number[] {
    const s = weights.reduce((a, b) => a + b, 0n);
    const shares = weights.map((w) => (total * w) / s);
    const order = weights.map((w, i) => ({ i, r: (total * w) % s })).sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
    let left = total - shares.reduce((a, b) => a + b, 0n);
    for (const { i } of order) if (left-- > 0n) shares[i]!++;
    return shares.map(Number);
  }

  it('matches the rule stated with BigInt and a sort, with Number and BigInt arithmetic alike (property)', () => {
    const weight = fc.oneof(fc.nat({ max: 100 }), fc.nat({ max: 1_000_000 }), fc.nat({ max: 2 ** 48 }));
    fc.assert(
      fc.property(fc.oneof(fc.nat({ max: 10_000 }), fc.nat({ max: MAX })), fc.array(weight, { minLength: 1, maxLength: 20 }), (total, weights) => {
        fc.pre(sum(weights) > 0 && Number.isSafeInteger(sum(weights)));
        const got = largestRemainder(total, weights);
        expect(got).toEqual(reference(BigInt(total), weights.map(BigInt)));
        expect(sum(got)).toBe(total);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('splitCharge', () => {
  it('the seed printer: a commercial print split 30/20/50, payback pro rata to 11 unequal contributions', () => {
    const r = splitCharge(agreement());
    // usage 1800: maintenance 540, infrastructure 360, payback 900 (no remainders).
    // Payback 900 × contribution / 400000: 225, 168.75, 112.5, 90, 67.5, 67.5, 56.25, 45, 33.75, 22.5, 11.25;
    // floors sum to 896, the 4 units left go to .75 (jim), .75 (antoine), then the .5 ties in
    // agreement order: marie, abdel (not sophie, not yasmin).
    expect(r.parts).toEqual([
      { account: 'material', amount: 90 },
      { account: 'technician', amount: 1000 },
      { account: 'maintenance', amount: 540 },
      { account: 'infrastructure', amount: 360 },
      { account: 'co-owner', affiliateId: 'tiberius', amount: 225 },
      { account: 'co-owner', affiliateId: 'jim', amount: 169 },
      { account: 'co-owner', affiliateId: 'marie', amount: 113 },
      { account: 'co-owner', affiliateId: 'ivan', amount: 90 },
      { account: 'co-owner', affiliateId: 'abdel', amount: 68 },
      { account: 'co-owner', affiliateId: 'sophie', amount: 67 },
      { account: 'co-owner', affiliateId: 'luc', amount: 56 },
      { account: 'co-owner', affiliateId: 'maria', amount: 45 },
      { account: 'co-owner', affiliateId: 'antoine', amount: 34 },
      { account: 'co-owner', affiliateId: 'yasmin', amount: 22 },
      { account: 'co-owner', affiliateId: 'chen', amount: 11 },
    ]);
    expect(sum(amounts(r.parts))).toBe(2890);
    expect(r.poolReached).toBe(false);
  });

  it('priced and split end to end', () => {
    const price = priceSession(
      { durationS: 7800, activeS: 7020, filamentG: 35.89, technicianMin: 20, ownMaterial: false },
      { hourlyRate: '8.00', billedTime: 'session', incrementMin: 15, minimumCharge: '2.00', chargeMaterial: true, cash: true },
      { minorUnit: 2, materialPricePerGram: '0.025', technicianRatePerHour: '30.00' },
    );
    expect(splitCharge(agreement({ price }))).toEqual(splitCharge(agreement()));
  });

  it('caps are multiplier × contribution, rounded down to the minor unit', () => {
    expect(PRINTER.map((o) => capOf(o.contribution, '1.2'))).toEqual([120_000, 90_000, 60_000, 48_000, 36_000, 36_000, 30_000, 24_000, 18_000, 12_000, 6_000]);
    expect(capOf(333, '1.2')).toBe(399); // 399.6
    expect(capOf(7, '1.15')).toBe(8); // 8.05
    expect(capOf(1, '1.999')).toBe(1);
    expect(capOf(100, '1')).toBe(100);
    expect(capOf(MAX, '1.2')).toBe(MAX); // beyond 2^53: never reachable, held at the largest safe amount
    expect(() => capOf(100, '1,2')).toThrow(new BillingError('multiplier "1,2" is not a decimal number: write 1.2'));
  });

  it('a session that crosses a cap pays exactly up to it; the rest goes to the funds pro rata', () => {
    const owners = PRINTER.map((o, i) => (i === 0 ? { ...o, received: 119_900 } : o)); // 1.00 short of 1,200.00
    const r = splitCharge(agreement({ coOwners: owners }));
    // tiberius would get 225, takes 100; the excess 125 splits 30:20 → 75 and 50.
    expect(coOwnerAmounts(r.parts)).toEqual([100, 169, 113, 90, 68, 67, 56, 45, 34, 22, 11]);
    expect(fund(r.parts, 'maintenance')).toBe(540 + 75);
    expect(fund(r.parts, 'infrastructure')).toBe(360 + 50);
    expect(r.poolReached).toBe(false);
    const toMaintenance = splitCharge(agreement({ coOwners: owners, excessTo: 'maintenance' }));
    expect([fund(toMaintenance.parts, 'maintenance'), fund(toMaintenance.parts, 'infrastructure')]).toEqual([665, 360]);
    const toInfrastructure = splitCharge(agreement({ coOwners: owners, excessTo: 'infrastructure' }));
    expect([fund(toInfrastructure.parts, 'maintenance'), fund(toInfrastructure.parts, 'infrastructure')]).toEqual([540, 485]);
  });

  it('the session that repays the last co-owner reports poolReached; after that the whole payback part is excess', () => {
    const due = [225, 169, 113, 90, 68, 67, 56, 45, 34, 22, 11];
    const almost = PRINTER.map((o, i) => ({ ...o, received: capOf(o.contribution, '1.2') - due[i]! }));
    const last = splitCharge(agreement({ coOwners: almost }));
    expect(coOwnerAmounts(last.parts)).toEqual(due);
    expect(last.poolReached).toBe(true);

    const oneShort = almost.map((o, i) => (i === 10 ? { ...o, received: o.received - 1 } : o));
    expect(splitCharge(agreement({ coOwners: oneShort })).poolReached).toBe(false);

    // Everyone at their cap: the 900 of payback goes 540/360 to the funds.
    const repaid = paidOut(almost, last.parts);
    for (const pooled of [false, true]) {
      const after = splitCharge(agreement({ coOwners: repaid, pooled }));
      expect(amounts(after.parts)).toEqual([90, 1000, 1080, 720, ...Array<number>(11).fill(0)]);
      expect(after.poolReached).toBe(!pooled); // not pooled yet: still reported, so it can be recorded
    }
    // Pooled: nobody is paid back, whatever they received.
    expect(coOwnerAmounts(splitCharge(agreement({ pooled: true })).parts)).toEqual(Array<number>(11).fill(0));
  });

  it('project use (not cash): the same split records what the use was worth, and repays nobody', () => {
    const due = [225, 169, 113, 90, 68, 67, 56, 45, 34, 22, 11];
    const almost = PRINTER.map((o, i) => ({ ...o, received: capOf(o.contribution, '1.2') - due[i]! }));
    const value = splitCharge(agreement({ coOwners: almost, price: { ...PRINT, cash: false } }));
    expect(value.parts).toEqual(splitCharge(agreement({ coOwners: almost })).parts);
    expect(value.poolReached).toBe(false);
  });

  it('no co-owners: the payback part is excess, and the tool is reported as belonging in the pool', () => {
    const r = splitCharge(agreement({ coOwners: [] }));
    expect(amounts(r.parts)).toEqual([90, 1000, 1080, 720]);
    expect(r.poolReached).toBe(true);
    expect(splitCharge(agreement({ coOwners: [], pooled: true })).poolReached).toBe(false);
  });

  it('excess to "funds" when both funds are 0 %: all to maintenance', () => {
    const r = splitCharge(agreement({ shares: { maintenance: 0, infrastructure: 0, payback: 100 }, pooled: true }));
    expect(amounts(r.parts)).toEqual([90, 1000, 1800, 0, ...Array<number>(11).fill(0)]);
  });

  it('rounding ties in the usage split go maintenance, infrastructure, payback', () => {
    const cent = (usage: number, maintenance: number, infrastructure: number, payback: number) =>
      amounts(splitCharge(agreement({ price: { ...PRINT, usage, material: 0, technician: 0, total: usage }, shares: { maintenance, infrastructure, payback }, coOwners: [] })).parts);
    // With no co-owners the payback unit is excess; with 0 % payback none arises, so the usage split shows as is.
    expect(cent(1, 50, 50, 0)).toEqual([0, 0, 1, 0]);
    expect(cent(2, 34, 33, 33).slice(2)).toEqual([1, 1]); // .68 → maintenance, tie .66/.66 → infrastructure, payback 0
    // 1.02, .99, .99 → 1, 0, 0; the 2 units left go to the .99 tie: infrastructure and payback;
    // that payback unit is excess, split 34:33 between the funds → maintenance.
    expect(cent(3, 34, 33, 33).slice(2)).toEqual([2, 1]);
  });

  it('minor unit 0 and 3: the split works in whole minor units whatever they are', () => {
    // Yen: a usage fee of 1,001 split 30/20/50; two co-owners put in 60,000 and 40,000 yen.
    const yen = splitCharge(
      agreement({
        price: { usage: 1001, material: 144, technician: 1000, total: 2145, cash: true },
        coOwners: [
          { affiliateId: 'a', contribution: 60_000, received: 0 },
          { affiliateId: 'b', contribution: 40_000, received: 47_999 },
        ],
      }),
    );
    // 300.3, 200.2, 500.5 → 300, 200, 500 and the unit left to payback: 501; 501 × .6 = 300.6 → 301, × .4 = 200.4 → 200;
    // b has 1 yen left to its cap of 48,000, takes 1; the excess 199 → 119.4 and 79.6 → 119 and 80.
    expect(amounts(yen.parts)).toEqual([144, 1000, 300 + 119, 200 + 80, 301, 1]);
    // Dinar (3 decimals): the 0.780 (780 fils) priced in billing-price.test.ts. Usage 625 → 187.5, 125, 312.5
    // → 187, 125, 312 and the unit left to the .5 tie: maintenance before payback → 188.
    const fils = splitCharge(agreement({ price: { usage: 625, material: 154, technician: 1, total: 780, cash: true }, coOwners: [{ affiliateId: 'a', contribution: 1_000_000, received: 0 }] }));
    expect(amounts(fils.parts)).toEqual([154, 1, 188, 125, 312]);
  });

  it('says what is wrong with a bad agreement or price', () => {
    expect(() => splitCharge(agreement({ shares: { maintenance: 30, infrastructure: 20, payback: 40 } }))).toThrow(new BillingError('shares must sum to 100 %, got 30 + 20 + 40 = 90'));
    expect(() => splitCharge(agreement({ shares: { maintenance: 30.5, infrastructure: 19.5, payback: 50 } }))).toThrow(/shares.maintenance must be a whole percentage/);
    expect(() => splitCharge(agreement({ price: { ...PRINT, total: 2891 } }))).toThrow(/price.total 2891 is not usage 1800 \+ material 90 \+ technician 1000/);
    expect(() => splitCharge(agreement({ price: { ...PRINT, usage: -1, total: 1089 } }))).toThrow(/price.usage must be a whole number of minor units ≥ 0, got -1/);
    expect(() => splitCharge(agreement({ coOwners: [{ affiliateId: 'a', contribution: 10.5, received: 0 }] }))).toThrow(/coOwners\[0\].contribution must be a whole number/);
    expect(() => splitCharge(agreement({ coOwners: [{ affiliateId: '', contribution: 10, received: 0 }] }))).toThrow(/coOwners\[0\].affiliateId/);
    expect(() => splitCharge(agreement({ multiplier: '120%' }))).toThrow(/multiplier "120%" is not a decimal number/);
    expect(() => splitCharge(agreement({ excessTo: 'co-owners' as ExcessTo }))).toThrow(/excessTo must be/);
  });

  it('a rounding unit goes to a co-owner who can still take it', () => {
    const owners = [
      { affiliateId: 'a', contribution: 100, received: 120 }, // repaid
      { affiliateId: 'b', contribution: 100, received: 0 },
    ];
    const twoCents = { usage: 2, material: 0, technician: 0, total: 2, cash: true };
    // 30/20/50 of 2 is .6, .4, 1 → 0, 0, 1 and the unit left to maintenance (.6): 1, 0, 1.
    // The payback unit is .5/.5: a would win the tie but is repaid, so b takes it and nothing is excess.
    expect(amounts(splitCharge(agreement({ price: twoCents, coOwners: owners })).parts)).toEqual([0, 0, 1, 0, 0, 1]);
  });

  it('one-cent paybacks and a co-owner who put in one cent: everyone is repaid, one unit per session', () => {
    let owners: CoOwner[] = [
      { affiliateId: 'big', contribution: 1000, received: 0 },
      { affiliateId: 'tiny', contribution: 1, received: 0 },
      { affiliateId: 'mid', contribution: 1000, received: 0 },
    ];
    const twoCents = { usage: 2, material: 0, technician: 0, total: 2, cash: true }; // 1 cent of payback
    let sessions = 0;
    for (let reached = false; !reached && sessions < 5000; sessions++) {
      const r = splitCharge(agreement({ price: twoCents, coOwners: owners }));
      owners = paidOut(owners, r.parts);
      reached = r.poolReached;
    }
    // The tiny remainder never wins against the big ones; once they are repaid it is the only one owed.
    expect(owners.map((o) => o.received)).toEqual([1200, 1, 1200]);
    expect(sessions).toBe(2401);
  });

  it('received beyond the cap (the multiplier was lowered) leaves no room and takes nothing back', () => {
    const owners = PRINTER.map((o) => ({ ...o, received: o.contribution * 2 }));
    const r = splitCharge(agreement({ coOwners: owners }));
    expect(coOwnerAmounts(r.parts)).toEqual(Array<number>(11).fill(0));
    expect(r.poolReached).toBe(true);
  });
});

// ---- Properties ----

const amount = fc.oneof(fc.nat({ max: 100 }), fc.nat({ max: 100_000 }), fc.nat({ max: 10_000_000_000 }));
const priceArb = fc.record({ usage: amount, material: amount, technician: amount, cash: fc.boolean() }).map((p) => ({ ...p, total: p.usage + p.material + p.technician }));
const sharesArb = fc
  .tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }))
  .map(([a, b]) => ({ maintenance: Math.min(a, b), infrastructure: Math.max(a, b) - Math.min(a, b), payback: 100 - Math.max(a, b) }));
const multiplierArb = fc.oneof(fc.constantFrom('1.2', '1', '1.25', '1.333', '2', '0.5'), fc.tuple(fc.nat({ max: 30_000 }), fc.integer({ min: 0, max: 4 })).map(([u, s]) => (u / 10 ** s).toFixed(s)));
/** Co-owners with contributions from nothing to large, received from nothing to their cap (sometimes past it). */
const ownersArb = (multiplier: string, max = 15) =>
  fc.array(
    fc.record({ contribution: fc.oneof(fc.nat({ max: 10 }), fc.nat({ max: 500_000 }), fc.nat({ max: 1_000_000_000 })), progress: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constant(1), fc.constant(1.1)) }),
    { maxLength: max },
  ).map((xs) =>
    xs.map(({ contribution, progress }, i): CoOwner => {
      const cap = capOf(contribution, multiplier);
      return { affiliateId: `co-${i}`, contribution, received: progress > 1 ? cap + 7 : Math.floor(cap * progress) };
    }),
  );
const splitArb = multiplierArb.chain((multiplier) =>
  fc.record({
    price: priceArb,
    shares: sharesArb,
    coOwners: ownersArb(multiplier),
    multiplier: fc.constant(multiplier),
    excessTo: fc.constantFrom<ExcessTo>('funds', 'maintenance', 'infrastructure'),
    pooled: fc.boolean(),
  }),
);

describe('splitCharge properties', () => {
  it('conserves money, never pays a negative part, keeps the documented order (property)', () => {
    fc.assert(
      fc.property(splitArb, (input) => {
        const { parts } = splitCharge(input);
        expect(sum(amounts(parts))).toBe(input.price.total);
        for (const p of parts) expect(Number.isSafeInteger(p.amount) && p.amount >= 0).toBe(true);
        expect(parts.map((p) => p.account)).toEqual(['material', 'technician', 'maintenance', 'infrastructure', ...input.coOwners.map(() => 'co-owner')]);
        expect(parts.slice(4).map((p) => p.affiliateId)).toEqual(input.coOwners.map((o) => o.affiliateId));
        expect([parts[0]!.amount, parts[1]!.amount]).toEqual([input.price.material, input.price.technician]);
      }),
      { numRuns: 3000 },
    );
  });

  it('never pays a co-owner past their cap, nor anything once pooled (property)', () => {
    fc.assert(
      fc.property(splitArb, (input) => {
        const { parts } = splitCharge(input);
        input.coOwners.forEach((o, i) => {
          const paid = parts[4 + i]!.amount;
          const cap = capOf(o.contribution, input.multiplier);
          if (o.received >= cap || input.pooled) expect(paid).toBe(0);
          else expect(o.received + paid).toBeLessThanOrEqual(cap);
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('pays co-owners pro rata: while no cap binds, each gets their exact share rounded down or up (property)', () => {
    fc.assert(
      fc.property(splitArb, (input) => {
        const owners = input.coOwners.map((o) => ({ ...o, received: 0 }));
        const total = sum(owners.map((o) => o.contribution));
        // A multiplier so large that no cap binds.
        const { parts } = splitCharge({ ...input, coOwners: owners, pooled: false, multiplier: '1000000000000' });
        const paid = coOwnerAmounts(parts);
        if (total === 0) {
          expect(paid.every((p) => p === 0)).toBe(true);
          return;
        }
        const payback = sum(paid);
        const exact = (input.price.usage * input.shares.payback) / 100;
        expect(Math.abs(payback - exact)).toBeLessThan(1);
        owners.forEach((o, i) => {
          const diff = BigInt(paid[i]!) * BigInt(total) - BigInt(payback) * BigInt(o.contribution); // (paid − exact share) × total
          expect(diff > -BigInt(total) && diff < BigInt(total)).toBe(true);
        });
      }),
      { numRuns: 2000 },
    );
  });

  it('is deterministic: the same input gives the same parts, whatever ran in between (property)', () => {
    fc.assert(
      fc.property(splitArb, splitArb, (input, other) => {
        const first = splitCharge(input);
        splitCharge(other);
        expect(splitCharge(structuredClone(input))).toEqual(first);
      }),
      { numRuns: 1000 },
    );
  });

  it('two consecutive sessions pay each account what one session would, within rounding, and never past a cap (property)', () => {
    fc.assert(
      fc.property(splitArb, fc.double({ min: 0, max: 1, noNaN: true }), (input, at) => {
        const { usage } = input.price;
        const firstUsage = Math.floor(usage * at);
        const price = (u: number, withRest: boolean): Price => {
          const material = withRest ? input.price.material : 0;
          const technician = withRest ? input.price.technician : 0;
          return { billedMin: 0, usage: u, material, technician, total: u + material + technician, cash: true };
        };
        const one = splitCharge({ ...input, price: price(usage, true) });
        const a = splitCharge({ ...input, price: price(firstUsage, true) });
        const b = splitCharge({ ...input, price: price(usage - firstUsage, false), coOwners: paidOut(input.coOwners, a.parts) });
        const two = a.parts.map((p, i) => p.amount + b.parts[i]!.amount);
        const single = amounts(one.parts);

        expect(sum(two)).toBe(sum(single));
        input.coOwners.forEach((o, i) => {
          const cap = capOf(o.contribution, input.multiplier);
          if (o.received <= cap) expect(o.received + two[4 + i]!).toBeLessThanOrEqual(cap);
          // Each session's payback part and each co-owner's share are rounded: at most 4 units more.
          expect(two[4 + i]!).toBeLessThanOrEqual(single[4 + i]! + 4);
        });
        // A fund gets more only by what the co-owners got less (it is excess), plus rounding: the usage
        // split twice (2 units), the excess differing by the payback part's rounding (2) and split twice (2).
        const shortfall = sum(single.slice(4).map((s, i) => Math.max(0, s - two[4 + i]!)));
        expect(two[2]!).toBeLessThanOrEqual(single[2]! + 6 + shortfall);
        expect(two[3]!).toBeLessThanOrEqual(single[3]! + 6 + shortfall);
        expect(two.slice(0, 2)).toEqual(single.slice(0, 2));
      }),
      { numRuns: 3000 },
    );
  });

  it('every session with at least one unit of payback pays a co-owner still owed (property)', () => {
    fc.assert(
      fc.property(splitArb, (input) => {
        const { parts } = splitCharge(input);
        const payback = largestRemainder(input.price.usage, [input.shares.maintenance, input.shares.infrastructure, input.shares.payback])[2]!;
        const owed = input.coOwners.some((o) => o.contribution > 0 && o.received < capOf(o.contribution, input.multiplier));
        if (payback > 0 && owed && !input.pooled) expect(sum(coOwnerAmounts(parts))).toBeGreaterThan(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('payback ends exactly at the caps: splitting charges until poolReached leaves every co-owner at their cap (property)', () => {
    // Charges whose payback part is at least one unit (smaller ones may pay no co-owner at all),
    // and contributions up to about 50 times a typical payback part, so a run takes tens of sessions.
    const charges = sharesArb
      .filter((s) => s.payback > 0)
      .chain((shares) => {
        const least = Math.ceil(100 / shares.payback);
        const usage = fc.oneof(fc.integer({ min: least, max: least + 10 }), fc.integer({ min: least, max: 500 }), fc.integer({ min: least, max: 100_000 }));
        return fc.tuple(fc.constant(shares), fc.array(usage, { minLength: 1, maxLength: 20 }));
      });
    const lab = charges.chain(([shares, usages]) => {
      const typical = Math.max(1, Math.floor((sum(usages) / usages.length) * (shares.payback / 100)));
      const contribution = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 5 * typical }), fc.integer({ min: 0, max: 50 * typical }));
      return fc.tuple(fc.constant(shares), fc.constant(usages), fc.array(contribution, { minLength: 1, maxLength: 11 }));
    });
    fc.assert(
      fc.property(lab, fc.constantFrom('1.2', '1', '1.25', '1.333'), ([shares, usages, contributions], multiplier) => {
        let owners: CoOwner[] = contributions.map((contribution, i) => ({ affiliateId: `co-${i}`, contribution, received: 0 }));
        const caps = owners.map((o) => capOf(o.contribution, multiplier));
        // Each of these sessions repays at least one unit while anyone is owed: never more sessions than units owed.
        const bound = sum(caps) + 1;
        let sessions = 0;
        let reached = false;
        while (!reached) {
          if (++sessions > bound) throw new Error(`not repaid after ${bound} sessions: ${JSON.stringify(owners)}`);
          const usage = usages[sessions % usages.length]!;
          const r = splitCharge({ price: { usage, material: 0, technician: 0, total: usage, cash: true }, shares, coOwners: owners, multiplier, excessTo: 'funds', pooled: false });
          owners = paidOut(owners, r.parts);
          owners.forEach((o, i) => expect(o.received).toBeLessThanOrEqual(caps[i]!));
          reached = r.poolReached;
        }
        expect(owners.map((o) => o.received)).toEqual(caps);
        const after = splitCharge({ price: { usage: 1000, material: 0, technician: 0, total: 1000, cash: true }, shares, coOwners: owners, multiplier, excessTo: 'funds', pooled: true });
        expect(coOwnerAmounts(after.parts).every((p) => p === 0)).toBe(true);
        expect(after.poolReached).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
