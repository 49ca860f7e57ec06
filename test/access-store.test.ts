import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decideAccess } from '../gateway/src/access/decide.js';
import { AccessStore } from '../gateway/src/access/store.js';
import { Journal } from '../gateway/src/journal/journal.js';
import { verifyJournalFile } from '../gateway/src/journal/verify.js';
import { tempDir } from './helpers.js';

const cli = join(import.meta.dirname, '..', 'bin', 'ovn-gateway.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('allow-list store', () => {
  it('saves affiliates, badges and qualifications, journals every change, and feeds the access decision', () => {
    const dir = tempDir('access');
    const journal = Journal.open(dir);
    const store = new AccessStore(journal);
    store.put({ id: 'ada', name: 'Ada Lovelace', badges: ['04 a1 b2 c3'], qualifications: [{ tool: 'mk3s', expires: '2027-01-31' }] });
    store.put({ id: 'bo', name: 'Bo', badges: ['DEADBEEF'] });
    expect(store.get('ada')).toEqual({ id: 'ada', name: 'Ada Lovelace', status: 'active', useType: null, badges: ['04A1B2C3'] });
    expect(store.qualifications()).toEqual([{ affiliateId: 'ada', toolId: 'mk3s', expiresAt: '2027-01-31T23:59:59.999Z' }]);
    expect(() => store.put({ id: 'cy', name: 'Cy', badges: ['deadbeef'] })).toThrow('badge DEADBEEF already belongs to bo');
    const tool = { id: 'mk3s', status: 'available' as const, sessionAffiliateId: null, handover: true };
    expect(decideAccess('04A1B2C3', tool, store.forBadge('04 A1 B2 C3', 'mk3s'), new Date('2027-01-31T12:00:00Z')).kind).toBe('grant');
    expect(decideAccess('04A1B2C3', tool, store.forBadge('04 A1 B2 C3', 'mk3s'), new Date('2027-02-01T00:00:00Z'))).toMatchObject({ reason: 'qualification-expired' });
    expect(store.forBadge('DEADBEEF', 'mk3s')).toMatchObject({ affiliates: [{ id: 'bo' }], qualifications: [] });
    expect(store.forBadge('CAFE', 'mk3s')).toEqual({ affiliates: [], qualifications: [] });
    expect(decideAccess('CAFE', tool, store.forBadge('CAFE', 'mk3s'), new Date())).toMatchObject({ reason: 'unknown-badge' });
    store.setStatus('ada', 'suspended');
    expect(decideAccess('04A1B2C3', tool, store.forBadge('04 A1 B2 C3', 'mk3s'), new Date('2026-12-01T00:00:00Z'))).toMatchObject({ reason: 'suspended' });
    expect(journal.events().map((e) => e.kind)).toEqual(['affiliate.saved', 'affiliate.saved', 'affiliate.status']);
    journal.close();
    expect(verifyJournalFile(join(dir, 'journal.sqlite')).firstBreak).toBeNull();
  });

  it('imports a CSV all or nothing, listing every problem with its line', { timeout: 120_000 }, () => {
    const dir = tempDir('access');
    const config = labWithTools(dir);
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'id,name,status,badges,qualifications\nada,Ada,active,04A1B2C3,mk3s:2027-01-31\nBo Smith,Bo,retired,XYZ,mk3s:soon\n');
    const r = run('affiliates', 'import', bad, '--config', config);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('nothing imported');
    expect(r.stderr).toContain('line 3, id: lowercase letters');
    expect(r.stderr).toContain('line 3, status: Invalid option');
    expect(r.stderr).toContain('line 3, badges.0: a badge UID is 1 to 10 bytes of hex');
    expect(r.stderr).toContain('line 3, qualifications.0.expires: Invalid');
    expect(run('affiliates', 'list', '--config', config).stdout).toBe('no affiliates (affiliates add or affiliates import adds them)\n');

    const good = join(dir, 'good.csv');
    writeFileSync(good, 'id,name,status,badges,qualifications,email\nada,"Lovelace, Ada",active,04A1B2C3 04A1B2C4,mk3s:2027-01-31;laser,ada@example.org\nbo,Bo,suspended,DEADBEEF,,bo@example.org\n');
    expect(run('affiliates', 'import', good, '--config', config).stdout).toContain('2 affiliates imported');
    expect(run('affiliates', 'qualify', 'bo', 'mk3s', '--config', config).status).toBe(0);
    expect(run('affiliates', 'list', '--config', config).stdout.trim().split('\n')).toEqual([
      'id\tname\tstatus\tbadges\tqualified\temail',
      'ada\tLovelace, Ada\tactive\t04A1B2C3 04A1B2C4\tlaser, mk3s (until 2027-01-31)\tada@example.org',
      'bo\tBo\tsuspended\tDEADBEEF\tmk3s\tbo@example.org',
    ]);
  });

  it('refuses a whole file for duplicate ids, unknown tools, badge conflicts and malformed rows, naming each line', { timeout: 120_000 }, () => {
    const dir = tempDir('access');
    const config = labWithTools(dir);
    writeFileSync(join(dir, 'first.csv'), 'id,name,badges\nbo,Bo,DEADBEEF\n');
    expect(run('affiliates', 'import', join(dir, 'first.csv'), '--config', config).status).toBe(0);
    const csv = join(dir, 'many.csv');
    writeFileSync(
      csv,
      [
        'id,name,status,badges,qualifications',
        'ada,Ada,active,04A1B2C3,mk3s', // line 2
        'cy,Cy,active,04A1B2C3,lathe', // line 3: Ada's badge, a tool the lab does not have
        'ada,Ada again,active,,', // line 4: Ada twice
        'di,Di,active,DEADBEEF,', // line 5: Bo's badge, and Bo is not in the file
        'ed,Ed,active', // line 6: too few fields
        'gus,Gus,active,0A0B,laser', // line 7: fine
        'fay,"Fay"x,active,,', // line 8: a quote closed in the middle of a field
      ].join('\n') + '\n',
    );
    const r = run('affiliates', 'import', csv, '--config', config);
    expect(r.status, r.stderr).toBe(2);
    const problems = r.stderr.trim().split('\n').slice(1).map((l) => l.trim());
    expect(r.stderr.split('\n')[0]).toBe(`${csv}: ${problems.length} problems, nothing imported`);
    expect(problems).toEqual([
      'line 3, qualifications.0.tool: no tool "lathe" (tools: mk3s, laser)',
      'line 3, badges.0: 04A1B2C3 is ada\'s on line 2 too',
      'line 4, id: "ada" is on line 2 too',
      'line 5, badges.0: DEADBEEF already belongs to bo',
      'line 6, (row): 3 fields, the header has 5',
      expect.stringMatching(/^line 8, \(row\): Invalid Closing Quote: got "x"/),
    ]);
    expect(run('affiliates', 'list', '--config', config).stdout.trim().split('\n').slice(1).map((l) => l.split('\t')[0])).toEqual(['bo']);
    // without the configuration no qualification can be checked
    const withoutConfig = run('affiliates', 'import', csv, '--data', join(dir, 'data'));
    expect(withoutConfig.stderr).toContain('line 2, qualifications.0.tool: "mk3s" cannot be checked without the configuration\'s tools (give --config instead of --data)');
  });

  it('refuses to qualify on an unknown tool, or an unknown affiliate, and a token for an unknown affiliate, with exit code 2', { timeout: 120_000 }, () => {
    const dir = tempDir('access');
    const config = labWithTools(dir);
    expect(run('affiliates', 'add', 'ada', '--name', 'Ada', '--config', config).status).toBe(0);
    const cases: [string[], string][] = [
      [['affiliates', 'qualify', 'ada', 'nosuchtool', '--config', config], `no tool "nosuchtool" in ${config} (tools: mk3s, laser)`],
      [['affiliates', 'qualify', 'ada', 'mk3s', '--data', join(dir, 'data')], 'give --config <file> instead of --data: "mk3s" must be one of its tools'],
      [['affiliates', 'qualify', 'nobody', 'mk3s', '--config', config], 'no affiliate "nobody" (affiliates list shows who there is)'],
      [['affiliates', 'suspend', 'nobody', '--config', config], 'no affiliate "nobody" (affiliates list shows who there is)'],
      [['tokens', 'create', '--role', 'affiliate', '--affiliate', 'nobody', '--config', config], 'no affiliate "nobody" (affiliates list shows who there is)'],
      [['tokens', 'create', '--role', 'admin', '--affiliate', 'ada', '--config', config], "only affiliate tokens belong to an affiliate; an admin token sees everyone's data"],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`${message}\n`);
    }
    expect(run('tokens', 'list', '--config', config).stdout.trim().split('\n')).toHaveLength(1); // the header: no token was made
    const journal = Journal.open(join(dir, 'data'));
    expect(journal.events().map((e) => e.kind)).toEqual(['affiliate.saved']);
    journal.close();
  });
});

/** A config with two tools (mk3s, laser) and its journal in `dir`/data. */
function labWithTools(dir: string): string {
  const file = join(dir, 'lab.yaml');
  writeFileSync(
    file,
    `gateway: { dataDir: data }
devices:
  - { id: n1, kind: metering-node, serial: { path: "socket://127.0.0.1:1" } }
  - { id: n2, kind: metering-node, serial: { path: "socket://127.0.0.1:2" } }
tools: [{ id: mk3s, node: n1 }, { id: laser, node: n2 }]
`,
  );
  return file;
}
