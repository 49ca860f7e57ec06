/** Print jobs sent from a slicer or the API: how large, how many, how long they wait, and whose session a staff job runs under. */
import { z } from 'zod';

const useTypeId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, dots, dashes and underscores');

export const printJobsSchema = z.strictObject({
  maxFileMb: z.number().positive().max(4096).default(256).describe('Largest G-code file accepted, in MB (1 MB = 1,000,000 bytes); a larger upload is refused (413) as soon as it passes this.'),
  quotaMb: z.number().positive().max(65_536).default(1024).describe("What one affiliate's kept files may add up to, per tool, in MB; an upload past it is refused (413) until they delete some."),
  queuedExpiryH: z.number().positive().max(24 * 365).default(24).describe('Hours a queued job waits for its owner to badge in at the printer; then it expires (its file is kept like an ended job\'s).'),
  keepFilesDays: z.number().min(0).max(3650).default(7).describe('Days a file is kept after its job ended or expired (0: deleted when the job ends); a file uploaded without printing is kept until deleted.'),
  staffUseType: useTypeId.default('maintenance').describe("Use type of the session a maintainer's or admin's job opens when no session is open at the tool (non-cash unless its tariff says otherwise)."),
});

export type PrintJobsConfig = z.output<typeof printJobsSchema>;
export const PRINT_JOBS_DEFAULTS: PrintJobsConfig = printJobsSchema.parse({});
