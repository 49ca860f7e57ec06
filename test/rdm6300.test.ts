/**
 * The RDM6300 RFID reader: the frame decoder on its own (any chunking, noise, resync, the
 * buffer cap), the tap debounce, and the reader end to end against the simulated module
 * over a real pseudo-terminal and over TCP.
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rfidReaderSchema } from '../gateway/src/devices/rfid/config.js';
import { encodeRdm6300, ETX, MAX_GARBAGE_RUN, Rdm6300Decoder, Rdm6300Parser, STX, type Rdm6300Rejection } from '../gateway/src/devices/rfid/rdm6300.js';
import { RfidReader } from '../gateway/src/devices/rfid/reader.js';
import { TapFilter } from '../gateway/src/devices/tap-filter.js';
import type { BadgeRead } from '../gateway/src/devices/tool-io.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { createLogger } from '../gateway/src/log.js';
import { rfidControl } from '../simulators/src/rfid/control.js';
import { Rdm6300Sim } from '../simulators/src/rfid/rdm6300-sim.js';
import { servePty, serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { skipWithoutSocat, tempDir, waitFor } from './helpers.js';

const ascii = (s: string) => Buffer.from(s, 'latin1');
const frameOf = (body: string) => new Uint8Array([STX, ...ascii(body), ETX]);
const concat = (...parts: ArrayLike<number>[]) => Uint8Array.from(parts.flatMap((p) => Array.from(p)));

function decode(...chunks: Uint8Array[]) {
  const uids: string[] = [];
  const rejected: Rdm6300Rejection[] = [];
  const d = new Rdm6300Decoder(
    (u) => uids.push(u),
    (r) => rejected.push(r),
  );
  for (const c of chunks) d.push(c);
  return { uids, rejected, problems: rejected.map((r) => r.problem), decoder: d };
}

describe('RDM6300 frames', () => {
  it('encodes the datasheet example and decodes it', () => {
    // Card 62E3086CED: 62 ^ E3 ^ 08 ^ 6C ^ ED = 08.
    expect(Buffer.from(encodeRdm6300('62e3086ced')).toString('hex')).toBe('02' + ascii('62E3086CED08').toString('hex') + '03');
    const { uids, rejected, decoder } = decode(encodeRdm6300('62E3086CED'));
    expect(uids).toEqual(['62E3086CED']);
    expect(rejected).toEqual([]);
    expect(decoder.stats).toMatchObject({ bytes: 14, frames: 1, discardedBytes: 0 });
  });

  it('refuses to encode anything but 10 hex digits', () => {
    for (const bad of ['', '62E3086C', '62E3086CED00', '62E3086CEG']) expect(() => encodeRdm6300(bad)).toThrow(/10 hex digits/);
  });

  it('decodes a frame split across chunks byte by byte, and lowercase digits', () => {
    const bytes = concat(encodeRdm6300('1A0044C3F1'), frameOf('1a0044c3f16c'));
    const { uids, rejected } = decode(...Array.from(bytes, (b) => new Uint8Array([b])));
    expect(uids).toEqual(['1A0044C3F1', '1A0044C3F1']);
    expect(rejected).toEqual([]);
  });

  it('rejects a bad checksum, naming both sums and the bytes', () => {
    const { uids, rejected, decoder } = decode(frameOf('62E3086CED09'));
    expect(uids).toEqual([]);
    expect(rejected).toEqual([{ problem: 'checksum', detail: 'checksum 09 where the data gives 08', head: Buffer.from(frameOf('62E3086CED09')).toString('hex'), length: 14 }]);
    expect(decoder.stats.rejected.checksum).toBe(1);
    expect(decoder.stats.discardedBytes).toBe(14);
  });

  it('rejects a non-hex character, naming its position', () => {
    const { uids, rejected } = decode(frameOf('62E3086CEZ08'));
    expect(uids).toEqual([]);
    expect(rejected.map((r) => [r.problem, r.detail])).toEqual([['non-hex', 'character 10 is 0x5A, not a hex digit']]);
  });

  it('rejects frames of the wrong length: short, and too long without ETX', () => {
    const { uids, problems, rejected } = decode(frameOf('62E3086C'), frameOf('62E3086CED0800'), encodeRdm6300('62E3086CED'));
    expect(problems).toEqual(['length', 'length']);
    expect(rejected[0]!.detail).toBe('8 characters between STX and ETX, expected 12');
    expect(rejected[1]!.detail).toMatch(/more than 12 characters after STX without ETX/);
    // The tail of the over-long frame, up to its ETX, belongs to that one rejection.
    expect(uids).toEqual(['62E3086CED']);
  });

  it('reports garbage before and between frames as runs, and decodes the frames around it', () => {
    const { uids, rejected } = decode(concat(ascii('hello'), encodeRdm6300('0000000001'), [0xff, ETX, 0x00], encodeRdm6300('0000000002')));
    expect(uids).toEqual(['0000000001', '0000000002']);
    expect(rejected).toEqual([
      { problem: 'garbage', detail: '5 bytes outside a frame', head: ascii('hello').toString('hex'), length: 5 },
      { problem: 'garbage', detail: '3 bytes outside a frame', head: 'ff0300', length: 3 },
    ]);
  });

  it('resynchronises on the next STX after a frame cut off', () => {
    const cut = encodeRdm6300('0000000003').subarray(0, 7);
    const { uids, rejected } = decode(concat(cut, encodeRdm6300('0000000004')));
    expect(uids).toEqual(['0000000004']);
    expect(rejected.map((r) => [r.problem, r.detail])).toEqual([['length', 'frame cut off after 6 characters by the next STX']]);
  });

  it('caps its buffer: a long garbage run is reported in bounded runs and holds nothing', () => {
    const noise = new Uint8Array(100_000).fill(0x55);
    const { uids, rejected, decoder } = decode(noise);
    expect(decoder.pending).toBe(0);
    expect(rejected).toHaveLength(Math.floor(100_000 / MAX_GARBAGE_RUN));
    expect(rejected.every((r) => r.length === MAX_GARBAGE_RUN && r.head.length === 32)).toBe(true);

    // An STX followed by a flood of hex digits and no ETX: one rejection, a frame's worth held at most.
    decoder.push(new Uint8Array([STX]));
    let maxPending = 0;
    for (let i = 0; i < 1000; i++) {
      decoder.push(ascii('A'));
      maxPending = Math.max(maxPending, decoder.pending);
    }
    expect(maxPending).toBeLessThanOrEqual(13);
    decoder.push(encodeRdm6300('00000000FF'));
    expect(uids).toEqual(['00000000FF']);
    const after = rejected.slice(Math.floor(100_000 / MAX_GARBAGE_RUN));
    // The last garbage run (100 000 mod 64 bytes) ends at the STX; then the over-long frame; then its tail past the cap is garbage.
    expect(after.map((r) => r.problem)).toEqual(['garbage', 'length', ...Array<string>(Math.floor((1000 - 12 - MAX_GARBAGE_RUN) / MAX_GARBAGE_RUN)).fill('garbage'), 'garbage']);
  });

  it('decodes many frames in one chunk, in order', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => i.toString(16).toUpperCase().padStart(10, '0'));
    const { uids, rejected } = decode(concat(...ids.map(encodeRdm6300)));
    expect(uids).toEqual(ids);
    expect(rejected).toEqual([]);
  });

  it('finds every frame after any noise, whatever the chunking, and accounts for every byte', () => {
    const uid = fc.stringMatching(/^[0-9A-F]{10}$/);
    const noise = fc.uint8Array({ maxLength: 200 });
    fc.assert(
      fc.property(fc.array(fc.tuple(noise, uid), { maxLength: 20 }), noise, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1 }), (pairs, tail, cuts) => {
        const bytes = concat(...pairs.flatMap(([n, u]) => [n, encodeRdm6300(u)]), tail);
        const chunks: Uint8Array[] = [];
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const n = cuts[i % cuts.length]!;
          chunks.push(bytes.subarray(at, at + n));
          at += n;
        }
        const { uids, rejected, decoder } = decode(...chunks);
        decoder.flush();
        // Noise may contain a frame of its own by chance; every real frame is found, in order.
        let k = 0;
        for (const u of uids) if (k < pairs.length && u === pairs[k]![1]) k++;
        expect(k).toBe(pairs.length);
        const s = decoder.stats;
        expect(s.bytes).toBe(bytes.length);
        expect(s.discardedBytes + 14 * s.frames).toBe(bytes.length);
        expect(Object.values(s.rejected).reduce((a, b) => a + b, 0)).toBe(rejected.length);
        // The same bytes in one chunk give the same result.
        const whole = decode(bytes);
        whole.decoder.flush();
        expect(whole.uids).toEqual(uids);
        expect(whole.rejected).toEqual(rejected);
      }),
      { numRuns: 300 },
    );
  });

  it('works as a stream: bytes in, card ids out, rejections as events', async () => {
    const parser = new Rdm6300Parser();
    const rejected: Rdm6300Rejection[] = [];
    parser.on('rejected', (r: Rdm6300Rejection) => rejected.push(r));
    const out: string[] = [];
    parser.on('data', (u: string) => out.push(u));
    parser.write(concat(ascii('xx'), encodeRdm6300('62E3086CED').subarray(0, 5)));
    parser.end(concat(encodeRdm6300('62E3086CED').subarray(5), [STX, 0x31]));
    await new Promise((r) => parser.on('end', r));
    expect(out).toEqual(['62E3086CED']);
    expect(rejected.map((r) => r.problem)).toEqual(['garbage', 'length']);
    expect(parser.stats.frames).toBe(1);
  });
});

describe('tap debounce', () => {
  it('counts a held card once, and again only after the gap without reads', () => {
    const f = new TapFilter(1000);
    const taps = (uid: string, times: number[]) => times.filter((t) => f.read(uid, t)).length;
    // Held for 2 s, read every 100 ms: one tap.
    expect(taps('A', Array.from({ length: 21 }, (_, i) => i * 100))).toBe(1);
    // 999 ms after the last read: still the same hold. Then 1000 ms without a read: a new tap.
    expect(taps('A', [2999])).toBe(0);
    expect(taps('A', [3999])).toBe(1);
    // Another card right away is its own tap.
    expect(taps('B', [4000])).toBe(1);
  });

  it('remembers only the cards read within the gap', () => {
    const f = new TapFilter(1000);
    let taps = 0;
    for (let i = 0; i < 100_000; i++) if (f.read(`C${i}`, i * 10)) taps++;
    expect(taps).toBe(100_000);
    expect(f.size).toBeLessThanOrEqual(101);
  });
});

describe('RFID reader config', () => {
  it('has the defaults of an RDM6300 and refuses unknown settings', () => {
    const cfg = rfidReaderSchema.parse({ id: 'door', kind: 'rfid-reader', serial: { path: '/dev/serial0' } });
    expect(cfg).toEqual({ id: 'door', kind: 'rfid-reader', protocol: 'rdm6300', repeatGapMs: 1000, serial: { path: '/dev/serial0', baudRate: 9600, reconnect: { initialMs: 500, maxMs: 30_000 } } });
    expect(rfidReaderSchema.safeParse({ ...cfg, colour: 'red' }).success).toBe(false);
    expect(rfidReaderSchema.safeParse({ ...cfg, serial: { ...cfg.serial, parity: 'none' } }).success).toBe(false);
    expect(rfidReaderSchema.safeParse({ ...cfg, protocol: 'pn532' }).success).toBe(false);
    expect(rfidReaderSchema.safeParse({ ...cfg, serial: { path: 'socket://bridge' } }).success).toBe(false);
  });
});

describe('simulated RDM6300 commands', () => {
  it('checks card ids and sends what was asked', async () => {
    const sim = new Rdm6300Sim();
    const wire: Uint8Array[] = [];
    sim.attach((b) => wire.push(b));
    const ctl = rfidControl(sim, null);
    await expect(ctl.run('tap 04A1B2C3')).rejects.toThrow(/10 hex digits/);
    await ctl.run('bad-checksum 62E3086CED');
    await ctl.run('garbage 20');
    await ctl.run('tap 62E3086CED');
    sim.remove();
    const { uids, problems } = decode(...wire);
    expect(uids).toEqual(['62E3086CED']);
    expect(problems[0]).toBe('checksum');
    expect(JSON.parse((await ctl.run('truth'))!)).toEqual({
      taps: [{ uid: '62E3086CED', holdMs: 300, frames: 1 }],
      framesSent: 1,
      badChecksumFrames: 1,
      garbageBytes: 20,
      holding: null,
    });
    await expect(ctl.run('unplug')).rejects.toThrow(/no cable/);
  });
});

const transports = [
  { name: 'pseudo-terminal (socat)', skip: skipWithoutSocat, serve: (sim: Rdm6300Sim) => servePty(sim, join(tempDir('pty'), 'ttyRFID0')) },
  { name: 'TCP serial bridge', skip: false, serve: (sim: Rdm6300Sim) => serveTcp(sim, '127.0.0.1', 0) },
];

interface Detail {
  protocol: string;
  taps: number;
  repeats: number;
  frames: { bytes: number; valid: number; discardedBytes: number; rejected: Record<string, number> };
  link: { reconnects: number };
}

describe.each(transports)('RDM6300 reader over a $name', ({ skip, serve }) => {
  const GAP_MS = 400;
  const LOG_WINDOW_MS = 500;
  let sim: Rdm6300Sim;
  let transport: SimTransport;
  let journal: Journal;
  let reader: RfidReader;
  const badges: BadgeRead[] = [];
  const logs: Record<string, unknown>[] = [];
  const detail = () => reader.health().detail as unknown as Detail;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Waits until every valid frame the simulator sent has been decoded. */
  const settled = () => waitFor(() => detail().frames.valid === sim.truth().framesSent, 10_000, 'all frames decoded');

  beforeAll(async () => {
    if (skip) return;
    sim = new Rdm6300Sim({ repeatMs: 100, seed: 42 });
    transport = await serve(sim);
    journal = Journal.open(join(tempDir('rfid'), 'data'));
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
        done();
      },
    });
    const cfg = rfidReaderSchema.parse({ id: 'desk-reader', kind: 'rfid-reader', repeatGapMs: GAP_MS, serial: { path: transport.address, reconnect: { initialMs: 50, maxMs: 400 } } });
    reader = new RfidReader(cfg, journal, createLogger({ level: 'debug', format: 'json' }, sink), { rejectionLogWindowMs: LOG_WINDOW_MS });
    reader.on('badge', (b) => badges.push(b));
    reader.start();
    await waitFor(() => reader.isOnline);
  });

  afterAll(async () => {
    await reader?.stop();
    await transport?.close();
    journal?.close();
  });

  it.skipIf(skip)('is online while its link is open, and says so in health and the journal', () => {
    const h = reader.health();
    expect(h).toMatchObject({ id: 'desk-reader', kind: 'rfid-reader', name: 'desk-reader', state: 'online', lastSeen: null });
    expect(h.detail).toMatchObject({ target: transport.address, protocol: 'rdm6300', linkOpen: true, taps: 0 });
    expect(journal.events({ deviceId: 'desk-reader' }).map((e) => e.kind)).toEqual(['device.connected']);
  });

  it.skipIf(skip)('gives one badge event for a card held for a second', async () => {
    await sim.tap('62E3086CED', 1000);
    await settled();
    await sleep(GAP_MS + 200);
    expect(badges).toEqual([{ uid: '62E3086CED', reader: 'desk-reader (rdm6300)' }]);
    const sent = sim.truth().taps[0]!.frames;
    expect(sent).toBeGreaterThanOrEqual(5); // the card was really repeated
    expect(detail()).toMatchObject({ taps: 1, repeats: sent - 1 });
    expect(reader.health().lastSeen).not.toBeNull();
  });

  it.skipIf(skip)('gives two badge events for two taps further apart than repeatGapMs', async () => {
    badges.length = 0;
    await sim.tap('1A0044C3F1', 200);
    await sleep(GAP_MS * 2);
    await sim.tap('1A0044C3F1', 200);
    await settled();
    expect(badges.map((b) => b.uid)).toEqual(['1A0044C3F1', '1A0044C3F1']);
    expect(detail().taps).toBe(3);
  });

  it.skipIf(skip)('turns a flood of garbage and bad checksums into counters and a few log lines, never a badge, and keeps working', async () => {
    badges.length = 0;
    const before = detail().frames;
    const warnsBefore = logs.length;
    sim.garbage(1000);
    for (let i = 0; i < 10; i++) sim.badChecksum('62E3086CED');
    sim.garbage(new Uint8Array([STX, ...ascii('62E3086CEZ08'), ETX])); // a non-hex digit
    await waitFor(() => detail().frames.rejected['non-hex'] === before.rejected['non-hex']! + 1, 10_000, 'the whole flood decoded');
    expect(badges).toEqual([]);
    const after = detail().frames;
    expect(after.valid).toBe(before.valid);
    expect(after.rejected.checksum! - before.rejected.checksum!).toBe(10);
    expect(after.rejected.garbage! - before.rejected.garbage!).toBeGreaterThanOrEqual(Math.floor(1000 / MAX_GARBAGE_RUN) - 2);
    expect(after.discardedBytes - before.discardedBytes).toBe(1000 + 11 * 14);

    // The first five in full, the rest summed up a window later.
    await sleep(LOG_WINDOW_MS + 300);
    const warns = logs.slice(warnsBefore).filter((l) => typeof l.msg === 'string' && /rejected input/.test(l.msg));
    const full = warns.filter((w) => /^desk-reader: rejected input from the RFID reader: /.test(String(w.msg)));
    const summaries = warns.filter((w) => /^desk-reader: \d+ more rejected inputs from the RFID reader \(.*\); last: /.test(String(w.msg)));
    expect(full.length + summaries.length).toBe(warns.length);
    // Normally one window; a second only if the machine was so slow that the flood outlasted it.
    expect(full.length).toBeGreaterThanOrEqual(5);
    expect(full.length).toBeLessThanOrEqual(10);
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.length).toBeLessThanOrEqual(2);
    expect(full[0]).toMatchObject({ level: 40, device: 'desk-reader', problem: expect.any(String), bytes: expect.any(String) });
    // Every rejection is in the log: a few in full, the rest in the summaries.
    const summed = summaries.flatMap((w) => Object.values(w.held as Record<string, number>));
    const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    expect(full.length + summed.reduce((a, b) => a + b, 0)).toBe(total(after.rejected) - total(before.rejected));

    await sim.tap('62E3086CED', 150);
    await waitFor(() => badges.length === 1);
    expect(badges[0]!.uid).toBe('62E3086CED');
  });

  it.skipIf(skip)('delivers a flood of different badges without loss', async () => {
    badges.length = 0;
    const ids = Array.from({ length: 300 }, (_, i) => (0xa000000000 + i * 7919).toString(16).toUpperCase());
    for (const id of ids) void sim.tap(id, 0);
    await waitFor(() => badges.length === ids.length, 15_000, 'every badge delivered');
    expect(badges.map((b) => b.uid)).toEqual(ids);
    await settled();
    expect(reader.health().state).toBe('online');
  });

  it.skipIf(skip)('goes offline on unplug and online again on replug, journaling each step', async () => {
    await transport.unplug();
    await waitFor(() => !reader.isOnline);
    expect(reader.health().state).toBe('offline');
    await sleep(200);
    await transport.replug();
    await waitFor(() => reader.isOnline, 20_000);
    expect(journal.events({ deviceId: 'desk-reader' }).map((e) => e.kind).slice(-2)).toEqual(['device.lost', 'device.reconnected']);
    expect(detail().link.reconnects).toBeGreaterThanOrEqual(1);
    badges.length = 0;
    // Another card: the last one may have been read within the gap, across the reconnect.
    await sim.tap('0102030405', 150);
    await waitFor(() => badges.length === 1);
    expect(badges[0]!.uid).toBe('0102030405');
  });
});
