/**
 * Badge tap → relay command through the whole gateway over a pseudo-terminal: the metering
 * node simulator behind a socat PTY, a gateway started in-process with one node, one tool and
 * an allow-list of 1,000 affiliates (one of them qualified on the tool), and the clock running
 * from the simulator sending BADGE to it receiving RELAY_SET. Badge-in (relay on) and
 * badge-out (relay off, the tool not busy) alternate; each sample starts from a settled state.
 * Next to it, interleaved in the same run and paced the same way (so that both see the same
 * machine), the raw PTY echo of a frame of the same size. Needs socat.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { encodeFrame, type Message } from '../firmware-protocol/src/index.js';
import { configSchema } from '../gateway/src/config/schema.js';
import { startGateway, type RunningGateway } from '../gateway/src/gateway.js';
import { createToken } from '../gateway/src/http/tokens.js';
import { createLogger } from '../gateway/src/log.js';
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { hasSocat, servePty, type SimTransport } from '../simulators/src/transports.js';
import { openRawEcho, type RawEchoLink } from './roundtrip.js';
import { round, summarize, type BenchResult, type BenchSize } from './stats.js';

const BENCH = 'badge → relay command through the gateway over a PTY (1,000 affiliates)';
/** Taps measured, after `warmup` that are not. */
const SIZES = { full: { n: 300, warmup: 30 }, tiny: { n: 4, warmup: 2 } } satisfies Record<BenchSize, object>;
const AFFILIATES = 1000;
/**
 * One tap per slot, well below the gateway's badge-flood limit (20 decisions a second at a
 * tool; nobody badges faster). The raw echo runs in the middle of the slot,
 * after the tap's effects (RELAY_STATE, INDICATE and their ACKs) have settled, so that both
 * kinds of sample come after the same idle time.
 */
const SLOT_MS = 100;
const SAMPLE_TIMEOUT_MS = 5000;
const NODE = 'bench-node';
const TOOL = 'bench-tool';

/** 7-byte UIDs, as MIFARE Ultralight and DESFire cards have. */
const uidOf = (i: number) => `04${i.toString(16).toUpperCase().padStart(12, '0')}`;

/** Ids sort in list order; the qualified affiliate comes last, so the lookup walks the whole list. */
function allowList() {
  return Array.from({ length: AFFILIATES }, (_, i) => ({
    id: `affiliate-${String(i).padStart(4, '0')}`,
    name: `Affiliate ${i}`,
    badges: [uidOf(i)],
    qualifications: i === AFFILIATES - 1 ? [{ tool: TOOL }] : [],
  }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${BENCH}: timed out waiting for ${what}`);
    await sleep(1);
  }
}

/** One tap: µs from the simulator sending BADGE to it receiving RELAY_SET with the expected state. */
function tap(sim: MeteringNodeSim, uid: string, on: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, us = 0) => {
      clearTimeout(timer);
      sim.off('received', onMessage);
      if (err) reject(err);
      else resolve(us);
    };
    const onMessage = (msg: Message) => {
      if (msg.type !== 'RELAY_SET') return;
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      done(msg.state === (on ? 1 : 0) ? null : new Error(`${BENCH}: expected RELAY_SET ${on ? 'on' : 'off'}, got state ${msg.state}`), us);
    };
    const timer = setTimeout(() => done(new Error(`${BENCH}: no RELAY_SET ${on ? 'on' : 'off'} within ${SAMPLE_TIMEOUT_MS} ms of the badge`)), SAMPLE_TIMEOUT_MS);
    sim.on('received', onMessage);
    const t0 = process.hrtime.bigint();
    sim.badge(uid);
  });
}

export async function benchBadgeRelay(size: BenchSize = 'full'): Promise<BenchResult[]> {
  const { n, warmup } = SIZES[size];
  if (!hasSocat()) return [{ bench: BENCH, skipped: 'needs socat' }];
  const dir = mkdtempSync(join(tmpdir(), 'ovn-bench-badge-'));
  const uid = uidOf(AFFILIATES - 1);
  const frame = (i: number) => encodeFrame({ type: 'BADGE', seq: i & 0xffff, reader: 0, uid: new Uint8Array(Buffer.from(uid, 'hex')) });
  const frameBytes = frame(0).length;

  let transport: SimTransport | null = null;
  let gw: RunningGateway | null = null;
  let raw: RawEchoLink | null = null;
  try {
    const sim = new MeteringNodeSim({ nodeId: NODE });
    transport = await servePty(sim, join(dir, 'node-tty'));
    const config = configSchema.parse({
      gateway: { dataDir: join(dir, 'data'), log: { level: 'warn', format: 'json' } },
      devices: [{ id: NODE, kind: 'metering-node', nodeId: NODE, serial: { path: transport.address } }],
      tools: [{ id: TOOL, node: NODE, warnBeforeOffS: 0 }],
      affiliates: allowList(),
    });
    const nullSink = new Writable({ write: (_chunk, _enc, done) => done() });
    const startedAt = performance.now();
    gw = await startGateway({ config, file: join(dir, 'config.yaml'), baseDir: dir }, { httpPort: 0, logger: createLogger(config.gateway.log, nullSink) });
    const url = gw.url;
    // The devices' states are in the health only for a caller with a token.
    const auth = { authorization: `Bearer ${createToken(gw.journal, { role: 'maintainer', name: 'bench' }).token}` };
    await until(async () => {
      const health = (await (await fetch(`${url}/api/health`, { headers: auth })).json()) as { devices: { id: string; state: string }[] };
      return health.devices.find((d) => d.id === NODE)?.state === 'online';
    }, 'the node to come online');
    const startS = round((performance.now() - startedAt) / 1000);

    const journal = gw.journal;
    let mark = 0;
    /** The gateway journaled the session's start (or end) and the node's contact follows. */
    const settled = (on: boolean) => () => {
      if (sim.truth().relay.sensed !== on) return false;
      const e = journal.events({ kind: on ? 'session.started' : 'session.ended', afterId: mark, limit: 1 })[0];
      if (e) mark = e.id;
      return e !== undefined;
    };

    raw = await openRawEcho(dir);
    const samples: { on: boolean; us: number }[] = [];
    const rawSamples: number[] = [];
    for (let i = 0; i < n + warmup; i++) {
      const slot = performance.now();
      const on = i % 2 === 0;
      const us = await tap(sim, uid, on);
      await until(settled(on), `the session to ${on ? 'start' : 'end'}`);
      await sleep(slot + SLOT_MS / 2 - performance.now());
      const rawUs = await raw.roundTrip(frame(i));
      await sleep(slot + SLOT_MS - performance.now());
      if (i < warmup) continue;
      samples.push({ on, us });
      rawSamples.push(rawUs);
    }

    const all = summarize(samples.map((s) => s.us));
    const rawS = summarize(rawSamples);
    const ratio = round(all.p99Us / rawS.p99Us, 2);
    const part = (on: boolean) => {
      const { p50Us, p99Us, maxUs } = summarize(samples.filter((s) => s.on === on).map((s) => s.us));
      return { p50Us, p99Us, maxUs };
    };
    return [
      { bench: 'pty-raw-echo (badge-sized frame, paced like the taps)', path: 'serialport write → PTY pair → serialport echo → back', frameBytes, ...rawS },
      {
        bench: BENCH,
        path: 'sim BADGE → socat PTY → SerialLink → framer → MeteringNode → ToolSessions (allow-list, decision, journal) → RELAY_SET → PTY → sim',
        frameBytes,
        affiliates: AFFILIATES,
        /** Gateway start (seeding the allow-list from the config) until the node is online. */
        startS,
        ...all,
        badgeIn: part(true),
        badgeOut: part(false),
        p99VsRawEcho: ratio,
        target: 'p99 within 2x of raw and < 10 ms',
        pass: ratio <= 2 && all.p99Us < 10_000,
      },
    ];
  } finally {
    await gw?.stop().catch(() => {});
    await transport?.close().catch(() => {});
    await raw?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
