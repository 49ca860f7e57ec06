/** The demo of `npm start`: what its log says while the story plays. */
import { getEventListeners } from 'node:events';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../gateway/src/log.js';
import { playScenario, SimControl } from '../simulators/src/control.js';
import type { RunningLab } from '../simulators/src/lab.js';
import { adminFetch, demoLabOnFreePorts, waitFor } from './helpers.js';

describe('the demo log', () => {
  let lab: RunningLab | undefined;
  afterAll(() => lab?.stop());

  it('has no warning that is not about the story, from the start to the end of Ada’s print', { timeout: 240_000 }, async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`process: ${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split('\n')) {
            if (!line) continue;
            const entry = JSON.parse(line) as { level: number; msg: string };
            if (entry.level >= 40) warnings.push(`log: ${entry.msg}`);
          }
          done();
        },
      });
      lab = await demoLabOnFreePorts({ logger: createLogger({ level: 'info', format: 'json' }, sink) });
      const journal = lab.journal;
      await waitFor(() => journal.events({ kind: 'session.ended', deviceId: 'printer' })[0], 200_000, 'Ada’s session to end after her print');
    } finally {
      process.off('warning', onWarning);
    }
    // The payback bars show every co-owner by name.
    const { fetch: admin } = adminFetch(lab);
    const [payback, affiliates] = (await Promise.all([admin(`${lab.url}/api/billing/payback`), admin(`${lab.url}/api/affiliates`)].map(async (r) => (await r).json()))) as [
      { coOwners: { affiliateId: string }[] }[],
      { id: string; name: string }[],
    ];
    const named = new Map(affiliates.map((a) => [a.id, a.name]));
    const coOwners = payback.flatMap((p) => p.coOwners.map((c) => c.affiliateId));
    expect(coOwners).toHaveLength(11);
    expect(coOwners.filter((id) => !named.get(id) || named.get(id) === id)).toEqual([]);
    // Ada badges out while her print runs: the one warning the story tells.
    expect(warnings).toContain('log: session end deferred: the tool is busy');
    expect(warnings.filter((w) => !STORY.some((s) => s.test(w)))).toEqual([]);
  });
});

/** The warnings the demo's story is about. */
const STORY = [
  /^log: session end deferred: the tool is busy$/, // Ada badges out while the printer prints
  /^log: rig-1 is offline: /, // the rig's moment of flaky network drops its connection
];

describe('a scenario', () => {
  it('leaves no abort listener behind, however many steps it plays', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const seen: string[] = [];
      const control = new SimControl({ say: { args: '<n>', help: 'say n', run: (a) => void seen.push(a.rest(0)) } }, null);
      const ends = new AbortController();
      const steps = Array.from({ length: 25 }, (_, i) => ({ after: 1, do: `say ${i}` }));
      // three scenarios on one signal, as the lab plays them
      await Promise.all([1, 2, 3].map(() => playScenario(control, steps, () => {}, ends.signal)));
      expect(seen).toHaveLength(75);
      expect(getEventListeners(ends.signal, 'abort')).toHaveLength(0);
      // an abort while a step waits ends the scenario at once
      const long = playScenario(control, [{ after: 60_000, do: 'say late' }], () => {}, ends.signal);
      ends.abort();
      await long;
      expect(seen).not.toContain('late');
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });
});
