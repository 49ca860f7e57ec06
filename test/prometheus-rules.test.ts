/**
 * deploy/prometheus/alerts.yml: valid (`promtool check rules`), behaving as its unit tests say
 * (`promtool test rules`), and over metrics a running gateway exports.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startTestGateway, waitFor, type TestGateway } from './helpers.js';

const dir = join(import.meta.dirname, '..', 'deploy', 'prometheus');
const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

describe('Prometheus alert rules', () => {
  let gw: TestGateway | null = null;
  afterAll(() => gw?.stop());

  it.skipIf(!hasPromtool && process.env.CI !== 'true')('pass promtool check rules and promtool test rules', () => {
    for (const args of [['check', 'rules', 'alerts.yml'], ['test', 'rules', 'alerts.test.yml']]) {
      const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8' });
      expect(r.status, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('name only metrics the gateway exports; a notification given up on shows in health and /metrics', async () => {
    const names = new Set(readFileSync(join(dir, 'alerts.yml'), 'utf8').match(/\bovn_gateway_[a-z_]+/g));
    expect(names.size).toBeGreaterThan(5);
    // a webhook nobody listens on, given up on at the first try: a dead letter in health and /metrics
    const hook = { kind: 'webhook', url: `http://127.0.0.1:${await freePort()}/`, secret: 'sixteen-characters' };
    gw = await startTestGateway({ notifications: { channels: { hook }, recipients: { custodian: [{ channel: 'hook' }] }, maxAttempts: 1 } });
    gw.journal.record('billing.period-closed', null, { period: '2026-11', by: 'carol' });
    const health = await waitFor(async () => {
      const h = (await gw!.health()) as unknown as { problems: string[]; notifications: { deadLetters: number } };
      return h.notifications.deadLetters === 1 && h;
    });
    expect(health.problems).toContain('notifications: 1 dead letter(s) (ovn-gateway notify dead-letters)');
    const text = await (await gw.fetch(`${gw.url}/metrics`)).text();
    expect(text).toContain('ovn_gateway_notifications{state="dead"} 1');
    const exported = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    for (const name of names) expect(exported, `${name} in alerts.yml`).toContain(name.replace(/_bucket$/, ''));
  });
});
