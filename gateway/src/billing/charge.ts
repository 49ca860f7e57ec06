/**
 * A session's charge from everything it depends on, pure: the usage, the tariff, the prices
 * and the co-owners' state when it was charged. The journal keeps these inputs beside the
 * result, so every stored charge can be recomputed and compared (`ovn-gateway billing verify`).
 */
import { priceSession, type Price, type SessionUsage, type Tariff } from './price.js';
import { splitCharge, type Allocation, type CoOwner, type ExcessTo, type FundCarry, type Part, type SelfPayback, type Shares } from './split.js';

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
  /**
   * How the cents were allocated (split.ts). Absent in charges made before cumulative-fair
   * allocation: they recompute the way they were made (1); every new charge says 2.
   */
  allocation?: Allocation;
  /** Allocation 2: the tool's fund carry before this charge. */
  fundCarry?: FundCarry;
  /** Who used the tool, and the agreement's policy on co-owners paid from their own sessions. */
  payer?: string;
  selfPayback?: SelfPayback;
}

export interface Charge {
  price: Price;
  parts: Part[];
  /** This charge repaid the last co-owner: the tool now belongs to the pool of shareables. */
  poolReached: boolean;
  /** Allocation 2: the tool's fund carry after this charge. */
  fundCarry?: FundCarry;
}

const NO_PRICE = (cash: boolean): Price => ({ billedMin: 0, usage: 0, material: 0, technician: 0, total: 0, cash });

export function computeCharge(i: ChargeInputs): Charge {
  const price = i.tariff
    ? priceSession(i.usage, i.tariff, { minorUnit: i.minorUnit, materialPricePerGram: i.materialPricePerGram, technicianRatePerHour: i.technicianRatePerHour })
    : NO_PRICE(false);
  const split = splitCharge({
    price,
    shares: i.shares,
    coOwners: i.coOwners,
    multiplier: i.multiplier,
    excessTo: i.excessTo,
    pooled: i.pooled,
    ...(i.allocation !== undefined && { allocation: i.allocation }),
    ...(i.fundCarry !== undefined && { fundCarry: i.fundCarry }),
    ...(i.payer !== undefined && { payer: i.payer }),
    ...(i.selfPayback !== undefined && { selfPayback: i.selfPayback }),
  });
  const poolReached = i.coOwners.length > 0 && !i.pooled && price.cash && split.poolReached;
  // A split of value (no cash) moves no money: it leaves the carry where it was.
  const fundCarry = split.fundCarry && (price.cash ? split.fundCarry : [...(i.fundCarry ?? [0, 0, 0])] as FundCarry);
  return fundCarry ? { price, parts: split.parts, poolReached, fundCarry } : { price, parts: split.parts, poolReached };
}

/**
 * What a charge computed from these inputs adds to its tool's fund carry (0 0 0 for a charge of
 * allocation 1, which carries nothing).
 */
export function carryAdded(inputs: ChargeInputs | null): FundCarry {
  if (!inputs || inputs.allocation !== 2) return [0, 0, 0];
  const after = computeCharge(inputs).fundCarry!;
  const before = inputs.fundCarry ?? [0, 0, 0];
  return [after[0] - before[0], after[1] - before[1], after[2] - before[2]];
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
