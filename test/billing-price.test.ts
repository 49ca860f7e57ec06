import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BillingError, decimalString, floorDiv, parseDecimal, roundHalfUp, roundHalfUpSafe, toMinor } from '../gateway/src/billing/money.js';
import { formatMinor } from '../ledger-client/src/money.js';
import { priceSession, type PriceOptions, type SessionUsage, type Tariff } from '../gateway/src/billing/price.js';

const commercial: Tariff = { hourlyRate: '8.00', billedTime: 'session', incrementMin: 15, minimumCharge: '2.00', chargeMaterial: true, cash: true };
const cents: PriceOptions = { minorUnit: 2, materialPricePerGram: '0.025', technicianRatePerHour: '30.00' };
const use = (over: Partial<SessionUsage> = {}): SessionUsage => ({ durationS: 0, activeS: 0, filamentG: 0, technicianMin: 0, ownMaterial: false, ...over });
const MAX = Number.MAX_SAFE_INTEGER;

describe('money', () => {
  it('parses decimal strings exactly', () => {
    expect(parseDecimal('8.50')).toEqual({ units: 850n, scale: 2 });
    expect(parseDecimal('0.025')).toEqual({ units: 25n, scale: 3 });
    expect(parseDecimal('1.2')).toEqual({ units: 12n, scale: 1 });
    expect(parseDecimal('12')).toEqual({ units: 12n, scale: 0 });
    expect(parseDecimal('0.000000000000001')).toEqual({ units: 1n, scale: 15 });
  });

  it.each([
    ['8,50', 'rate "8,50" is not a decimal number: write 8.50'],
    ['1,234.50', 'rate "1,234.50" is not a decimal number: write 1234.50 (no thousands separators; the decimal point is ".")'],
    [' 8.50', 'rate " 8.50" is not a decimal number: write 8.50 (no spaces)'],
    ['.5', 'rate ".5" is not a decimal number: write 0.5'],
    ['5.', 'rate "5." is not a decimal number: write 5'],
    ['1e3', 'rate "1e3" is not a decimal number: write digits with at most one decimal point, e.g. 8.50'],
    ['-1.00', 'rate "-1.00" is negative: write 0 or more'],
    ['', 'rate is empty: write a number such as 8.50'],
    ['0.0000000000000001', 'rate "0.0000000000000001" has 16 decimals; at most 15 are kept exactly'],
  ])('refuses %j with a message that says what to write', (s, message) => {
    expect(() => parseDecimal(s, 'rate')).toThrow(new BillingError(message));
  });

  it('refuses a number where a string is due: it may already have lost digits', () => {
    expect(() => parseDecimal(8.5 as unknown as string, 'tariff.hourlyRate')).toThrow(/tariff.hourlyRate must be a decimal number written as a string, e.g. "8.50"/);
  });

  it('converts amounts to minor units exactly, refusing more decimals than the currency has', () => {
    expect(toMinor('1234.56', 2)).toBe(123456);
    expect(toMinor('8.5', 2)).toBe(850);
    expect(toMinor('8.500', 2)).toBe(850); // trailing zeros are no extra precision
    expect(toMinor('1500', 0)).toBe(1500);
    expect(toMinor('0.125', 3)).toBe(125);
    expect(toMinor('2', 4)).toBe(20000);
    expect(() => toMinor('8.505', 2, 'tariff.minimumCharge')).toThrow(new BillingError('tariff.minimumCharge "8.505" has more decimals than the currency\'s 2: write e.g. 8.51'));
    expect(() => toMinor('2.5', 0)).toThrow(/has more decimals than the currency's 0: write e.g. 3/);
    expect(() => toMinor('1', 5)).toThrow(/minorUnit must be an integer from 0 to 4/);
    expect(() => toMinor('90071992547409.92', 2)).toThrow(/too large/);
    expect(toMinor('90071992547409.91', 2)).toBe(MAX);
  });

  it('formats minor units as a decimal string', () => {
    expect(formatMinor(123456, 2)).toBe('1234.56');
    expect(formatMinor(5, 2)).toBe('0.05');
    expect(formatMinor(0, 2)).toBe('0.00');
    expect(formatMinor(-5, 2)).toBe('-0.05');
    expect(formatMinor(1500, 0)).toBe('1500');
    expect(formatMinor(7, 3)).toBe('0.007');
    expect(formatMinor(10n ** 20n, 4)).toBe('10000000000000000.0000');
    expect(() => formatMinor(1.5, 2)).toThrow(/safe integer/);
  });

  it('toMinor and formatMinor are inverse (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.nat({ max: MAX }), (mu, minor) => {
        expect(toMinor(formatMinor(minor, mu), mu)).toBe(minor);
      }),
    );
  });

  it('rounds halves up (away from zero for negatives)', () => {
    expect([5n, 14n, 15n, 16n, 25n, 0n].map((n) => roundHalfUp(n, 10n))).toEqual([1n, 1n, 2n, 2n, 3n, 0n]);
    expect([-5n, -14n, -15n, -25n].map((n) => roundHalfUp(n, 10n))).toEqual([-1n, -1n, -2n, -3n]);
    expect(roundHalfUp(1n, 3n)).toBe(0n);
    expect(roundHalfUp(2n, 3n)).toBe(1n);
    expect(() => roundHalfUp(1n, 0n)).toThrow(RangeError);
  });

  it('roundHalfUp is the nearest integer, halves up; the Number versions agree up to 2^53 (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 60n }), fc.bigInt({ min: 1n, max: 2n ** 60n }), (num, den) => {
        const r = roundHalfUp(num, den);
        const twice = 2n * (num - r * den); // 2 × (exact − rounded) × den lies in [−den, den)
        expect(twice >= -den && twice < den).toBe(true);
      }),
    );
    const near53 = fc.oneof(fc.nat({ max: MAX }), fc.integer({ min: MAX - 100_000, max: MAX }));
    fc.assert(
      fc.property(near53, fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: MAX })), (num, den) => {
        expect(roundHalfUpSafe(num, den)).toBe(Number(roundHalfUp(BigInt(num), BigInt(den))));
        expect(floorDiv(num, den)).toBe(Number(BigInt(num) / BigInt(den)));
      }),
      { numRuns: 5000 },
    );
    // Quotients just below a whole number, where a rounded division would land on it if it could.
    for (const den of [3, 7, 10, 1000, 999_999_937, 2 ** 26 + 1]) {
      const num = MAX - (MAX % den) - 1; // k × den − 1
      expect(floorDiv(num, den)).toBe(Number(BigInt(num) / BigInt(den)));
    }
  });

  it('decimalString validates config values and keeps them as strings', () => {
    const schema = z.object({ rate: decimalString });
    expect(schema.parse({ rate: '8.50' })).toEqual({ rate: '8.50' });
    const bad = (rate: unknown) => schema.safeParse({ rate }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(bad('8,50')).toEqual(['rate: "8,50" is not a decimal number: write 8.50']);
    expect(bad(8.5)).toEqual(['rate: write the number as a string in quotes, e.g. "8.50": a YAML or JSON number may already have lost digits']);
    expect(bad('-2')).toEqual(['rate: "-2" is negative: write 0 or more']);
  });
});

describe('priceSession', () => {
  it('a 2 h 10 min commercial print: 8.00/h in 15-min increments, 35.89 g at 0.025/g, 20 min technician at 30.00/h', () => {
    const p = priceSession(use({ durationS: 7800, activeS: 7020, filamentG: 35.89, technicianMin: 20 }), commercial, cents);
    // 130 min → 9 increments = 135 min; 8.00 × 135 / 60 = 18.00
    // 35.89 g × 0.025 = 0.89725 → 89.725 cents → 90
    // 20 min × 30.00 / 60 = 10.00
    expect(p).toEqual({ billedMin: 135, usage: 1800, material: 90, technician: 1000, total: 2890, cash: true });
  });

  it('bills active time when the tariff says so', () => {
    // 7020 s = 117 min → 8 increments = 120 min → 16.00
    const p = priceSession(use({ durationS: 7800, activeS: 7020 }), { ...commercial, billedTime: 'active' }, cents);
    expect(p).toMatchObject({ billedMin: 120, usage: 1600, total: 1600 });
  });

  it.each([
    [0, 0],
    [0.001, 15],
    [1, 15],
    [900, 15],
    [900.0000000001, 15], // float noise is not another increment
    [900.001, 30],
    [900.1, 30],
    [1800, 30],
  ])('rounds %s s up to whole increments: %s min', (durationS, billedMin) => {
    expect(priceSession(use({ durationS }), commercial, cents).billedMin).toBe(billedMin);
  });

  it('applies the minimum charge only when time is billed', () => {
    const perMinute: Tariff = { ...commercial, incrementMin: 1 };
    // 5 min × 8.00 / 60 = 0.6667 → 67 cents, raised to 2.00
    expect(priceSession(use({ durationS: 300 }), perMinute, cents)).toMatchObject({ billedMin: 5, usage: 200 });
    expect(priceSession(use({ durationS: 300 }), { ...perMinute, minimumCharge: '0.50' }, cents)).toMatchObject({ usage: 67 });
    expect(priceSession(use({ durationS: 0, filamentG: 10 }), perMinute, cents)).toMatchObject({ billedMin: 0, usage: 0, material: 25, total: 25 });
  });

  it('rounds half cents up, exactly where binary floats would not', () => {
    const perMinute: Tariff = { ...commercial, incrementMin: 1, minimumCharge: '0' };
    const price = (rate: string, over: Partial<SessionUsage>, opts = cents) => priceSession(use(over), { ...perMinute, hourlyRate: rate }, opts);
    expect(price('0.30', { durationS: 60 }).usage).toBe(1); // 0.005 → 0.5 cent → 1
    expect(price('0.18', { durationS: 60 }).usage).toBe(0); // 0.3 cent → 0
    expect(price('0.90', { durationS: 60 }).usage).toBe(2); // 1.5 cents → 2
    expect(price('8.50', { durationS: 60 }).usage).toBe(14); // 14.1667 cents → 14
    // 1.4 g × 0.025 = 3.5 cents → 4 (1.4 * 0.025 * 100 in floats is 3.4999999999999996)
    expect(price('0', { filamentG: 1.4 }).material).toBe(4);
    expect(price('0', { filamentG: 0.2 }).material).toBe(1); // 0.5 cent → 1
    expect(price('0', { filamentG: 0.199 }).material).toBe(0); // 0.4975 cent → 0
    expect(price('0', { technicianMin: 1 }, { ...cents, technicianRatePerHour: '0.30' }).technician).toBe(1); // 0.5 cent → 1
  });

  it('charges no material when the affiliate brought their own, the tariff does not charge it or no price is set', () => {
    const s = use({ durationS: 3600, filamentG: 100 });
    expect(priceSession(s, commercial, cents).material).toBe(250);
    expect(priceSession({ ...s, ownMaterial: true }, commercial, cents).material).toBe(0);
    expect(priceSession(s, { ...commercial, chargeMaterial: false }, cents).material).toBe(0);
    expect(priceSession(s, commercial, { ...cents, materialPricePerGram: null }).material).toBe(0);
  });

  it('project use: the same figures, as value with no money owed', () => {
    const s = use({ durationS: 7800, filamentG: 35.89, technicianMin: 20 });
    expect(priceSession(s, { ...commercial, cash: false }, cents)).toEqual({ ...priceSession(s, commercial, cents), cash: false });
  });

  it('a currency without decimals (minor unit 0)', () => {
    const yen: PriceOptions = { minorUnit: 0, materialPricePerGram: '4', technicianRatePerHour: '3000' };
    const t: Tariff = { ...commercial, hourlyRate: '1200', incrementMin: 1, minimumCharge: '300' };
    // 50 min × 1200 / 60 = 1000; 35.89 g × 4 = 143.56 → 144; 20 min × 3000 / 60 = 1000
    expect(priceSession(use({ durationS: 3000, filamentG: 35.89, technicianMin: 20 }), t, yen)).toEqual({ billedMin: 50, usage: 1000, material: 144, technician: 1000, total: 2144, cash: true });
    // 1 min × 30 / 60 = 0.5 → 1 (then the minimum)
    expect(priceSession(use({ durationS: 60 }), { ...t, hourlyRate: '30', minimumCharge: '0' }, yen).usage).toBe(1);
    expect(() => priceSession(use({ durationS: 60 }), { ...t, minimumCharge: '2.5' }, yen)).toThrow(/tariff.minimumCharge "2.5" has more decimals than the currency's 0/);
  });

  it('a currency with three decimals (minor unit 3)', () => {
    const fils: PriceOptions = { minorUnit: 3, materialPricePerGram: '0.0125', technicianRatePerHour: '0.030' };
    const t: Tariff = { ...commercial, hourlyRate: '2.500', minimumCharge: '0.100' };
    // 7 min → 15 min × 2.500 / 60 = 0.625; 12.345 g × 0.0125 = 0.1543125 → 154; 1 min × 0.030 / 60 = 0.0005 → 0.5 → 1
    expect(priceSession(use({ durationS: 420, filamentG: 12.345, technicianMin: 1 }), t, fils)).toEqual({ billedMin: 15, usage: 625, material: 154, technician: 1, total: 780, cash: true });
  });

  it('says what is wrong with a bad tariff or measurement', () => {
    const s = use({ durationS: 60 });
    expect(() => priceSession(s, { ...commercial, hourlyRate: '8,50' }, cents)).toThrow(new BillingError('tariff.hourlyRate "8,50" is not a decimal number: write 8.50'));
    expect(() => priceSession(s, { ...commercial, minimumCharge: '2.005' }, cents)).toThrow(/tariff.minimumCharge "2.005" has more decimals than the currency's 2: write e.g. 2.01/);
    // a bad rate is found on the first session, not only on one that needs it
    expect(() => priceSession(s, commercial, { ...cents, technicianRatePerHour: '30 $' })).toThrow(/technicianRatePerHour "30 \$" is not a decimal number/);
    expect(() => priceSession(s, { ...commercial, incrementMin: 0 }, cents)).toThrow(/incrementMin must be a whole number of minutes ≥ 1, got 0/);
    expect(() => priceSession(s, { ...commercial, incrementMin: 1.5 }, cents)).toThrow(/incrementMin/);
    expect(() => priceSession(use({ durationS: -1 }), commercial, cents)).toThrow(/durationS must be a finite number ≥ 0, got -1/);
    expect(() => priceSession(use({ filamentG: NaN }), commercial, cents)).toThrow(/filamentG must be a finite number ≥ 0, got NaN/);
    expect(() => priceSession(use({ activeS: Infinity }), { ...commercial, billedTime: 'active' }, cents)).toThrow(/activeS/);
    expect(() => priceSession(s, commercial, { ...cents, minorUnit: 5 })).toThrow(/minorUnit must be an integer from 0 to 4/);
  });

  // An independent statement of every rule in BigInt, to compare with for any rates and amounts.
  const decimal = fc
    .tuple(fc.bigInt({ min: 0n, max: 10n ** 18n }), fc.integer({ min: 0, max: 15 }))
    .map(([units, scale]) => (scale === 0 ? units.toString() : `${units / 10n ** BigInt(scale)}.${(units % 10n ** BigInt(scale)).toString().padStart(scale, '0')}`));
  const smallDecimal = fc.tuple(fc.nat({ max: 100_000 }), fc.integer({ min: 0, max: 4 })).map(([u, s]) => (s === 0 ? String(u) : (u / 10 ** s).toFixed(s)));

  function reference(u: SessionUsage, t: Tariff, o: PriceOptions) {
    const mu = BigInt(o.minorUnit);
    const frac = (s: string) => {
      const d = parseDecimal(s);
      return { n: d.units * 10n ** mu, d: 10n ** BigInt(d.scale) };
    };
    const ms = BigInt(Math.round((t.billedTime === 'session' ? u.durationS : u.activeS) * 1000));
    const inc = BigInt(t.incrementMin) * 60_000n;
    const billedMin = ((ms + inc - 1n) / inc) * BigInt(t.incrementMin);
    const r = frac(t.hourlyRate);
    let usage = roundHalfUp(r.n * billedMin, r.d * 60n);
    const min = BigInt(toMinor(t.minimumCharge, o.minorUnit));
    if (billedMin > 0n && usage < min) usage = min;
    let material = 0n;
    if (t.chargeMaterial && !u.ownMaterial && o.materialPricePerGram !== null) {
      const g = frac(o.materialPricePerGram);
      material = roundHalfUp(g.n * BigInt(Math.round(u.filamentG * 1000)), g.d * 1000n);
    }
    const tr = frac(o.technicianRatePerHour);
    const technician = roundHalfUp(tr.n * BigInt(Math.round(u.technicianMin * 60)), tr.d * 3600n);
    return { billedMin: Number(billedMin), usage: Number(usage), material: Number(material), technician: Number(technician), total: Number(usage + material + technician), cash: t.cash };
  }

  const session = fc.record({
    durationS: fc.integer({ min: 0, max: 20 * 3600 * 10 }).map((d) => d / 10),
    activeS: fc.nat({ max: 20 * 3600 }),
    filamentG: fc.integer({ min: 0, max: 2_000_000 }).map((mg) => mg / 1000),
    technicianMin: fc.nat({ max: 600 }),
    ownMaterial: fc.boolean(),
  });

  it('agrees with a BigInt statement of the rules for any rates and currencies, Number and BigInt paths alike (property)', () => {
    fc.assert(
      fc.property(
        session,
        fc.integer({ min: 0, max: 4 }),
        fc.record({ hourlyRate: fc.oneof(decimal, smallDecimal), billedTime: fc.constantFrom('session', 'active'), incrementMin: fc.integer({ min: 1, max: 60 }), minimumCharge: fc.nat({ max: 10_000 }), chargeMaterial: fc.boolean(), cash: fc.boolean() }),
        fc.option(fc.oneof(decimal, smallDecimal)),
        fc.oneof(decimal, smallDecimal),
        (u, minorUnit, t, perGram, techRate) => {
          const tariff: Tariff = { ...t, minimumCharge: formatMinor(t.minimumCharge, minorUnit) };
          const opts: PriceOptions = { minorUnit, materialPricePerGram: perGram, technicianRatePerHour: techRate };
          const want = reference(u, tariff, opts);
          if (![want.usage, want.material, want.technician, want.total].every(Number.isSafeInteger)) {
            expect(() => priceSession(u, tariff, opts)).toThrow(/too large/);
            return;
          }
          expect(priceSession(u, tariff, opts)).toEqual(want);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('billed time covers the time used by less than one increment, and more time never costs less (property)', () => {
    fc.assert(
      fc.property(session, fc.integer({ min: 0, max: 36_000 }), fc.integer({ min: 1, max: 60 }), fc.boolean(), (u, moreDs, incrementMin, active) => {
        const t: Tariff = { ...commercial, incrementMin, billedTime: active ? 'active' : 'session' };
        const p = priceSession(u, t, cents);
        const usedMs = Math.round((active ? u.activeS : u.durationS) * 1000);
        expect(p.billedMin % incrementMin).toBe(0);
        expect(p.billedMin * 60_000).toBeGreaterThanOrEqual(usedMs);
        expect(p.billedMin * 60_000 - usedMs).toBeLessThan(incrementMin * 60_000);
        expect(p.total).toBe(p.usage + p.material + p.technician);
        const longer = priceSession({ ...u, durationS: u.durationS + moreDs / 10, activeS: u.activeS + Math.floor(moreDs / 10) }, t, cents);
        expect(longer.usage).toBeGreaterThanOrEqual(p.usage);
      }),
    );
  });
});
