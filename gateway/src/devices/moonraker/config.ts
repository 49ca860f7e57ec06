/** Config of a Klipper printer driven by Moonraker, reached over the network (docs/moonraker.md). */
import { z } from 'zod';
import { backoff, deviceId, filamentSchema } from '../../config/common.js';

/** Why a Moonraker base URL cannot be used, or null when it can. */
function moonrakerUrlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `the scheme must be http:// or https://, not ${url.protocol}//`;
  if (!url.hostname) return 'the host is missing';
  // a key in the URL would end up in health and logs; it has its own setting
  if (url.username || url.password || url.search || url.hash) return 'give the key in apiKey, not in the URL; a base URL has no query or fragment';
  return null;
}

export const moonrakerPrinterSchema = z.strictObject({
  id: deviceId,
  kind: z
    .literal('moonraker-printer')
    .describe("A Klipper printer driven by Moonraker on the printer's own computer, reached over the network: state, temperatures, jobs and the filament Klipper counts, through Moonraker's websocket (JSON-RPC)."),
  name: z.string().min(1).optional().describe('Display name, e.g. "Voron 2.4"; default: the id.'),
  url: z
    .string()
    .superRefine((text, ctx) => {
      const problem = moonrakerUrlProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: `${problem}: expected Moonraker's address, e.g. http://voron.local:7125` });
    })
    .describe("Moonraker's address, e.g. http://voron.local:7125 (its port, 7125 by default, or the web server's that proxies it); the websocket is <url>/websocket (wss:// for https://)."),
  apiKey: z
    .string()
    .min(1)
    .optional()
    .describe("Moonraker's API key (Mainsail: Settings → API key; or `~/moonraker/scripts/fetch-apikey.sh`), sent as X-Api-Key and when identifying; never shown in health or logs. Without it the gateway must be a trusted client ([authorization] trusted_clients in moonraker.conf)."),
  filament: filamentSchema,
  reconnect: backoff,
  authRetryS: z
    .number()
    .int()
    .min(10)
    .default(300)
    .describe('After Moonraker refused the API key (a fault until it is accepted), seconds before the gateway tries again: a wrong key is not retried in a storm.'),
  requestTimeoutMs: z.number().int().min(100).default(5000).describe("Milliseconds to wait for Moonraker's answer to a request before the connection is given up and opened again."),
  historyJobs: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(50)
    .describe("How many of Moonraker's latest history entries are read at each connection, to end the jobs that ended while the gateway was away with the figures the host kept."),
  maxRetractionMm: z
    .number()
    .positive()
    .default(10)
    .describe("Klipper's filament_used is net of retractions: it reads short by the retraction outstanding. The largest retraction expected, the uncertainty given with each job's figure."),
});
