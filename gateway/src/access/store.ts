/**
 * The local allow-list: affiliates, their badges and qualifications, in the journal
 * database so that access is decided with no network. Every change is journaled.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import { freeText } from '../config/common.js';
import type { Journal } from '../journal/journal.js';
import { normaliseUid, type AccessData, type Affiliate, type AffiliateStatus, type Qualification } from './decide.js';

const id = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, dots, dashes and underscores');
const uid = z
  .string()
  .max(64, 'a badge UID is 1 to 10 bytes of hex')
  .transform(normaliseUid)
  .pipe(z.string().regex(/^([0-9A-F]{2}){1,10}$/, 'a badge UID is 1 to 10 bytes of hex'));
export const qualification = z.strictObject({
  tool: id.describe('The tool id.'),
  expires: z.iso.date().or(z.iso.datetime()).nullable().default(null).describe('Date (the end of that day, UTC) or date-time; null: does not expire.'),
});

/** Badges one affiliate may hold: a few cards, fobs and a phone, with room to spare. */
export const MAX_BADGES = 32;
/** Qualifications one affiliate may hold. */
export const MAX_QUALIFICATIONS = 256;

export const affiliateSchema = z.strictObject({
  id: id.describe('Affiliate id, used in the journal, tokens and billing.'),
  name: freeText(200).min(1).describe('Full name, e.g. "Ada Lovelace"; at most 200 characters.'),
  status: z.enum(['active', 'suspended']).default('active').describe('suspended: every badge of theirs is refused, but for ending their own session.'),
  badges: z.array(uid).max(MAX_BADGES, `at most ${MAX_BADGES} badges`).default([]).describe(`Badge UIDs in hex, in any notation (04A1B2C3, 04:a1:b2:c3); stored as uppercase hex; at most ${MAX_BADGES}.`),
  qualifications: z.array(qualification).max(MAX_QUALIFICATIONS, `at most ${MAX_QUALIFICATIONS} qualifications`).default([]).describe('The tools they are trained on, each with an optional expiry.'),
  useType: id.nullish().describe('Use type of their sessions unless changed during one (commercial, community, project…); default (or null): the first of useTypes.'),
  email: z.email().max(254).optional().describe('Where their receipts and switch-off warnings go when notifications has an e-mail channel for affiliates.'),
});
export type AffiliateInput = z.input<typeof affiliateSchema>;

/** A date alone expires at the end of that day, UTC. */
function expiryInstant(expires: string | null): string | null {
  if (expires === null) return null;
  return /^\d{4}-\d{2}-\d{2}$/.test(expires) ? `${expires}T23:59:59.999Z` : new Date(expires).toISOString();
}

export class ImportError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}, nothing imported\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

type WithEmail = Omit<Affiliate, 'badges' | 'email'> & { email: string | null };
/** The address only when there is one (an affiliate without one reads as before). */
const withEmail = ({ email, ...r }: WithEmail): Omit<Affiliate, 'badges'> => (email ? { ...r, email } : r);

export class AccessStore {
  constructor(private readonly journal: Journal) {}

  private get db() {
    return this.journal.db;
  }

  /** Adds or replaces an affiliate with their badges and qualifications, in one transaction. */
  put(input: AffiliateInput): Affiliate {
    const a = affiliateSchema.parse(input);
    this.db.transaction(() => {
      for (const b of a.badges) {
        const owner = this.journal.prepared('SELECT affiliate_id FROM badges WHERE uid = ?').pluck().get(b) as string | undefined;
        if (owner !== undefined && owner !== a.id) throw new Error(`badge ${b} already belongs to ${owner}`);
      }
      this.journal.prepared(`INSERT INTO affiliates (id, name, status, use_type, email, updated_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status, use_type = excluded.use_type, email = excluded.email, updated_at = excluded.updated_at`).run(a.id, a.name, a.status, a.useType ?? null, a.email ?? null, new Date().toISOString());
      this.journal.prepared('DELETE FROM badges WHERE affiliate_id = ?').run(a.id);
      for (const b of a.badges) this.journal.prepared('INSERT INTO badges (uid, affiliate_id) VALUES (?, ?)').run(b, a.id);
      for (const q of a.qualifications) this.qualifyRow(a.id, q.tool, expiryInstant(q.expires));
      this.journal.record('affiliate.saved', null, { affiliateId: a.id, name: a.name, status: a.status, badges: a.badges, qualifications: a.qualifications, useType: a.useType ?? null, ...(a.email ? { email: a.email } : {}) });
    })();
    return this.get(a.id)!;
  }

  qualify(affiliateId: string, toolId: string, expires: string | null): void {
    const q = qualification.parse({ tool: toolId, expires });
    if (!this.get(affiliateId)) throw new Error(`no affiliate "${affiliateId}"`);
    this.db.transaction(() => {
      this.qualifyRow(affiliateId, q.tool, expiryInstant(q.expires));
      this.journal.record('affiliate.qualified', null, { affiliateId, toolId: q.tool, expiresAt: expiryInstant(q.expires) });
    })();
  }

  setStatus(affiliateId: string, status: AffiliateStatus): void {
    this.db.transaction(() => {
      const r = this.journal.prepared('UPDATE affiliates SET status = ?, updated_at = ? WHERE id = ?').run(status, new Date().toISOString(), affiliateId);
      if (r.changes === 0) throw new Error(`no affiliate "${affiliateId}"`);
      this.journal.record('affiliate.status', null, { affiliateId, status });
    })();
  }

  get(affiliateId: string): Affiliate | null {
    const row = this.journal.prepared('SELECT id, name, status, use_type AS useType, email FROM affiliates WHERE id = ?').get(affiliateId) as WithEmail | undefined;
    return row ? { ...withEmail(row), badges: this.journal.prepared('SELECT uid FROM badges WHERE affiliate_id = ? ORDER BY uid').pluck().all(row.id) as string[] } : null;
  }

  list(): Affiliate[] {
    const rows = (this.journal.prepared('SELECT id, name, status, use_type AS useType, email FROM affiliates ORDER BY id').all() as WithEmail[]).map(withEmail);
    const badges = new Map<string, string[]>();
    for (const b of this.journal.prepared('SELECT uid, affiliate_id FROM badges ORDER BY uid').all() as { uid: string; affiliate_id: string }[]) {
      const own = badges.get(b.affiliate_id);
      if (own) own.push(b.uid);
      else badges.set(b.affiliate_id, [b.uid]);
    }
    return rows.map((r) => ({ ...r, badges: badges.get(r.id) ?? [] }));
  }

  qualifications(): Qualification[] {
    return this.journal.prepared('SELECT affiliate_id AS affiliateId, tool_id AS toolId, expires_at AS expiresAt FROM qualifications ORDER BY affiliate_id, tool_id').all() as Qualification[];
  }

  /**
   * What decideAccess needs to decide about one badge at one tool: the badge's holder (if
   * any) and their qualifications for the tool, by index, so a decision does not grow with
   * the size of the allow-list.
   */
  forBadge(badgeUid: string, toolId: string): AccessData {
    const holder = this.journal.prepared('SELECT affiliate_id FROM badges WHERE uid = ?').pluck().get(normaliseUid(badgeUid)) as string | undefined;
    const affiliate = holder === undefined ? null : this.get(holder);
    if (!affiliate) return { affiliates: [], qualifications: [] };
    const qualifications = this.journal
      .prepared('SELECT affiliate_id AS affiliateId, tool_id AS toolId, expires_at AS expiresAt FROM qualifications WHERE affiliate_id = ? AND tool_id = ?')
      .all(affiliate.id, toolId) as Qualification[];
    return { affiliates: [affiliate], qualifications };
  }

  /**
   * Imports a CSV with a header `id,name,status,badges,qualifications[,use_type][,email]`: badges separated by
   * spaces or semicolons, qualifications as `tool` or `tool:YYYY-MM-DD` separated the same
   * way. All rows or none: every problem is listed as `line N, column: what is wrong` — a
   * malformed row, a bad value, an id twice, a badge twice or already another affiliate's, a
   * tool that `tools` (the configuration's) does not have; with `tools` null no qualification
   * can be checked, so none is accepted.
   */
  importCsv(text: string, file: string, tools: ReadonlySet<string> | null): number {
    const problems: { line: number; text: string }[] = [];
    const problem = (line: number, column: string, what: string) => void problems.push({ line, text: `line ${line}, ${column}: ${what}` });
    const rows = parseCsv(text, {
      info: true,
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      skip_records_with_error: true,
      // after a malformed row the parser may trip again on the same line: the first word on it is enough
      on_skip: (err) => void (err && !problems.some((p) => p.line === Number(err.lines)) && problem(Number(err.lines), '(row)', err.message.replace(/ at line \d+/, ''))),
    }) as unknown as { info: { lines: number }; record: string[] }[];
    const [head, ...records] = rows;
    const columns = (head?.record ?? []).map((c) => c.trim().toLowerCase());
    for (const required of ['id', 'name']) if (!columns.includes(required)) problem(head?.info.lines ?? 1, required, 'missing from the header (id,name,status,badges,qualifications[,use_type][,email])');
    const inputs: { line: number; input: z.output<typeof affiliateSchema> }[] = [];
    const idLine = new Map<string, number>();
    const badgeLine = new Map<string, { line: number; id: string }>();
    for (const { info, record } of records) {
      const line = info.lines;
      if (record.length !== columns.length) problem(line, '(row)', `${record.length} fields, the header has ${columns.length}`);
      const r = Object.fromEntries(columns.map((c, i) => [c, record[i]]));
      const split = (v: string | undefined) => (v ?? '').split(/[\s;]+/).filter(Boolean);
      const result = affiliateSchema.safeParse({
        id: r.id,
        name: r.name,
        status: r.status || undefined,
        useType: r.use_type || undefined,
        email: r.email || undefined,
        badges: split(r.badges),
        qualifications: split(r.qualifications).map((q) => {
          const [tool, ...rest] = q.split(':');
          return { tool, expires: rest.length ? rest.join(':') : null };
        }),
      });
      if (!result.success) {
        for (const issue of result.error.issues) problem(line, issue.path.map(String).join('.') || '(row)', issue.message);
        continue;
      }
      const a = result.data;
      const first = idLine.get(a.id);
      if (first !== undefined) problem(line, 'id', `"${a.id}" is on line ${first} too`);
      else idLine.set(a.id, line);
      a.qualifications.forEach((q, i) => {
        if (tools === null) problem(line, `qualifications.${i}.tool`, `"${q.tool}" cannot be checked without the configuration's tools (give --config instead of --data)`);
        else if (!tools.has(q.tool)) problem(line, `qualifications.${i}.tool`, `no tool "${q.tool}" (tools: ${[...tools].join(', ') || 'none'})`);
      });
      inputs.push({ line, input: a });
    }
    // A badge may move between affiliates of the file; it may not be on two rows, nor stay with someone the file leaves out.
    for (const { line, input: a } of inputs) {
      a.badges.forEach((b, i) => {
        const other = badgeLine.get(b);
        if (other) return problem(line, `badges.${i}`, other.line === line ? `${b} twice on this row` : `${b} is ${other.id}'s on line ${other.line} too`);
        badgeLine.set(b, { line, id: a.id });
        const owner = this.journal.prepared('SELECT affiliate_id FROM badges WHERE uid = ?').pluck().get(b) as string | undefined;
        if (owner !== undefined && owner !== a.id && !idLine.has(owner)) problem(line, `badges.${i}`, `${b} already belongs to ${owner}`);
      });
    }
    if (problems.length) throw new ImportError(file, problems.sort((a, b) => a.line - b.line).map((p) => p.text));
    this.db.transaction(() => {
      for (const { input } of inputs) this.journal.prepared('DELETE FROM badges WHERE affiliate_id = ?').run(input.id);
      for (const { input } of inputs) this.put(input);
    })();
    return inputs.length;
  }

  private qualifyRow(affiliateId: string, toolId: string, expiresAt: string | null): void {
    this.journal
      .prepared(`INSERT INTO qualifications (affiliate_id, tool_id, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (affiliate_id, tool_id) DO UPDATE SET expires_at = excluded.expires_at`)
      .run(affiliateId, toolId, expiresAt);
  }
}
