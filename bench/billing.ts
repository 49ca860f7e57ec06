/**
 * Billing's pure core: priceSession then splitCharge for a commercial printer session whose
 * payback goes to the seed's 11 co-owners (target ≥ 1,000,000 priced and split sessions/s).
 * Inputs vary (times, grams, technician, how far each co-owner is repaid, some near their cap),
 * so the figure is not one cached branch. Next to it, the same with amounts large enough that
 * the exact arithmetic leaves Numbers for BigInt.
 */
import { priceSession, type PriceOptions, type SessionUsage, type Tariff } from '../gateway/src/billing/price.js';
import { splitCharge, type CoOwner, type SplitInput } from '../gateway/src/billing/split.js';
import type { BenchResult, BenchSize } from './stats.js';

const TARGET = 1_000_000;
/** Sessions priced and split in each round, best of `rounds`. */
const SIZES = { full: { n: 300_000, rounds: 5 }, tiny: { n: 5_000, rounds: 1 } } satisfies Record<BenchSize, object>;
type Size = (typeof SIZES)[BenchSize];

const CONTRIBUTIONS = [100_000, 75_000, 50_000, 40_000, 30_000, 30_000, 25_000, 20_000, 15_000, 10_000, 5_000];

const tariff: Tariff = { hourlyRate: '8.00', billedTime: 'session', incrementMin: 15, minimumCharge: '2.00', chargeMaterial: true, cash: true };
const opts: PriceOptions = { minorUnit: 2, materialPricePerGram: '0.025', technicianRatePerHour: '30.00' };
const agreement = { shares: { maintenance: 30, infrastructure: 20, payback: 50 }, multiplier: '1.2', excessTo: 'funds', pooled: false } as const;

/** A small deterministic generator, so every run measures the same inputs. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s % n;
  };
}

function inputs(n: number, scale: number) {
  const rnd = lcg(0x0b111);
  const sessions: SessionUsage[] = [];
  for (let i = 0; i < n; i++) {
    const durationS = rnd(6 * 3600 * 10) / 10;
    sessions.push({ durationS, activeS: Math.floor(durationS * 0.9), filamentG: rnd(200_000) / 1000, technicianMin: rnd(4) === 0 ? rnd(60) : 0, ownMaterial: rnd(10) === 0 });
  }
  // How far the co-owners are repaid: from nothing to their caps, a few crossing them.
  const owners: CoOwner[][] = [];
  for (let k = 0; k < 512; k++) {
    const progress = rnd(1_201) / 1000;
    owners.push(CONTRIBUTIONS.map((c, i) => ({ affiliateId: `co-owner-${i + 1}`, contribution: c * scale, received: Math.floor(c * scale * progress) + rnd(50) })));
  }
  return { sessions, owners };
}

/** Best of the rounds: splits per second of wall time, and per second of this process's CPU time (steadier on a busy machine). */
function run({ n, rounds }: Size, scale: number, hourlyRate: string): { wall: number; cpu: number } {
  const { sessions, owners } = inputs(n, scale);
  const t: Tariff = { ...tariff, hourlyRate };
  let check = 0;
  const pass = () => {
    for (let i = 0; i < n; i++) {
      const price = priceSession(sessions[i]!, t, opts);
      const input: SplitInput = { price, coOwners: owners[i & 511]!, ...agreement };
      const r = splitCharge(input);
      check += r.parts[4]!.amount + (r.poolReached ? 1 : 0);
    }
  };
  pass(); // warm-up: the JIT sees the same path it is measured on
  let wall = 0;
  let cpu = 0;
  for (let round = 0; round < rounds; round++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    pass();
    wall = Math.max(wall, n / (Number(process.hrtime.bigint() - t0) / 1e9));
    const c = process.cpuUsage(c0);
    cpu = Math.max(cpu, n / ((c.user + c.system) / 1e6));
  }
  if (!(check > 0)) throw new Error('the benchmark paid nobody back');
  return { wall, cpu };
}

export async function benchSplit(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const sized = SIZES[size];
  const typical = run(sized, 1, '8.00');
  // Contributions in the billions of minor units and a rate with 15 decimals: products pass 2^53.
  const big = run(sized, 1_000_000_000, '8000000.000000000000001');
  return [
    {
      bench: 'billing-split',
      path: 'priceSession + splitCharge, 8.00/h in 15-min increments, material, technician, 30/20/50 split, 11 co-owners',
      sessions: sized.n,
      splitsPerSec: Math.round(typical.wall),
      splitsPerCpuSec: Math.round(typical.cpu),
      target: `>= ${TARGET.toLocaleString('en')}/s`,
      pass: typical.wall >= TARGET,
    },
    { bench: 'billing-split-bigint', path: 'the same with amounts whose products pass 2^53 (BigInt arithmetic)', sessions: sized.n, splitsPerSec: Math.round(big.wall), splitsPerCpuSec: Math.round(big.cpu) },
  ];
}
