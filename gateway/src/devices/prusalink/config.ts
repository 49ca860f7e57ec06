/** Config of a Prusa printer driven by PrusaLink (MK4, XL, MINI, Core One; the MK3's Pi adapter), reached over the network (docs/prusalink.md). */
import { z } from 'zod';
import { backoff, deviceId, filamentSchema } from '../../config/common.js';

function urlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `the scheme must be http:// or https://, not ${url.protocol}//`;
  if (url.username || url.password || url.search || url.hash) return 'give the credentials in username and password (or apiKey), not in the URL; a base URL has no query or fragment';
  return null;
}

export const prusalinkPrinterSchema = z
  .strictObject({
    id: deviceId,
    kind: z.literal('prusalink-printer').describe("A Prusa printer driven by PrusaLink on the network (MK4, XL, MINI, Core One; the MK3's Raspberry Pi adapter): state, temperatures, jobs, and the filament of each job from its G-code file, polled over PrusaLink's HTTP API (/api/v1)."),
    name: z.string().min(1).optional().describe('Display name, e.g. "Prusa MK4"; default: the id.'),
    url: z
      .string()
      .superRefine((text, ctx) => {
        const problem = urlProblem(text);
        if (problem) ctx.addIssue({ code: 'custom', message: `${problem}: expected the printer's address, e.g. http://192.168.1.30` });
      })
      .describe("The printer's address, e.g. http://192.168.1.30 (shown on its screen under Settings → Network)."),
    username: z.string().min(1).default('maker').describe("PrusaLink's user name for digest authentication (shown with the password on the printer's screen, Settings → Network → PrusaLink)."),
    password: z.string().optional().describe('PrusaLink\'s password for digest authentication; never shown in health or logs.'),
    apiKey: z.string().min(1).optional().describe('Instead of a password: the API key of older PrusaLink versions, sent as X-Api-Key; never shown in health or logs.'),
    filament: filamentSchema,
    pollIntervalMs: z.number().int().min(250).default(2000).describe('Milliseconds between two readings of /api/v1/status.'),
    requestTimeoutMs: z.number().int().min(100).default(5000).describe('Milliseconds to wait for an answer; a printer that does not answer in time is offline until it does.'),
    reconnect: backoff,
    authRetryS: z.number().int().min(10).default(300).describe('After PrusaLink refused the credentials (a fault until accepted), seconds before the gateway tries again.'),
  })
  .refine((c) => c.password !== undefined || c.apiKey !== undefined, { message: 'give password (digest authentication) or apiKey', path: ['password'] });
