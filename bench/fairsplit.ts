/**
 * Cumulative-fair allocation (split.ts, allocation 2): a million sessions in a row on the seed's
 * printer (11 co-owners, 4,000.00, caps 4,800.00), each split carrying the co-owners' running
 * totals and the fund carry to the next, as the journal does; when the printer is pooled a new
 * one starts from nothing, so the run crosses the pool transition hundreds of times (target
 * ≥ 1,000,000 splits/s). A second pass over the same sessions, not timed, checks after every
 * one that each co-owner is within one cent of their exact share of the payback so far, each
 * cap is landed exactly at the pool, and every split sums to its charge.
 */
import { capOf, splitCharge, type CoOwner, type FundCarry, type Shares, type SplitInput } from '../gateway/src/billing/split.js';
import type { BenchResult, BenchSize } from './stats.js';

const TARGET = 1_000_000;
const SIZES = { full: { n: 1_000_000, rounds: 3 }, tiny: { n: 5_000, rounds: 1 } } satisfies Record<BenchSize, object>;
type Size = (typeof SIZES)[BenchSize];

const CONTRIBUTIONS = [80_000, 60_000, 50_000, 40_000, 40_000, 30_000, 30_000, 25_000, 20_000, 15_000, 10_000];
const C = CONTRIBUTIONS.reduce((a, b) => a + b, 0);
const CAPS = CONTRIBUTIONS.map((c) => capOf(c, '1.2'));
const SPLITS: Shares[] = [
  { maintenance: 30, infrastructure: 20, payback: 50 },
  { maintenance: 60, infrastructure: 40, payback: 0 },
];

function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s % n;
  };
}

/** One run of n sessions; with `check`, every bound after every session. Returns how many times the printer was pooled. */
function pass(n: number, usages: Int32Array, splits: Uint8Array, check: boolean): number {
  const owners: CoOwner[] = CONTRIBUTIONS.map((contribution, i) => ({ affiliateId: `co-owner-${i + 1}`, contribution, received: 0 }));
  let carry: FundCarry = [0, 0, 0];
  let pools = 0;
  const input: SplitInput = { price: { usage: 0, material: 0, technician: 0, total: 0, cash: true }, shares: SPLITS[0]!, coOwners: owners, multiplier: '1.2', excessTo: 'funds', pooled: false, allocation: 2, fundCarry: carry };
  for (let s = 0; s < n; s++) {
    const usage = usages[s]!;
    input.price = { usage, material: 0, technician: 0, total: usage, cash: true };
    input.shares = SPLITS[splits[s]!]!;
    input.fundCarry = carry;
    const r = splitCharge(input);
    carry = r.fundCarry!;
    let paid = 0;
    for (let i = 0; i < owners.length; i++) {
      const a = r.parts[4 + i]!.amount;
      owners[i]!.received += a;
      paid += owners[i]!.received;
    }
    if (check) {
      let sum = 0;
      for (const p of r.parts) sum += p.amount;
      if (sum !== usage) throw new Error(`session ${s}: the parts sum to ${sum}, not ${usage}`);
      for (let i = 0; i < owners.length; i++) {
        const dev = Math.abs(owners[i]!.received * C - paid * CONTRIBUTIONS[i]!);
        if (dev >= C) throw new Error(`session ${s}: co-owner ${i + 1} is ${dev / C} from their exact share`);
      }
      if (Math.abs(carry[0]) >= 100 || Math.abs(carry[1]) >= 100 || Math.abs(carry[2]) >= 100) throw new Error(`session ${s}: the fund carry ${carry.join(' ')} is a unit or more`);
      if (r.poolReached && owners.some((o, i) => o.received !== CAPS[i])) throw new Error(`session ${s}: pooled with a cap not landed exactly`);
    }
    if (r.poolReached) {
      // The next printer.
      pools++;
      for (const o of owners) o.received = 0;
    }
  }
  return pools;
}

function run({ n, rounds }: Size) {
  const rnd = lcg(0xfa1e);
  const usages = new Int32Array(n);
  const splits = new Uint8Array(n);
  // A quarter minimum charges (2.00), the rest up to 60.00; one in five community use (no payback).
  for (let s = 0; s < n; s++) {
    usages[s] = rnd(4) === 0 ? 200 : rnd(6_001);
    splits[s] = rnd(5) === 0 ? 1 : 0;
  }
  const pools = pass(n, usages, splits, true);
  let wall = 0;
  let cpu = 0;
  for (let round = 0; round < rounds; round++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    pass(n, usages, splits, false);
    wall = Math.max(wall, n / (Number(process.hrtime.bigint() - t0) / 1e9));
    const c = process.cpuUsage(c0);
    cpu = Math.max(cpu, n / ((c.user + c.system) / 1e6));
  }
  return { wall, cpu, pools };
}

export async function benchFairSplit(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const sized = SIZES[size];
  const r = run(sized);
  return [
    {
      bench: 'billing-fair-split',
      path: `splitCharge, allocation 2, ${sized.n.toLocaleString('en')} sessions in a row on the seed's printer (11 co-owners), ${r.pools} pool transitions, every bound checked after each session`,
      sessions: sized.n,
      splitsPerSec: Math.round(r.wall),
      splitsPerCpuSec: Math.round(r.cpu),
      target: `>= ${TARGET.toLocaleString('en')}/s`,
      pass: r.wall >= TARGET,
    },
  ];
}
