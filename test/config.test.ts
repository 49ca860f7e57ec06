import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../gateway/src/config/load.js';
import { demoGcode } from '../simulators/src/printer/sample-gcode.js';

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
    expect(config.devices.map((d) => d.id)).toEqual(['printer-node-1', 'mk3s', 'voron', 'rig-1', 'rig-1-reader']);
    expect(config.gateway.http.port).toBe(8080);
    // the gateway holds the simulated card's own demo print: the two must be the same file
    expect(readFileSync(join(import.meta.dirname, '..', 'config', 'demo.gcode'), 'latin1')).toBe(demoGcode());
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
    ).toEqual(['tools.0.node: no device "node-2" in devices', 'tools.1.printer: "node-1" is a metering-node, not a printer or a moonraker-printer or a prusalink-printer']);
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

  it('names the kinds of devices with their articles', () => {
    const lab = `devices:
  - { id: plug, kind: mqtt-instrument, model: smart-plug }
  - { id: n1, kind: metering-node, serial: { path: "socket://127.0.0.1:1" } }
mqtt: { listen: "127.0.0.1:0", baseTopic: ovn/lab }
tools: [{ id: t, node: plug, printer: n1 }]
`;
    expect(problems(lab)).toEqual(['tools.0.node: "plug" is an mqtt-instrument, not a metering-node', 'tools.0.printer: "n1" is a metering-node, not a printer or a moonraker-printer or a prusalink-printer']);
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

  it('ovn-gateway config check reads the files the config names as run would, and run refuses them before it opens the journal', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovn-config-'));
    const config = join(dir, 'lab.yaml');
    writeFileSync(join(dir, 'bad-steps.yaml'), '- { after: -5, do: "badge 01" }\n');
    writeFileSync(join(dir, 'cert.pem'), 'not a certificate\n');
    writeFileSync(
      config,
      `gateway: { dataDir: data }
mqtt: { listen: "127.0.0.1:0", baseTopic: ovn/lab, tls: { port: 0, cert: cert.pem, key: missing-key.pem } }
simulators:
  - { kind: node, listen: "127.0.0.1:7999", scenario: nope.yaml }
  - { kind: printer, listen: "127.0.0.1:7998", scenario: bad-steps.yaml }
`,
    );
    const check = spawnSync(process.execPath, [cli, 'config', 'check', config], { encoding: 'utf8' });
    expect(check.status).toBe(2);
    expect(check.stderr.split('\n').slice(1).map((l) => l.trim()).filter(Boolean)).toEqual([
      `simulators.0.scenario (${join(dir, 'nope.yaml')}): (file): cannot read it: ENOENT`,
      `simulators.1.scenario (${join(dir, 'bad-steps.yaml')}): 0.after: Too small: expected number to be >=0`,
      `mqtt.tls.key (${join(dir, 'missing-key.pem')}): cannot read it: ENOENT`,
    ]);
    const run = spawnSync(process.execPath, [cli, 'run', '--config', config], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(check.stderr);
    expect(existsSync(join(dir, 'data')), 'the journal was not touched').toBe(false);
    // the simulators' files are another process's when they run on their own
    const apart = spawnSync(process.execPath, [cli, 'run', '--no-simulators', '--config', config], { encoding: 'utf8' });
    expect(apart.stderr.split('\n').slice(1).map((l) => l.trim()).filter(Boolean)).toEqual([`mqtt.tls.key (${join(dir, 'missing-key.pem')}): cannot read it: ENOENT`]);

    writeFileSync(join(dir, 'nope.yaml'), '- { after: 100, do: "badge 01" }\n');
    writeFileSync(join(dir, 'bad-steps.yaml'), '[]\n');
    writeFileSync(join(dir, 'missing-key.pem'), 'not a key either\n');
    const tls = spawnSync(process.execPath, [cli, 'config', 'check', config], { encoding: 'utf8' });
    expect(tls.status).toBe(2);
    expect(tls.stderr).toContain('  mqtt.tls (cert.pem, missing-key.pem): ');
  });

  it('ovn-gateway config schema prints the JSON Schema derived from the same zod schema', () => {
    const schema = JSON.parse(execFileSync(process.execPath, [cli, 'config', 'schema'], { encoding: 'utf8' }));
    expect(schema.$schema).toMatch(/json-schema/);
    expect(Object.keys(schema.properties)).toEqual(['gateway', 'devices', 'simulators', 'tools', 'useTypes', 'ledger', 'mqtt', 'bridge', 'homeassistant', 'billing', 'printJobs', 'notifications', 'affiliates']);
    expect(JSON.stringify(schema)).toContain('socket://host:port');
  });
});
