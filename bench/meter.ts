/**
 * What the plausibility checks cost a metering node's frame (target: at most 5 % more): METER
 * frames through the node driver's path — framer, replay window, boot, meter, the state saved in
 * SQLite — with the checks, and through the path as it was before them (the last counters
 * subtracted, the difference added, the same row saved), in alternating rounds of one run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, FrameDecoder, replayCheck, type MessageOf, type ReplayWindow } from '../firmware-protocol/src/index.js';
import { MeterStore } from '../gateway/src/devices/metering-node/meter-store.js';
import { applyBoot, applyReading, COUNTER_NAMES, nodePhysics, type MeterCounters, type MeterState } from '../gateway/src/devices/metering-node/meter.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { median, round, type BenchResult, type BenchSize } from './stats.js';

const SIZES = { full: { frames: 20_000, rounds: 7 }, tiny: { frames: 200, rounds: 1 } } satisfies Record<BenchSize, object>;
const BOOT = 0x5eed1234;
const PHYSICS = nodePhysics({ maxPowerW: 3680, maxClockRate: 1.05 }, { energyMwh: 32, relayOnS: 32, activeS: 32, filamentMm: 32 });

/** A node's METER every second of a print: 200 W, relay on, busy. */
function frames(n: number, from: number): Buffer {
  const out: Uint8Array[] = [];
  for (let i = from; i < from + n; i++) {
    out.push(encodeFrame({ type: 'METER', seq: i & 0xffff, bootId: BOOT, energyMwh: 56 * i, relayOnS: i, activeS: i, powerMw: 200_000, currentMa: 870, voltageDv: 2300, filamentMm: 3 * i }));
  }
  return Buffer.concat(out);
}

/** One way of taking a METER in: the state it keeps, saved as the driver does. */
interface Path {
  take(msg: MessageOf<'METER'>, nowMs: number): void;
}

/** The driver's path: replay window, boot, meter with its checks, the state saved. */
function checked(store: MeterStore): Path {
  let window: ReplayWindow | null = null;
  let state: MeterState | null = null;
  return {
    take(msg, nowMs) {
      const r = replayCheck(window, msg.seq);
      window = r.window;
      if (r.verdict !== 'new') return;
      const boot = applyBoot(state, msg.bootId, nowMs, PHYSICS);
      if (boot.kind === 'stale') return;
      const step = applyReading(boot.state, msg, nowMs, PHYSICS);
      state = step.state;
      store.save('node-checked', state, new Date(nowMs));
    },
  };
}

/** The path before the checks, for comparison: the last counters and the totals, subtracted and added, saved in the same table. */
function unchecked(db: Journal['db']): Path {
  const put = db.prepare(
    `INSERT INTO node_meters (device_id, boot_id, last, total, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (device_id) DO UPDATE SET boot_id = excluded.boot_id, last = excluded.last, total = excluded.total, updated_at = excluded.updated_at`,
  );
  let state: { bootId: number; last: MeterCounters; total: MeterCounters } | null = null;
  return {
    take(msg, nowMs) {
      const reading = { energyMwh: msg.energyMwh, relayOnS: msg.relayOnS, activeS: msg.activeS, filamentMm: msg.filamentMm };
      if (state === null || state.bootId !== msg.bootId) state = { bootId: msg.bootId, last: reading, total: { ...reading } };
      else {
        if (COUNTER_NAMES.some((n) => reading[n] < state!.last[n])) return;
        const total = { ...state.total };
        for (const n of COUNTER_NAMES) total[n] += reading[n] - state.last[n];
        state = { bootId: msg.bootId, last: reading, total };
      }
      put.run('node-unchecked', state.bootId, JSON.stringify(state.last), JSON.stringify(state.total), new Date(nowMs).toISOString());
    },
  };
}

/** Frames a second: the bytes through a framer into the path, a METER a second of the node's time. */
function run(path: Path, bytes: Buffer, first: number, n: number): number {
  let i = first;
  const decoder = new FrameDecoder((msg) => path.take(msg as MessageOf<'METER'>, 1_790_000_000_000 + 1000 * i++));
  const t0 = performance.now();
  for (let at = 0; at < bytes.length; at += 4096) decoder.push(bytes.subarray(at, at + 4096));
  const s = (performance.now() - t0) / 1000;
  if (i !== first + n) throw new Error(`meter bench: ${i - first} of ${n} frames taken`);
  return n / s;
}

export async function benchMeter(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { frames: n, rounds } = SIZES[size];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-meter-'));
  const journal = Journal.open(dir);
  try {
    const paths = { checked: checked(new MeterStore(journal.db)), unchecked: unchecked(journal.db) };
    const rates = { checked: [] as number[], unchecked: [] as number[] };
    // a warm-up round, then rounds alternating, so that drift in the machine's load hits both
    for (let r = 0; r <= rounds; r++) {
      const bytes = frames(n, r * n);
      for (const name of r % 2 === 0 ? (['checked', 'unchecked'] as const) : (['unchecked', 'checked'] as const)) {
        const rate = run(paths[name], bytes, r * n, n);
        if (r > 0) rates[name].push(rate);
      }
    }
    const [withChecks, without] = [median(rates.checked), median(rates.unchecked)];
    const overhead = without / withChecks - 1;
    return [
      {
        bench: 'meter-frame',
        path: `METER frames through the node driver's path: framer, replay window, boot, meter with its plausibility checks, state saved in SQLite (WAL); ${n} frames, median of ${rounds} rounds alternating with the path without the checks`,
        frames: n,
        framesPerSec: Math.round(withChecks),
        usPerFrame: round(1e6 / withChecks, 2),
        overheadPercent: round(100 * overhead, 1),
        target: '≤ 5 % more per frame than without the checks',
        pass: overhead <= 0.05,
      },
      { bench: 'meter-frame-unchecked', path: 'the same frames through the path before the checks: the last counters subtracted, the difference added, the same row saved', frames: n, framesPerSec: Math.round(without), usPerFrame: round(1e6 / without, 2) },
    ];
  } finally {
    journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
