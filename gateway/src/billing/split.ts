/**
 * Who gets what of a session's charge: material, technician, the tool's maintenance fund,
 * the infrastructure fund, and the co-owners being paid back. Pure and exact: integer minor
 * units in, integer minor units out, the parts always summing to the charge.
 *
 * Rules (DOMAIN.md §1, the co-owner agreement of seed 004):
 * - material and technician go to their own accounts, whole;
 * - the usage fee is split into maintenance, infrastructure and payback by the agreement's
 *   percentages, by largest remainder (ties: maintenance, infrastructure, payback);
 * - the payback part is shared among all co-owners pro rata to their contributions, by largest
 *   remainder: shares rounded down, then the units left go one each to the largest remainders
 *   among the co-owners who can still take a unit (ties: the co-owners' order in the agreement);
 *   each co-owner takes at most what is left of their cap (cap = multiplier × contribution,
 *   rounded down to the minor unit);
 * - what they cannot take is the excess, and goes where `excessTo` says. The whole payback
 *   part is excess when the tool is already pooled or has no co-owners (or none contributed).
 * A capped co-owner's share is excess rather than shared among the others, so how usage is cut
 * into sessions does not change who gets what beyond a few rounding units. Rounding units go
 * only to co-owners still owed, so every session whose payback part is at least one unit pays
 * at least one unit to a co-owner still owed: a run of such sessions always repays everyone.
 * (A usage fee too small to leave one unit of payback, e.g. 1 cent split 0/50/50, pays none.)
 *
 * That is allocation 1, each session rounded on its own. Allocation 2 (every charge made now)
 * rounds the running totals instead: the usage fee's parts with the remainders carried from the
 * tool's earlier charges (allocateFunds), the payback among the co-owners by what they have
 * received so far (allocateCumulative), so nobody gains from being listed first, ever.
 */
import { BillingError, floorDiv, parseDecimal } from './money.js';
import type { Price } from './price.js';

export type Account = 'material' | 'technician' | 'maintenance' | 'infrastructure' | 'co-owner';

export interface Part {
  account: Account;
  /** Only on co-owner parts. */
  affiliateId?: string;
  /** Minor units, ≥ 0. */
  amount: number;
}

/** Integer percentages of the usage fee, summing to 100. */
export interface Shares {
  maintenance: number;
  infrastructure: number;
  payback: number;
}

export interface CoOwner {
  affiliateId: string;
  /** What they put in, minor units. */
  contribution: number;
  /** What they have been paid back so far, minor units. */
  received: number;
}

/** Where the excess goes: 'funds' = maintenance and infrastructure pro rata to their percentages. */
export type ExcessTo = 'funds' | 'maintenance' | 'infrastructure';

/**
 * How the cents are allocated. 1: each session on its own (largest remainder, ties to the first
 * listed), how charges were computed before version 2 and still are when their inputs say so.
 * 2: cumulative-fair (allocateCumulative, allocateFunds): every co-owner's payback so far stays
 * within one minor unit of their exact pro-rata share of all the payback so far, and each of the
 * usage fee's three parts within one unit of its exact percentage of all the usage fees so far.
 */
export type Allocation = 1 | 2;

/** Whether a co-owner is paid back from a session of their own ('allowed') or their share goes to the other co-owners ('redistribute'). */
export type SelfPayback = 'allowed' | 'redistribute';

/**
 * The remainders carried by the cumulative-fair split of the usage fee: for maintenance,
 * infrastructure and payback, the exact share of all usage fees so far less what was
 * allocated, in hundredths of a minor unit (they sum to 0; each within ±100 after every split).
 */
export type FundCarry = [number, number, number];

export interface SplitInput {
  price: Pick<Price, 'usage' | 'material' | 'technician' | 'total' | 'cash'>;
  /** Absent: 1. */
  allocation?: Allocation;
  /** Allocation 2: the carry before this split (absent: all 0). */
  fundCarry?: Readonly<FundCarry>;
  /** Who used the tool (for selfPayback). */
  payer?: string;
  /** Absent: 'allowed'. */
  selfPayback?: SelfPayback;
  shares: Shares;
  /** In the agreement's order, which breaks rounding ties. */
  coOwners: readonly CoOwner[];
  /** Decimal string: a co-owner is paid back up to multiplier × contribution ("1.2": contribution + 20 %). */
  multiplier: string;
  excessTo: ExcessTo;
  /** The tool is already in the pool of shareables: nobody is paid back any more. */
  pooled: boolean;
}

export interface SplitResult {
  /**
   * Always in this order, every part present even when 0 (a fixed shape: co-owner i is
   * parts[4 + i]): material, technician, maintenance, infrastructure, then one part per
   * co-owner in the agreement's order. The excess is inside the maintenance and infrastructure parts.
   * The amounts sum to price.total. When price.cash is false they are the same split of the
   * session's value: what the use was worth to each account, with no money owed.
   */
  parts: Part[];
  /**
   * After this split every co-owner has received their cap and the tool was not pooled yet:
   * it now belongs in the pool of shareables. A split of value (not cash) pays nobody, so it
   * only reports caps already reached. With no co-owners at all it is true (nobody to repay).
   */
  poolReached: boolean;
  /** Allocation 2: the carry after this split. */
  fundCarry?: FundCarry;
}

const MAX = Number.MAX_SAFE_INTEGER;

const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkAmount(v: unknown, what: string): asserts v is number {
  if (!isAmount(v)) throw new BillingError(`${what} must be a whole number of minor units ≥ 0, got ${String(v)}`);
}

/**
 * Splits `total` units in proportion to `weights` by largest remainder: each share is its
 * exact value rounded down, then the units left (fewer than there are shares) go one each to
 * the largest fractional remainders. Equal remainders: the earlier weight first. So every share
 * is its exact value rounded down or up, and the shares sum to `total`.
 * Weights are non-negative safe integers; their sum must be positive unless `total` is 0.
 */
export function largestRemainder(total: number, weights: readonly number[]): number[] {
  checkAmount(total, 'the total to split');
  const n = weights.length;
  const s = scratchFor(n);
  let sum = 0;
  let maxW = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i];
    checkAmount(w, 'a weight');
    s.weights[i] = w;
    sum += w;
    if (w > maxW) maxW = w;
  }
  if (!Number.isSafeInteger(sum)) throw new BillingError('the weights sum beyond 2^53');
  if (total > 0 && sum === 0) throw new BillingError(`cannot split ${total} units by weights that are all 0`);
  apportion(total, s.weights, n, sum, maxW, s.out);
  const shares = new Array<number>(n);
  for (let i = 0; i < n; i++) shares[i] = s.out[i]!;
  return shares;
}

/**
 * Working space for one split. Splitting is synchronous and never re-entered, and nothing in
 * it outlives the call, so one set of arrays serves every split (no allocation per call).
 * Float64Array holds every safe integer exactly.
 */
interface Scratch {
  weights: Float64Array;
  room: Float64Array;
  out: Float64Array;
  rem: Float64Array;
  /** What each co-owner has received, for the cumulative-fair allocation. */
  received: Float64Array;
  /** Upper bound per co-owner in the cumulative-fair allocation. */
  up: Float64Array;
}

const newScratch = (n: number): Scratch => ({ weights: new Float64Array(n), room: new Float64Array(n), out: new Float64Array(n), rem: new Float64Array(n), received: new Float64Array(n), up: new Float64Array(n) });
let scratch = newScratch(16);

function scratchFor(n: number): Scratch {
  if (scratch.weights.length < n) scratch = newScratch(Math.max(n, 2 * scratch.weights.length));
  return scratch;
}

/**
 * largestRemainder without the checks, into out[0..n): the weights are checked, sum > 0 or
 * total 0. With `room`, a unit left after rounding down goes only to a share still below its
 * room, and units nobody can take are not handed out (the caller treats them as excess).
 */
function apportion(total: number, w: Float64Array, n: number, sum: number, maxW: number, out: Float64Array, room: Float64Array | null = null): void {
  if (total === 0) {
    out.fill(0, 0, n);
    return;
  }
  // Number arithmetic is exact while every product total × weight stays below 2^53; past that, BigInt.
  if (total * maxW > MAX) return apportionBig(total, w, n, sum, out, room);
  const rem = scratch.rem;
  let left = total;
  for (let i = 0; i < n; i++) {
    const p = total * w[i]!;
    const q = floorDiv(p, sum);
    out[i] = q;
    rem[i] = p - q * sum;
    left -= q;
  }
  // `left` < n, and more than `left` remainders are positive: without `room` each pass finds one.
  for (; left > 0; left--) {
    let best = -1;
    let bestR = 0;
    for (let i = 0; i < n; i++) {
      if (rem[i]! > bestR && (room === null || out[i]! < room[i]!)) {
        bestR = rem[i]!;
        best = i;
      }
    }
    if (best < 0) return;
    out[best]!++;
    rem[best] = 0;
  }
}

function apportionBig(total: number, w: Float64Array, n: number, sum: number, out: Float64Array, room: Float64Array | null): void {
  const t = BigInt(total);
  const s = BigInt(sum);
  const rem = new Array<bigint>(n);
  let left = t;
  for (let i = 0; i < n; i++) {
    const p = t * BigInt(w[i]!);
    const q = p / s;
    out[i] = Number(q);
    rem[i] = p % s;
    left -= q;
  }
  for (; left > 0n; left--) {
    let best = -1;
    let bestR = 0n;
    for (let i = 0; i < n; i++) {
      if (rem[i]! > bestR && (room === null || out[i]! < room[i]!)) {
        bestR = rem[i]!;
        best = i;
      }
    }
    if (best < 0) return;
    out[best]!++;
    rem[best] = 0n;
  }
}

/** floor(a × b / d) for safe integers a, b ≥ 0 and d ≥ 1, exactly (BigInt when a × b passes 2^53). */
function mulDivFloor(a: number, b: number, d: number): number {
  const p = a * b;
  if (p <= MAX) return floorDiv(p, d);
  return Number((BigInt(a) * BigInt(b)) / BigInt(d));
}

/** ceil(a × b / d), as mulDivFloor. */
function mulDivCeil(a: number, b: number, d: number): number {
  const p = a * b;
  if (p <= MAX) {
    const q = floorDiv(p, d);
    return q * d < p ? q + 1 : q;
  }
  const bd = BigInt(d);
  return Number((BigInt(a) * BigInt(b) + bd - 1n) / bd);
}

/** a × b compared with c × d, exactly: negative, 0 or positive. */
function cmpProducts(a: number, b: number, c: number, d: number): number {
  const l = a * b;
  const r = c * d;
  if (l <= MAX && r <= MAX) return l - r;
  const bl = BigInt(a) * BigInt(b);
  const br = BigInt(c) * BigInt(d);
  return bl < br ? -1 : bl > br ? 1 : 0;
}

/**
 * Unit ka of a (weight ca) goes before unit kb of b: due first (ka / ca < kb / cb); when both are
 * due at the same point, the one further below its exact share now (at `after` of `sum`): that
 * is the smaller weight while the point is ahead, the larger once it has passed.
 */
function dueBefore(ka: number, ca: number, kb: number, cb: number, after: number, sum: number): boolean {
  const c = cmpProducts(ka, cb, kb, ca);
  if (c !== 0) return c < 0;
  if (ca === cb) return false;
  const ahead = cmpProducts(after, ca, ka, sum) < 0;
  return ahead ? ca < cb : ca > cb;
}

/**
 * The cumulative-fair allocation of `total` units among co-owners with weights `w` (their
 * contributions, summing to `sum` > 0) who have received `got` so far and can take at most
 * `room` more each; writes each one's units to `out` and returns how many were handed out
 * (fewer than `total` only when caps leave no room: the rest is excess).
 *
 * With P what they have all received and P' = P + handed out, co-owner i's exact share is
 * T'i = P' × wi / sum; they end with floor(T'i) or ceil(T'i) (within one unit of it). The units
 * are handed out as unit jobs by earliest deadline: i's k-th unit is due when their exact share
 * reaches k, i.e. at P = k × sum / wi, so the order is by k / wi (ties: whoever is further below
 * their exact share, then the agreement's order).
 * First everyone who is behind floor(T'i) is brought up to it, then the units left go to those
 * whose next unit is due first, at most ceil(T'i). Earliest-deadline-first is optimal for unit
 * jobs with release times and deadlines: if any sequence of allocations keeps everyone within
 * quota after every split, this one does (one exists: Balinski and Young's quota method), so
 * the bound holds after every split, however the payback is cut into sessions. A state outside
 * the bound (charges of allocation 1 before it, or a correction) is brought back to it: the
 * units go to whoever is most overdue first.
 */
function allocateCumulative(total: number, w: Float64Array, n: number, sum: number, got: Float64Array, room: Float64Array, out: Float64Array, up: Float64Array): number {
  let before = 0;
  for (let i = 0; i < n; i++) before += got[i]!;
  if (!Number.isSafeInteger(before + total)) throw new BillingError('the payback received passes 2^53 minor units');
  let x = total;
  let forced = 0;
  // Caps can leave less room than the units (then the exact shares are those of P + what fits).
  for (;;) {
    const after = before + x;
    let s = 0;
    forced = 0;
    for (let i = 0; i < n; i++) {
      const g = got[i]!;
      const r = room[i]!;
      let lo: number;
      let hi: number;
      const p = after * w[i]!;
      if (p <= MAX) {
        const q = floorDiv(p, sum);
        lo = q - g;
        hi = q * sum < p ? lo + 1 : lo;
      } else {
        lo = mulDivFloor(after, w[i]!, sum) - g;
        hi = mulDivCeil(after, w[i]!, sum) - g;
      }
      if (hi < 0) hi = 0;
      else if (hi > r) hi = r;
      if (lo < 0) lo = 0;
      else if (lo > r) lo = r;
      up[i] = hi;
      out[i] = lo;
      s += hi;
      forced += lo;
    }
    if (s >= x) break;
    x = s;
  }
  const after = before + x;
  let left = x - forced;
  if (left < 0) {
    // More is due than there is to hand out: the most overdue units first, one at a time.
    for (let i = 0; i < n; i++) {
      up[i] = out[i]!;
      out[i] = 0;
    }
    left = x;
  }
  for (; left > 0; left--) {
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (out[i]! < up[i]! && (best < 0 || dueBefore(got[i]! + out[i]! + 1, w[i]!, got[best]! + out[best]! + 1, w[best]!, after, sum))) best = i;
    }
    // Cannot happen: the room counted covers x.
    if (best < 0) throw new BillingError('internal: no co-owner can take the payback left');
    out[best]!++;
  }
  return x;
}

const fundX = new Float64Array(3);
const fundA = new Float64Array(3);
const fundLow = new Float64Array(3);

/**
 * The cumulative-fair split of the usage fee by the percentages sm, si, sp: the carry (each
 * part's exact share of all usage fees so far less what it was allocated, in hundredths of a
 * unit) is added to this fee's exact shares, each part gets that rounded down (never below 0),
 * and the units left go one each to the largest remainders (ties: maintenance, infrastructure,
 * payback). With three parts whose carries are within ±100, every part ends within one unit of
 * its exact share again, whatever the percentages of each split. Writes the parts to pctOut and
 * returns the new carry.
 */
function allocateFunds(usage: number, sm: number, si: number, sp: number, carry: Readonly<FundCarry>): FundCarry {
  // usage = 100 q + r: q × pct is exact in whole units; only r × pct + carry needs rounding.
  const q = floorDiv(usage, 100);
  const r = usage - q * 100;
  let sum = 0;
  for (let f = 0; f < 3; f++) {
    const pctF = f === 0 ? sm : f === 1 ? si : sp;
    const x = r * pctF + carry[f]!;
    fundX[f] = x;
    fundLow[f] = -q * pctF;
    const a = Math.max(fundLow[f]!, Math.floor(x / 100));
    fundA[f] = a;
    sum += a;
  }
  // Carries far outside ±100 (a correction's recomputation) can over-serve: take back from the most over-served.
  while (sum > r) {
    let best = -1;
    for (let f = 0; f < 3; f++) if (fundA[f]! > fundLow[f]! && (best < 0 || fundX[f]! - 100 * fundA[f]! < fundX[best]! - 100 * fundA[best]!)) best = f;
    fundA[best]!--;
    sum--;
  }
  while (sum < r) {
    let best = 0;
    for (let f = 1; f < 3; f++) if (fundX[f]! - 100 * fundA[f]! > fundX[best]! - 100 * fundA[best]!) best = f;
    fundA[best]!++;
    sum++;
  }
  pctOut[0] = q * sm + fundA[0]!;
  pctOut[1] = q * si + fundA[1]!;
  pctOut[2] = q * sp + fundA[2]!;
  return [fundX[0]! - 100 * fundA[0]!, fundX[1]! - 100 * fundA[1]!, fundX[2]! - 100 * fundA[2]!];
}

/** Percentages, apportioned with the same rule into a 3-slot array of their own. */
const pct = new Float64Array(3);
const pctOut = new Float64Array(3);

interface Multiplier {
  units: bigint;
  scale: bigint;
  /** units and 10^scale as Numbers (10^scale always fits; units NaN when not safe). */
  un: number;
  den: number;
}

const multipliers = new Map<string, Multiplier>();

function multiplierOf(s: string): Multiplier {
  let m = multipliers.get(s);
  if (m === undefined) {
    const d = parseDecimal(s, 'multiplier');
    m = { units: d.units, scale: BigInt(d.scale), un: d.units <= BigInt(MAX) ? Number(d.units) : NaN, den: 10 ** d.scale };
    if (multipliers.size >= 256) multipliers.clear();
    multipliers.set(s, m);
  }
  return m;
}

function capWith(contribution: number, m: Multiplier): number {
  const p = contribution * m.un;
  if (p <= MAX) return floorDiv(p, m.den);
  const cap = (BigInt(contribution) * m.units) / 10n ** m.scale;
  // A cap beyond 2^53 minor units can never be reached by safe-integer payments: clamp it.
  return cap > BigInt(MAX) ? MAX : Number(cap);
}

/** What a co-owner is paid back in all: multiplier × contribution, rounded down to the minor unit (never more than the agreement says). */
export function capOf(contribution: number, multiplier: string): number {
  checkAmount(contribution, 'contribution');
  return capWith(contribution, multiplierOf(multiplier));
}

function checkShare(v: number, k: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 100) throw new BillingError(`shares.${k} must be a whole percentage from 0 to 100, got ${String(v)}`);
}

export function splitCharge(input: SplitInput): SplitResult {
  const { price, shares, coOwners, excessTo, pooled } = input;
  checkAmount(price.usage, 'price.usage');
  checkAmount(price.material, 'price.material');
  checkAmount(price.technician, 'price.technician');
  checkAmount(price.total, 'price.total');
  if (price.usage + price.material + price.technician !== price.total) {
    throw new BillingError(`price.total ${price.total} is not usage ${price.usage} + material ${price.material} + technician ${price.technician}`);
  }
  const { maintenance: sm, infrastructure: si, payback: sp } = shares;
  checkShare(sm, 'maintenance');
  checkShare(si, 'infrastructure');
  checkShare(sp, 'payback');
  if (sm + si + sp !== 100) throw new BillingError(`shares must sum to 100 %, got ${sm} + ${si} + ${sp} = ${sm + si + sp}`);
  if (excessTo !== 'funds' && excessTo !== 'maintenance' && excessTo !== 'infrastructure') {
    throw new BillingError(`excessTo must be "funds", "maintenance" or "infrastructure", got ${JSON.stringify(excessTo)}`);
  }
  const mult = multiplierOf(input.multiplier);

  const allocation = input.allocation ?? 1;
  if (allocation !== 1 && allocation !== 2) throw new BillingError(`allocation must be 1 or 2, got ${String(allocation)}`);
  const selfPayback = input.selfPayback ?? 'allowed';
  if (selfPayback !== 'allowed' && selfPayback !== 'redistribute') throw new BillingError(`selfPayback must be "allowed" or "redistribute", got ${JSON.stringify(selfPayback)}`);
  const carryIn = input.fundCarry ?? ZERO_CARRY;
  if (allocation === 2) {
    if (!Array.isArray(carryIn) || carryIn.length !== 3 || !carryIn.every((c) => Number.isSafeInteger(c)) || carryIn[0] + carryIn[1] + carryIn[2] !== 0) {
      throw new BillingError(`fundCarry must be three whole numbers summing to 0, got ${JSON.stringify(carryIn)}`);
    }
  }

  const n = coOwners.length;
  const { weights: contributions, room, out: paid, received, up } = scratchFor(n);
  let contributed = 0;
  let maxC = 0;
  for (let i = 0; i < n; i++) {
    const c = coOwners[i]!;
    if (typeof c.affiliateId !== 'string' || c.affiliateId === '') throw new BillingError(`coOwners[${i}].affiliateId must be a non-empty string`);
    // isAmount first: the message is only built for a bad value.
    if (!isAmount(c.contribution)) checkAmount(c.contribution, `coOwners[${i}].contribution`);
    if (!isAmount(c.received)) checkAmount(c.received, `coOwners[${i}].received`);
    contributions[i] = c.contribution;
    received[i] = c.received;
    contributed += c.contribution;
    if (c.contribution > maxC) maxC = c.contribution;
    // Received beyond the cap (e.g. after the multiplier was lowered) leaves no room; it is not clawed back.
    const cap = capWith(c.contribution, mult);
    room[i] = cap > c.received ? cap - c.received : 0;
  }
  if (!Number.isSafeInteger(contributed)) throw new BillingError("the co-owners' contributions sum beyond 2^53 minor units");

  // The usage fee by the agreement's percentages; ties go maintenance, infrastructure, payback.
  pct[0] = sm;
  pct[1] = si;
  pct[2] = sp;
  let fundCarry: FundCarry | undefined;
  if (allocation === 2) fundCarry = allocateFunds(price.usage, sm, si, sp, carryIn);
  else apportion(price.usage, pct, 3, 100, Math.max(sm, si, sp), pctOut);
  let maintenance = pctOut[0]!;
  let infrastructure = pctOut[1]!;
  const payback = pctOut[2]!;

  // Payback pro rata to contributions, each co-owner up to what is left of their cap.
  let excess = payback;
  // selfPayback: redistribute: a co-owner's share of their own session goes to the others.
  let self = -1;
  if (selfPayback === 'redistribute' && input.payer !== undefined) {
    for (let i = 0; i < n; i++) if (coOwners[i]!.affiliateId === input.payer && contributions[i]! > 0) self = i;
  }
  if (!pooled && contributed > 0 && payback > 0 && !(self >= 0 && contributed === contributions[self]!)) {
    if (self >= 0) {
      // This session alone, among the others, by largest remainder (allocation 1's rule).
      const own = contributions[self]!;
      contributions[self] = 0;
      const ownRoom = room[self]!;
      room[self] = 0;
      let maxOther = 0;
      for (let i = 0; i < n; i++) if (contributions[i]! > maxOther) maxOther = contributions[i]!;
      apportion(payback, contributions, n, contributed - own, maxOther, paid, room);
      contributions[self] = own;
      room[self] = ownRoom;
      paid[self] = 0;
      for (let i = 0; i < n; i++) {
        if (i !== self && paid[i]! > room[i]!) paid[i] = room[i]!;
        excess -= paid[i]!;
      }
    } else if (allocation === 2) {
      excess -= allocateCumulative(payback, contributions, n, contributed, received, room, paid, up);
    } else {
      apportion(payback, contributions, n, contributed, maxC, paid, room);
      for (let i = 0; i < n; i++) {
        if (paid[i]! > room[i]!) paid[i] = room[i]!;
        excess -= paid[i]!;
      }
    }
  } else {
    paid.fill(0, 0, n);
  }

  // The excess: to both funds pro rata to their percentages (maintenance first on ties, all to
  // maintenance when both are 0 %), or whole to the one fund the agreement names.
  if (excess > 0) {
    if (excessTo === 'maintenance' || (excessTo === 'funds' && sm + si === 0)) maintenance += excess;
    else if (excessTo === 'infrastructure') infrastructure += excess;
    else {
      apportion(excess, pct, 2, sm + si, Math.max(sm, si), pctOut);
      maintenance += pctOut[0]!;
      infrastructure += pctOut[1]!;
    }
  }

  const parts: Part[] = new Array<Part>(4 + n);
  parts[0] = { account: 'material', amount: price.material };
  parts[1] = { account: 'technician', amount: price.technician };
  parts[2] = { account: 'maintenance', amount: maintenance };
  parts[3] = { account: 'infrastructure', amount: infrastructure };
  let poolReached = !pooled;
  for (let i = 0; i < n; i++) {
    parts[4 + i] = { account: 'co-owner', affiliateId: coOwners[i]!.affiliateId, amount: paid[i]! };
    // Only cash pays anybody back: a split of value leaves every co-owner where they were.
    if (room[i]! - (price.cash ? paid[i]! : 0) > 0) poolReached = false;
  }
  return fundCarry ? { parts, poolReached, fundCarry } : { parts, poolReached };
}

const ZERO_CARRY: Readonly<FundCarry> = [0, 0, 0];
