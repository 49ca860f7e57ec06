/** `ovn-gateway backup` while the journal is being written by another process, and `restore`. */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Journal } from '../gateway/src/journal/journal.js';
import { verifyJournalFile } from '../gateway/src/journal/verify.js';
import { freePort, tempDir, waitFor } from './helpers.js';

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return once(child, 'exit').then(([status]) => ({ status: status as number | null, stdout, stderr }));
}

function journalWith(events: number): { dir: string; file: string } {
  const dir = tempDir('backup');
  const j = Journal.open(dir);
  for (let i = 0; i < events; i++) j.record('meter.reading', 'n1', { i, text: 'x'.repeat(200) });
  j.close();
  return { dir, file: join(dir, 'journal.sqlite') };
}

const hashOf = (file: string, id: number) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT hash FROM events WHERE id = ?').get(id) as { hash: string }).hash;
  } finally {
    db.close();
  }
};

describe('ovn-gateway backup', () => {
  it('copies a journal consistently while another process keeps writing to it', async () => {
    const { dir, file } = journalWith(3000);
    const writer = Journal.open(dir);
    let writing = true;
    let written = 3000;
    // this process writes between the backup's reads, as the running gateway would
    const loop = (async () => {
      while (writing) {
        for (let i = 0; i < 20; i++) writer.record('meter.reading', 'n1', { i: written++, text: 'y'.repeat(200) });
        await new Promise((r) => setImmediate(r));
      }
    })();
    const copy = join(tempDir('copy'), 'journal-copy.sqlite');
    const atStart = written;
    const r = await run(['backup', copy, '--data', dir]);
    const atEnd = written;
    writing = false;
    await loop;
    writer.close();

    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = /(\d+) events, schema version (\d+), chain intact/.exec(r.stdout);
    expect(m).not.toBeNull();
    const copied = Number(m![1]);
    // events written while the backup ran are in it, and the writes went on after it read the journal
    expect(copied).toBeGreaterThan(atStart);
    expect(copied).toBeLessThanOrEqual(atEnd);
    // the copy is a prefix of the journal: same chain up to its last event
    expect(verifyJournalFile(copy)).toMatchObject({ events: copied, firstBreak: null });
    expect(hashOf(copy, copied)).toBe(hashOf(file, copied));
  });

  it('refuses to overwrite a file', async () => {
    const { dir } = journalWith(3);
    const copy = join(tempDir('copy'), 'exists.sqlite');
    writeFileSync(copy, 'keep me');
    const r = await run(['backup', copy, '--data', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/exists\.sqlite: already exists; give a new file name/);
  });
});

describe('ovn-gateway restore', () => {
  it('refuses a copy whose hash chain is broken, and leaves the journal alone', async () => {
    const { dir, file } = journalWith(10);
    const copy = join(tempDir('copy'), 'bad.sqlite');
    copyFileSync(file, copy);
    const db = new Database(copy);
    db.prepare(`UPDATE events SET data = '{"i":99}' WHERE id = 4`).run();
    db.close();
    const before = hashOf(file, 10);
    const r = await run(['restore', copy, '--data', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.sqlite: hash chain broken at event 4 \(altered\)/);
    expect(hashOf(file, 10)).toBe(before);
  });

  it('refuses while the gateway runs; once it is stopped, restores and keeps the replaced journal aside', async () => {
    const { file: copySource } = journalWith(25);
    const copy = join(tempDir('copy'), 'good.sqlite');
    copyFileSync(copySource, copy);

    const dataDir = join(tempDir('gw'), 'data');
    const cfg = join(tempDir('cfg'), 'gateway.json');
    writeFileSync(cfg, JSON.stringify({ gateway: { dataDir, http: { port: await freePort() }, log: { format: 'json' } } }));
    const gw = spawn(process.execPath, [cli, 'run', '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    gw.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('HTTP API on'), 20_000);

    const refused = await run(['restore', copy, '--data', dataDir]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`the gateway is running \\(pid ${gw.pid}, started .*\\); stop it first`));

    gw.kill('SIGTERM');
    const [code] = await once(gw, 'exit');
    expect(code).toBe(0);
    const r = await run(['restore', copy, '--config', cfg]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/good\.sqlite: 25 events, schema version \d+, chain intact; restored/);
    const replaced = /kept at (.+\.sqlite)/.exec(r.stdout)![1]!;
    expect(existsSync(replaced)).toBe(true);
    // the replaced journal is whole: its gateway.started and gateway.stopped
    expect(verifyJournalFile(replaced)).toMatchObject({ events: 2, firstBreak: null });
    const verify = spawnSync(process.execPath, [cli, 'verify', '--data', dataDir], { encoding: 'utf8' });
    expect(verify.stdout).toMatch(/25 events, chain intact/);
  });

  it('a gateway that crashed does not block a restore', async () => {
    const { dir } = journalWith(1);
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    const j = Journal.open(dir);
    j.record('gateway.started', null, { pid: dead });
    j.close();
    const { file: other } = journalWith(5);
    const r = await run(['restore', other, '--data', dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/5 events/);
  });
});
