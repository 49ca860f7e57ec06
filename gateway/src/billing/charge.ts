/**
 * A session's charge from everything it depends on, pure: the usage, the tariff, the prices
 * and the co-owners' state when it was charged. The journal keeps these inputs beside the
 * result, so every stored charge can be recomputed and compared (`ovn-gateway billing verify`).
 */
import { priceSession, type Price, type SessionUsage, type Tariff } from './price.js';
import { splitCharge, type CoOwner, type ExcessTo, type Part, type Shares } from './split.js';

export interface ChargeInputs {
  usage: SessionUsage;
  /** null: the session's use type has no tariff at this tool (nothing charged, nothing valued). */
  tariff: Tariff | null;
  shares: Shares;
  minorUnit: number;
  materialPricePerGram: string | null;
  technicianRatePerHour: string;
  /** The co-owners with what each had received before this charge. */
  coOwners: CoOwner[];
  multiplier: string;
  excessTo: ExcessTo;
  pooled: boolean;
}

export interface Charge {
  price: Price;
  parts: Part[];
  /** This charge repaid the last co-owner: the tool now belongs to the pool of shareables. */
  poolReached: boolean;
}

const NO_PRICE = (cash: boolean): Price => ({ billedMin: 0, usage: 0, material: 0, technician: 0, total: 0, cash });

export function computeCharge(i: ChargeInputs): Charge {
  const price = i.tariff
    ? priceSession(i.usage, i.tariff, { minorUnit: i.minorUnit, materialPricePerGram: i.materialPricePerGram, technicianRatePerHour: i.technicianRatePerHour })
    : NO_PRICE(false);
  const split = splitCharge({ price, shares: i.shares, coOwners: i.coOwners, multiplier: i.multiplier, excessTo: i.excessTo, pooled: i.pooled });
  return { price, parts: split.parts, poolReached: i.coOwners.length > 0 && !i.pooled && price.cash && split.poolReached };
}

/** A stable key per part, to subtract one split from another. */
export const partKey = (p: Part) => (p.account === 'co-owner' ? `co-owner:${p.affiliateId}` : p.account);

/** after − before, part by part; parts that do not change are left out. */
export function partsDelta(before: readonly Part[], after: readonly Part[]): Part[] {
  const delta = new Map<string, Part>();
  for (const p of after) delta.set(partKey(p), { ...p });
  for (const p of before) {
    const d = delta.get(partKey(p));
    if (d) d.amount -= p.amount;
    else delta.set(partKey(p), { ...p, amount: -p.amount });
  }
  return [...delta.values()].filter((p) => p.amount !== 0);
}

/** before + delta, part by part. */
export function partsPlus(before: readonly Part[], delta: readonly Part[]): Part[] {
  const sum = new Map<string, Part>();
  for (const p of [...before, ...delta]) {
    const s = sum.get(partKey(p));
    if (s) s.amount += p.amount;
    else sum.set(partKey(p), { ...p });
  }
  return [...sum.values()];
}
