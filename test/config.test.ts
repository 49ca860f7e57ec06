import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../gateway/src/config/load.js';

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');

function problems(text: string): string[] {
  try {
    parseConfig(text, 'lab.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  it('accepts the shipped example config', () => {
    const { config } = loadConfig(join(import.meta.dirname, '..', 'config', 'simulated-lab.yaml'));
    expect(config.devices.map((d) => d.id)).toEqual(['printer-node-1', 'mk3s', 'rig-1', 'rig-1-reader']);
    expect(config.gateway.http.port).toBe(8080);
  });

  it('fills defaults for an empty file', () => {
    expect(parseConfig('', 'empty.yaml')).toMatchObject({ gateway: { dataDir: './data', http: { host: '127.0.0.1', port: 8080 } }, devices: [] });
  });

  it('reads JSON as well as YAML', () => {
    expect(parseConfig('{"gateway": {"name": "Lab"}}', 'lab.json').gateway.name).toBe('Lab');
  });

  it('lists every problem as path: what is wrong', () => {
    const found = problems(`
gateway:
  http: { port: 99999 }
  colour: blue
devices:
  - { id: Printer, kind: metering-node, serial: { path: /dev/ttyUSB0 } }
  - { id: laser, kind: laser-cutter }
  - { id: node-2, kind: metering-node, serial: { path: /dev/ttyUSB1 }, livenessHeartbeats: 1 }
  - { id: node-2, kind: metering-node, serial: { path: /dev/ttyUSB2 } }
  - { id: node-3, kind: metering-node, serial: { path: "socket://bridge.local" } }
`);
    expect(found).toEqual([
      'gateway.http.port: Too big: expected number to be <=65535',
      'gateway.colour: unknown setting (misspelt, or not supported by this version)',
      'devices.0.id: lowercase letters, digits and dashes, starting with a letter or digit',
      expect.stringMatching(/^devices\.1\.kind: /),
      'devices.2.livenessHeartbeats: Too small: expected number to be >=2',
      'devices.4.serial.path: a TCP bridge is written socket://host:port, e.g. socket://192.168.1.20:4000',
      'devices.3.id: duplicate device id "node-2" (also devices.2.id)',
    ]);
    expect(problems('devices:\n  - { id: a, kind: metering-node, serial: { path: x } }\n  - { id: a, kind: metering-node, serial: { path: y } }')).toEqual([
      'devices.1.id: duplicate device id "a" (also devices.0.id)',
    ]);
  });

  it('checks that each tool names a metering node and a printer that exist', () => {
    expect(
      problems(`
devices:
  - { id: node-1, kind: metering-node, serial: { path: /dev/ttyUSB0 } }
tools:
  - { id: printer, node: node-2 }
  - { id: laser, node: node-1, printer: node-1 }
`),
    ).toEqual(['tools.0.node: no device "node-2" in devices', 'tools.1.printer: "node-1" is a metering-node, not a printer']);
  });

  it('checks that a simulated node counting faster than life plays a device whose physics allow it', () => {
    const lab = (rate: string) => `
simulators: [{ kind: node, listen: "127.0.0.1:7101", timeScale: 60 }]
devices: [{ id: n1, kind: metering-node, ${rate} serial: { path: "socket://127.0.0.1:7101" } }]
`;
    expect(problems(lab(''))).toEqual([
      'simulators.0.timeScale: it counts time 60 times faster than life, and device "n1" allows 1.05: give that device maxClockRate: 60 or more, or its readings are set aside as implausible',
    ]);
    expect(problems(lab('maxClockRate: 60,'))).toEqual([]);
  });

  it('points at the line of a YAML syntax error', () => {
    expect(problems('gateway:\n  http: [\n')[0]).toMatch(/^line \d+, column \d+: /);
  });

  it('ovn-gateway config check: ok, or every problem and exit code 2 without a stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovn-config-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'devices: []\n');
    expect(execFileSync(process.execPath, [cli, 'config', 'check', good], { encoding: 'utf8' })).toMatch(/ok \(0 devices, 0 simulators\)/);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'gateway: { http: { port: -1 } }\ndevices: [{ id: x, kind: metering-node }]\n');
    const r = spawnSync(process.execPath, [cli, 'config', 'check', bad], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('2 problems');
    expect(r.stderr).toContain('gateway.http.port: Too small');
    expect(r.stderr).toContain('devices.0.serial: Invalid input');
    expect(r.stderr).not.toMatch(/\n\s+at /);

    const missing = spawnSync(process.execPath, [cli, 'run', '--config', join(dir, 'nope.yaml')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read it: ENOENT');
  });

  it('ovn-gateway config schema prints the JSON Schema derived from the same zod schema', () => {
    const schema = JSON.parse(execFileSync(process.execPath, [cli, 'config', 'schema'], { encoding: 'utf8' }));
    expect(schema.$schema).toMatch(/json-schema/);
    expect(Object.keys(schema.properties)).toEqual(['gateway', 'devices', 'simulators', 'tools', 'useTypes', 'ledger', 'mqtt', 'bridge', 'billing', 'notifications', 'affiliates']);
    expect(JSON.stringify(schema)).toContain('socket://host:port');
  });
});
