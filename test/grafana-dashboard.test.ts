/**
 * deploy/grafana/ovn-gateway.json: a dashboard Grafana imports (its shape), whose every query
 * names only metrics a running gateway exports. That each query evaluates on a real
 * Prometheus is checked in prometheus-scrape.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource: { uid: string } }[];
}
const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'deploy', 'grafana', 'ovn-gateway.json'), 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  __inputs: { name: string; type: string; pluginId: string }[];
  templating: { list: { name: string; query: { query: string } }[] };
  panels: Panel[];
};
/** Every PromQL expression of the dashboard (its panels' and its variables'). */
const dashboardQueries = (): string[] => [...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.query.query)];

describe('the Grafana dashboard', () => {
  let gw: TestGateway | null = null;
  afterAll(() => gw?.stop());

  it('has the shape Grafana imports: a uid, a Prometheus input, panels with unique ids on a 24-column grid', () => {
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.__inputs).toMatchObject([{ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }]);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource?.uid, p.title).toBe('${DS_PROMETHEUS}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource.uid).toBe('${DS_PROMETHEUS}');
    }
  });

  it('shows tools in use, energy, filament, faults, money per fund and the ledger backlog', () => {
    const all = dashboardQueries().join('\n');
    for (const name of ['ovn_gateway_tool_in_use', 'ovn_gateway_energy_joules_total', 'ovn_gateway_filament_grams_total', 'ovn_gateway_device_fault', 'ovn_gateway_fund_charged', 'ovn_gateway_outbox_backlog']) expect(all).toContain(name);
  });

  it('names only metrics the gateway exports, and never an affiliate', async () => {
    gw = await startTestGateway({});
    const text = await (await gw.fetch(`${gw.url}/metrics`)).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    const named = new Set(dashboardQueries().flatMap((q) => q.match(/\bovn_gateway_[a-z_]+/g) ?? []));
    expect(named.size).toBeGreaterThan(15);
    expect([...named].filter((n) => !exported.has(n))).toEqual([]);
    expect(dashboardQueries().join('\n')).not.toMatch(/affiliate/);
  });
});
