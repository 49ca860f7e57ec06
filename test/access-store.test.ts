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

  it('imports a CSV all or nothing, listing every problem with its line', () => {
    const dir = tempDir('access');
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'id,name,status,badges,qualifications\nada,Ada,active,04A1B2C3,mk3s:2027-01-31\nBo Smith,Bo,retired,XYZ,mk3s:soon\n');
    const r = run('affiliates', 'import', bad, '--data', dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('nothing imported');
    expect(r.stderr).toContain('line 3, id: lowercase letters');
    expect(r.stderr).toContain('line 3, status: Invalid option');
    expect(r.stderr).toContain('line 3, badges.0: a badge UID is 1 to 10 bytes of hex');
    expect(r.stderr).toContain('line 3, qualifications.0.expires: Invalid');
    expect(run('affiliates', 'list', '--data', dir).stdout).toBe('');

    const good = join(dir, 'good.csv');
    writeFileSync(good, 'id,name,status,badges,qualifications\nada,"Lovelace, Ada",active,04A1B2C3 04A1B2C4,mk3s:2027-01-31;laser\nbo,Bo,suspended,DEADBEEF,\n');
    expect(run('affiliates', 'import', good, '--data', dir).stdout).toContain('2 affiliates imported');
    expect(run('affiliates', 'qualify', 'bo', 'mk3s', '--data', dir).status).toBe(0);
    expect(run('affiliates', 'list', '--data', dir).stdout.trim().split('\n')).toEqual([
      'ada\tLovelace, Ada\tactive\tbadges: 04A1B2C3 04A1B2C4\tqualified: laser, mk3s (until 2027-01-31)',
      'bo\tBo\tsuspended\tbadges: DEADBEEF\tqualified: mk3s',
    ]);
    expect(run('affiliates', 'qualify', 'nobody', 'mk3s', '--data', dir).stderr).toContain('no affiliate "nobody"');
  });
});
