/**
 * The C reference implementation (firmware-protocol/c) against the TypeScript protocol: it is
 * compiled with gcc and driven through check_vectors, whose output is compared with
 * firmware-protocol/vectors.json and the message table in messages.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRAME_ERRORS, MAX_FRAME, MAX_PAYLOAD, MAX_WIRE_FRAME, PROTOCOL_VERSION } from '../firmware-protocol/src/codec.js';
import {
  CAPABILITY,
  FAULT_SEVERITY,
  HEARTBEAT_FLAG,
  INDICATE_PATTERN,
  INPUT_BIT,
  MESSAGES,
  NACK_REASON,
  NODE_RELAY_REASON,
  READER,
  RELAY_REASON,
  RELAY_SENSED,
  REQUEST_WHAT,
  RESET_CAUSE,
  type MessageType,
} from '../firmware-protocol/src/messages.js';
import { REPLAY_WINDOW } from '../firmware-protocol/src/replay.js';
import type { JsonMessage, Vectors } from '../firmware-protocol/src/vectors.js';
import { PAST_BOOTS } from '../gateway/src/devices/metering-node/meter.js';

const CC = 'gcc';
const CFLAGS = ['-std=c99', '-Wall', '-Wextra', '-Werror', '-pedantic', '-O2'];
const SOURCES = ['ovn_proto.c', 'check_vectors.c'].map((f) => fileURLToPath(new URL(`../firmware-protocol/c/${f}`, import.meta.url)));
const hasCompiler = spawnSync(CC, ['--version'], { stdio: 'ignore' }).status === 0;
// Without a compiler the suite is skipped on a developer machine, but never in CI.
const skip = !hasCompiler && process.env.CI !== 'true';

const vectors = JSON.parse(readFileSync(new URL('../firmware-protocol/vectors.json', import.meta.url), 'utf8')) as Vectors;

/** nodeId -> node_id: the C field names are the TypeScript ones in snake_case. */
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A message in check_vectors' text form: `<TYPE> seq=<n> <field>=<value> ...`, fields in table order. */
function messageLine(m: JsonMessage): string {
  const parts = [m.type, `seq=${m.seq}`];
  for (const field of MESSAGES[m.type].fields) {
    const v = m[field.name];
    if (v === undefined) throw new Error(`${m.type}.${field.name} missing from vector`);
    const text =
      field.kind === 'str' ? `hex:${Buffer.from(String(v), 'utf8').toString('hex')}` : field.kind === 'bytes' ? `hex:${String(v)}` : String(v);
    parts.push(`${snake(field.name)}=${text}`);
  }
  return parts.join(' ');
}

describe.skipIf(skip)('C reference implementation (firmware-protocol/c)', () => {
  let dir = '';
  let bin = '';
  const cache = new Map<string, string[]>();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ovn-firmware-c-'));
    bin = join(dir, 'check_vectors');
    execFileSync(CC, [...CFLAGS, '-o', bin, ...SOURCES], { stdio: ['ignore', 'pipe', 'pipe'] });
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs check_vectors in `mode` with `lines` on stdin; one output line per result. Memoised. */
  function run(mode: string, lines: string[] = []): string[] {
    const input = lines.map((l) => `${l}\n`).join('');
    const key = `${mode}\0${input}`;
    let out = cache.get(key);
    if (out === undefined) {
      const stdout = execFileSync(bin, [mode], { input, encoding: 'utf8', maxBuffer: 16 << 20 });
      out = stdout.split('\n').filter((l) => l !== '');
      cache.set(key, out);
    }
    return out;
  }

  it('has the message table of messages.ts: codes, senders, reliability, field names, kinds and maxima', () => {
    const expected = (Object.keys(MESSAGES) as MessageType[])
      .map((t) => MESSAGES[t])
      .sort((a, b) => a.code - b.code)
      .map((spec) => {
        const type = (Object.keys(MESSAGES) as MessageType[]).find((t) => MESSAGES[t] === spec)!;
        const fields = spec.fields.map((f) => {
          const max = 'max' in f ? `:${f.max}` : '';
          return ` ${snake(f.name)}:${f.kind}${max}`;
        });
        return `${type} code=${spec.code} from=${spec.from} reliable=${spec.reliable ? 1 : 0}${fields.join('')}`;
      });
    expect(run('table')).toEqual(expected);
  });

  it('has the constants of codec.ts and messages.ts, and error names in FRAME_ERRORS order', () => {
    const out = new Map(run('consts').map((l) => l.split('=') as [string, string]));
    FRAME_ERRORS.forEach((name, i) => expect(out.get(`error-${i + 1}`), name).toBe(name));
    const expected: Record<string, number> = {
      OVN_PROTOCOL_VERSION: PROTOCOL_VERSION,
      OVN_MAX_PAYLOAD: MAX_PAYLOAD,
      OVN_MAX_FRAME: MAX_FRAME,
      OVN_MAX_WIRE_FRAME: MAX_WIRE_FRAME,
      OVN_REPLAY_WINDOW: REPLAY_WINDOW,
      OVN_PAST_BOOTS: PAST_BOOTS,
    };
    const groups: Record<string, Readonly<Record<string, number>> | readonly string[]> = {
      CAPABILITY, RESET_CAUSE, HEARTBEAT_FLAG, READER, RELAY_SENSED, RELAY_REASON, NODE_RELAY_REASON,
      INPUT_BIT, FAULT_SEVERITY, INDICATE_PATTERN, REQUEST_WHAT, NACK_REASON,
    };
    for (const [group, values] of Object.entries(groups)) {
      const entries: [string, number][] = Array.isArray(values)
        ? values.map((name: string, i: number) => [name, i])
        : Object.entries(values as Record<string, number>);
      for (const [name, value] of entries) expected[`OVN_${group}_${name.toUpperCase().replace(/-/g, '_')}`] = value;
    }
    const actual = Object.fromEntries([...out].filter(([k]) => k.startsWith('OVN_')).map(([k, v]) => [k, Number(v)]));
    expect(actual).toEqual(expected);
  });

  it('computes the CRC-16/CCITT-FALSE check value', () => {
    expect(run('crc', [Buffer.from('123456789').toString('hex')])).toEqual([vectors.crc.check]);
  });

  describe('decodes every valid vector', () => {
    const input = vectors.valid.flatMap((v) => [v.hex, v.hex.replace(/00$/, '')]);
    it.each(vectors.valid.map((v, i) => [v.name, v, i] as const))('%s', (_name, v, i) => {
      const out = run('decode', input);
      expect(out[2 * i]).toBe(`ok ${messageLine(v.message)}`);
      expect(out[2 * i + 1], 'without the trailing delimiter').toBe(`ok ${messageLine(v.message)}`);
    });
  });

  describe('encodes every valid vector that is not decode-only', () => {
    const encodable = vectors.valid.filter((v) => !v.decodeOnly);
    it.each(encodable.map((v, i) => [v.name, v, i] as const))('%s', (_name, v, i) => {
      expect(run('encode', encodable.map((e) => messageLine(e.message)))[i]).toBe(v.hex);
    });
  });

  describe('rejects every invalid vector with its error name', () => {
    it.each(vectors.invalid.map((v, i) => [v.name, v, i] as const))('%s', (_name, v, i) => {
      expect(run('decode', vectors.invalid.map((x) => x.hex))[i]).toBe(`err ${v.error}`);
    });
  });

  it('frames a concatenated stream of every vector, resynchronising after each rejected frame', () => {
    const first = vectors.valid[0]!;
    const stream = [...vectors.valid.map((v) => v.hex), ...vectors.invalid.map((v) => `00${v.hex}`), first.hex].join('');
    expect(run('stream', [stream])).toEqual([
      ...vectors.valid.map((v) => `ok ${messageLine(v.message)}`),
      ...vectors.invalid.map((v) => `err ${v.error}`),
      `ok ${messageLine(first.message)}`,
    ]);
  });

  it('gives the replay window\'s verdicts, the wrapping counters\' growths and the boots\' verdicts of the vectors', () => {
    expect(run('replay', vectors.replay.cases.map((c) => c.seqs.join(' ')))).toEqual(vectors.replay.cases.map((c) => c.verdicts.join(' ')));
    expect(run('growth', vectors.counters.cases.map((c) => `${c.last} ${c.now}`))).toEqual(vectors.counters.cases.map((c) => String(c.growth)));
    expect(run('boots', vectors.boots.cases.map((c) => c.bootIds.join(' ')))).toEqual(vectors.boots.cases.map((c) => c.verdicts.join(' ')));
  });

  it('refuses to encode a str or bytes field over its maximum', () => {
    const tooLong = (n: number) => `hex:${'41'.repeat(n)}`;
    expect(
      run('encode', [
        `INDICATE seq=1 pattern=1 duration_ms=10 text=${tooLong(32)}`,
        `INDICATE seq=1 pattern=1 duration_ms=10 text=${tooLong(33)}`,
        `BADGE seq=1 reader=1 uid=${tooLong(11)}`,
      ]).map((l) => (l.startsWith('err') ? l : 'hex')),
    ).toEqual(['hex', 'err payload', 'err payload']);
  });
});
