/** The gateway and the simulator as a user runs them: separate processes, signals, stdin. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import Database from 'better-sqlite3';
import { readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { adminHeaders, freePort, killCliChildren, runCli, startTestGateway, tempDir, waitFor } from './helpers.js';

afterEach(killCliChildren);

describe('ovn-gateway run', () => {
  it('runs a simulated lab from a config file, serves health, and stops cleanly on SIGTERM', async () => {
    const dir = tempDir('cli');
    const [simPort, httpPort] = [await freePort(), await freePort()];
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `gateway: { dataDir: data, log: { format: json } }
simulators: [{ kind: node, listen: "127.0.0.1:${simPort}", nodeId: n1, scenario: taps.yaml }]
devices: [{ id: n1, kind: metering-node, serial: { path: "socket://127.0.0.1:${simPort}" } }]
`,
    );
    writeFileSync(join(dir, 'taps.yaml'), '- { after: 500, do: "badge 04A1B2C3" }\n- { after: 100, do: "badge 0411223344" }\n');
    const auth = adminHeaders(join(dir, 'data'));
    const gw = runCli(['run', '--config', config, '--http-port', String(httpPort)]);
    const health = await waitFor(async () => {
      const h = (await (await fetch(`http://127.0.0.1:${httpPort}/api/health`, auth)).json()) as { devices: { state: string }[] };
      return h.devices[0]?.state === 'online' ? h : null;
    }, 15_000);
    expect(health).toMatchObject({ status: 'ok', devices: [{ id: 'n1', kind: 'metering-node', lastSeen: expect.any(String) }] });
    // JSON logs when not on a terminal
    const logged = () => gw.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; uid?: string });
    expect(logged().some((l) => l.msg.includes('HTTP API on'))).toBe(true);
    // the scenario played: both taps reached the gateway through the protocol
    await waitFor(() => logged().filter((l) => l.msg === 'badge tapped').length === 2);
    expect(logged().filter((l) => l.msg === 'badge tapped').map((l) => l.uid)).toEqual(['04A1B2C3', '0411223344']);

    gw.kill('SIGTERM');
    const [code] = await once(gw, 'exit');
    expect(code).toBe(0);
    const journal = Journal.open(join(dir, 'data'));
    const kinds = journal.events().map((e) => e.kind);
    journal.close();
    expect(kinds.filter((k) => k !== 'api-token.created')[0]).toBe('gateway.started'); // the test's token was made before the start
    expect(kinds).toContain('device.hello');
    expect(kinds.at(-1)).toBe('gateway.stopped');
  });

  it('starts from an empty journal with --fresh, keeping the one before aside', { timeout: 60_000 }, async () => {
    const dir = tempDir('cli');
    const config = join(dir, 'lab.yaml');
    writeFileSync(config, 'gateway: { dataDir: data, log: { format: json } }\n');
    const before = Journal.open(join(dir, 'data'));
    before.record('tool.status', 'printer', { status: 'blocked', reason: 'from the last demo' });
    before.close();
    const httpPort = await freePort();
    const gw = runCli(['run', '--fresh', '--config', config, '--http-port', String(httpPort)]);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${httpPort}/api/health`)).ok, 20_000, 'the gateway up');
    gw.kill('SIGTERM');
    expect((await once(gw, 'exit'))[0]).toBe(0);
    const aside = readdirSync(join(dir, 'data')).filter((f) => /^journal\.replaced\..+\.sqlite$/.test(f));
    expect(aside).toHaveLength(1);
    expect(gw.lines).toContain(`the journal so far is kept at ${join(dir, 'data', aside[0]!)}; starting from an empty one`);
    const kinds = (file: string) => {
      const db = new Database(join(dir, 'data', file), { readonly: true });
      try {
        return db.prepare('SELECT kind FROM events ORDER BY id').pluck().all() as string[];
      } finally {
        db.close();
      }
    };
    expect(kinds(aside[0]!)).toEqual(['tool.status']);
    expect(kinds('journal.sqlite')).toEqual(['gateway.started', 'gateway.stopped']);
  });

  it('explains a port already in use instead of printing a stack trace', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as { port: number }).port;
    const dir = tempDir('cli');
    writeFileSync(join(dir, 'lab.yaml'), 'gateway: { dataDir: data }\n');
    const gw = runCli(['run', '--config', join(dir, 'lab.yaml'), '--http-port', String(port)]);
    const [code] = await once(gw, 'exit');
    blocker.close();
    expect(code).toBe(1);
    expect(gw.lines.join('\n')).toContain('address already in use');
    expect(gw.lines.join('\n')).not.toMatch(/\n\s+at /);
  });
});

describe('ovn-gateway sim node', () => {
  it('takes live commands on stdin and prints its ground truth', async () => {
    const port = await freePort();
    const sim = runCli(['sim', 'node', '--tcp', `127.0.0.1:${port}`, '--node-id', 'cli-node']);
    await waitFor(() => sim.lines.some((l) => l.includes(`socket://127.0.0.1:${port}`)), 15_000);
    sim.stdin.write('bogus\n');
    sim.stdin.write('truth\n');
    const truthLine = await waitFor(() => sim.lines.find((l) => l.startsWith('{')));
    expect(JSON.parse(truthLine)).toMatchObject({ boots: [{ resetCause: 'power-on' }], relay: { requested: false, sensed: false } });
    expect(sim.lines.some((l) => l.includes('unknown command "bogus"'))).toBe(true);
    sim.kill('SIGTERM');
    expect((await once(sim, 'exit'))[0]).toBe(0);
  });

  it('rejects a bad scenario file naming the step and the problem', async () => {
    const dir = tempDir('cli');
    writeFileSync(join(dir, 'bad.yaml'), '- { after: -5, do: "badge 01" }\n- { wait: 3 }\n');
    const sim = runCli(['sim', 'node', '--tcp', `127.0.0.1:${await freePort()}`, '--scenario', join(dir, 'bad.yaml')]);
    const [code] = await once(sim, 'exit');
    expect(code).toBe(2);
    const out = sim.lines.join('\n');
    expect(out).toContain('0.after: Too small');
    expect(out).toContain('1.do: Invalid input');
    expect(out).toContain('1.wait: unknown setting');
  });

  it('refuses contradictory options with a clear message', async () => {
    const sim = runCli(['sim', 'node']);
    const [code] = await once(sim, 'exit');
    expect(code).toBe(2);
    expect(sim.lines.join('\n')).toContain('give exactly one of --tcp <host:port> or --pty <path>');
  });
});

/** `ovn-gateway <args>` to its exit, without blocking this process (a gateway may run in it). */
function ovn(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('commands that call the API', () => {
  it('send the token of --token, or of OVN_GATEWAY_TOKEN, and say how to give one when refused', { timeout: 60_000 }, async () => {
    const gw = await startTestGateway({});
    try {
      const { OVN_GATEWAY_TOKEN: _, ...withoutToken } = process.env;
      const refused = await ovn(['sessions', 'list', '--url', gw.url], withoutToken);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/^401: .*\(give an API token with --token or OVN_GATEWAY_TOKEN; ovn-gateway tokens create makes one\)\n$/);
      expect(await ovn(['sessions', 'list', '--url', gw.url, '--token', gw.token], withoutToken)).toEqual({ code: 0, stdout: 'no sessions\n', stderr: '' });
      expect(await ovn(['sessions', 'list', '--url', gw.url], { ...withoutToken, OVN_GATEWAY_TOKEN: gw.token })).toEqual({ code: 0, stdout: 'no sessions\n', stderr: '' });
      const help = await ovn(['print', '--help']);
      expect(help.stdout).toContain('--token <token>');
      expect(help.stdout).toContain('$OVN_GATEWAY_TOKEN');
    } finally {
      await gw.stop();
    }
  });
});

describe('what the command line prints', () => {
  it('writes control and bidi characters of text it did not write as escapes', { timeout: 60_000 }, async () => {
    const data = tempDir('cli-escape');
    const title = '\u001b]0;pwned\u0007';
    const blocked = await ovn(['tools', 'block', 'printer', '--reason', `${title}nozzle \u202eclogged`, '--by', 'mo', '--data', data]);
    expect(blocked).toEqual({ code: 0, stdout: 'printer: blocked (\\x1b]0;pwned\\x07nozzle \\u202eclogged)\n', stderr: '' });
    const listed = await ovn(['tools', 'list', '--data', data]);
    expect(listed.stdout).toBe('tool\tstatus\tsession\nprinter\tblocked (\\x1b]0;pwned\\x07nozzle \\u202eclogged, by mo)\tnone\n');
    // an error message that repeats what was typed
    const clear = await ovn(['affiliates', 'suspend', '\u001b[2J', '--data', data]);
    expect(clear).toEqual({ code: 2, stdout: '', stderr: 'no affiliate "\\x1b[2J" (affiliates list shows who there is)\n' });
  });
});
