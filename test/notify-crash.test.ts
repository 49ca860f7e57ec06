/**
 * The gateway killed with SIGKILL while notifications wait for a receiver that refuses them,
 * then started again with the receiver back: each is delivered, and accepted exactly once; an
 * event committed while it was down (its notices not written) is told once at the restart.
 * The gateway runs as a child process (`ovn-gateway run`); the webhook receiver in this one.
 */
import Database from 'better-sqlite3';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { adminHeaders, freePort, killCliChildren, runCli, tempDir, type CliProcess } from './helpers.js';
import { HttpReceiver } from './notify-receivers.js';

const MONTHS = ['2026-01', '2026-02', '2026-03', '2026-04', '2026-05'];
const LATE = '2026-06';

afterEach(() => killCliChildren());

/** `ovn-gateway run` until it says its API listens. */
async function run(config: string, port: number): Promise<CliProcess> {
  const child = runCli(['run', '--config', config, '--http-port', String(port)]);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => (output += d.toString()).includes('HTTP API on') && resolve());
    child.on('exit', (code) => reject(new Error(`the gateway exited with ${code}:\n${output}`)));
  });
  return child;
}

describe('notifications across a crash', () => {
  it('delivers every notification queued when the gateway was killed, each accepted once, after the restart', async () => {
    const dir = tempDir('notify-crash');
    const hook = await new HttpReceiver().start();
    let up = false;
    const accepted: string[] = [];
    hook.answer = (r) => {
      if (!up) return { status: 503 };
      accepted.push((JSON.parse(r.body) as { id: string }).id);
      return { status: 200 };
    };
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `gateway: { dataDir: data, log: { format: json } }
billing: { currency: CAD }
notifications:
  channels: { hook: { kind: webhook, url: "${hook.url}/hook", secret: a-secret-of-sixteen-chars } }
  recipients: { custodian: [{ channel: hook }] }
  maxAttempts: 1000
  backoff: { initialMs: 20, maxMs: 200 }
`,
    );
    const port = await freePort();
    const auth = adminHeaders(join(dir, 'data')).headers as Record<string, string>;
    let gateway = await run(config, port);
    for (const m of MONTHS) {
      const res = await fetch(`http://127.0.0.1:${port}/api/billing/periods/${m}/close`, { method: 'POST', headers: auth });
      expect(res.status).toBe(200);
    }
    await hook.received(2); // tried and refused, then tried again
    const exited = once(gateway, 'exit');
    gateway.kill('SIGKILL');
    await exited;

    // an event committed whose notices were not written yet (the gateway died between the two): its cursor is behind it
    const journal = Journal.open(join(dir, 'data'));
    journal.record('billing.period-closed', null, { period: LATE, by: 'carol' });
    journal.close();

    up = true;
    const before = hook.requests.length;
    gateway = await run(config, port);
    await hook.received(before + MONTHS.length + 2); // the one closed while it was down, and the month that has ended, ready to close
    const stopped = once(gateway, 'exit');
    gateway.kill('SIGTERM'); // a delivery in flight is recorded before it exits
    await stopped;

    const ready = `month-ready:${new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 1)).toISOString().slice(0, 7)}`;
    expect(accepted.filter((k) => k !== ready)).toEqual([...MONTHS, LATE].map((m) => `month-closed:${m}`));
    expect(accepted.filter((k) => k === ready)).toHaveLength(1);
    const db = new Database(join(dir, 'data', 'journal.sqlite'), { readonly: true });
    try {
      expect(db.prepare(`SELECT key, state FROM notifications WHERE kind = 'month-closed' ORDER BY seq`).all()).toEqual([...MONTHS, LATE].map((m) => ({ key: `month-closed:${m}`, state: 'delivered' })));
      expect(db.prepare(`SELECT count(*) FROM notifications WHERE state <> 'delivered'`).pluck().get()).toBe(0);
    } finally {
      db.close();
    }
    await hook.stop();
  });
});
