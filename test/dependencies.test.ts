/** What the package promises (engines.node) against what the lock installs: npm ci on the oldest Node it promises warns of no engine. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Whether Node `version` (x.y.z) is in an engines range, in the forms npm packages write:
 * alternatives joined by ||, each a list of comparators (>=, >, <=, <, ^, ~, or a bare
 * version where missing or x parts match anything), or *.
 */
function accepts(range: string, version: string): boolean {
  const v = version.split('.').map(Number);
  const cmp = (parts: number[]) => v.map((x, i) => x - (parts[i] ?? 0)).find((d) => d !== 0) ?? 0;
  return range.split('||').some((alt) =>
    [...alt.matchAll(/(>=|<=|>|<|\^|~|=)?\s*(\*|\d+(?:\.(?:\d+|x))*)/g)].every(([, op = '=', ver]) => {
      if (ver === '*') return true;
      const given = ver!.split('.').filter((x) => x !== 'x').map(Number);
      const c = cmp(given);
      if (op === '>=') return c >= 0;
      if (op === '>') return c > 0;
      if (op === '<=') return c <= 0;
      if (op === '<') return c < 0;
      if (op === '^') return c >= 0 && v[0] === given[0];
      if (op === '~') return c >= 0 && v[0] === given[0] && (given.length < 2 || v[1] === given[1]);
      return given.every((x, i) => v[i] === x);
    }),
  );
}

const root = join(import.meta.dirname, '..');
const read = (file: string) => JSON.parse(readFileSync(join(root, file), 'utf8')) as Record<string, unknown>;

describe('dependencies', () => {
  it('install on the oldest Node.js the package promises: the gateway’s from 20.0, the test and lint tools’ from 20.19', () => {
    const promised = (read('package.json').engines as { node: string }).node;
    expect(promised).toBe('>=20');
    const oldest = '20.0.0';
    // the reader of ranges itself
    expect([accepts('^20.19.0 || >=22.12.0', '20.18.9'), accepts('^20.19.0 || >=22.12.0', '21.0.0'), accepts('>=16 || 14 >=14.17', '14.17.1'), accepts('20.x || 22.x', '20.1.0'), accepts('>= 0.8', '20.0.0')]).toEqual([false, false, true, true, true]);
    const packages = read('package-lock.json').packages as Record<string, { dev?: boolean; engines?: { node?: string } | string[] }>;
    const refusing = Object.entries(packages).flatMap(([path, p]) => {
      const wants = !Array.isArray(p.engines) ? p.engines?.node : undefined;
      const on = p.dev ? '20.19.0' : oldest;
      return wants && !accepts(wants, on) ? [`${path} wants Node ${wants}, not ${on}`] : [];
    });
    expect(refusing).toEqual([]);
  });
});
