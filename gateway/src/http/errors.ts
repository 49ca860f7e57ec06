/**
 * One error shape for the whole API: `{ error, message }`, a stable code for programs and a
 * sentence for a person saying what was wrong and where.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BillingError } from '../billing/money.js';
import { PrinterRefusal } from '../devices/printer/driver.js';
import type { Logger } from '../log.js';
import { SessionRefusal } from '../sessions/tool-sessions.js';
import { FileRefusal } from '../print-jobs/files.js';

export const errorBody = z.object({ error: z.string().describe('A stable code: bad-request, unauthorized, forbidden, not-found, conflict, too-many-requests…'), message: z.string().describe('What was wrong, for a person.') });

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra response headers (Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const conflictOr400 = (status: number) => (status === 409 ? 'conflict' : 'bad-request');

/** The code of a refusal fastify or a plugin makes itself (a wrong media type, a file outside the dashboard…). */
const CODES: Record<number, string> = { 409: 'conflict', 507: 'insufficient-storage', 403: 'forbidden', 404: 'not-found', 405: 'method-not-allowed', 406: 'not-acceptable', 408: 'timeout', 413: 'too-large', 414: 'uri-too-long', 415: 'unsupported-media-type', 429: 'too-many-requests', 431: 'headers-too-large' };
export const codeOf = (status: number): string => CODES[status] ?? 'bad-request';

/** A request's path for a message: without its query, and cut short (a 5 KB URL is not repeated back). */
export function shownPath(url: string): string {
  const path = url.split('?')[0]!;
  return path.length > 100 ? `${path.slice(0, 100)}… (${path.length} characters)` : path;
}

/** What Node's HTTP parser refuses before fastify sees a request (headers or a URL past 16 KB, a timeout, malformed HTTP), in the same shape. */
export function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'the request line and headers are longer than the 16 KB the gateway reads'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'the request did not arrive in time'] : [400, 'this is not a well-formed HTTP request'];
  const body = JSON.stringify({ error: codeOf(status), message });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}

/** What fastify itself refuses before any route runs: a path that is not valid URL encoding, a path parameter too long. */
export function frameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const status = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : (err.statusCode ?? 400);
  const what = status === 414 ? 'a part of this path is too long' : err.code === 'FST_ERR_BAD_URL' ? 'this path is not valid URL encoding' : 'this request cannot be routed';
  void reply.code(status).send({ error: codeOf(status), message: `${what}: ${req.method} ${shownPath(req.url)}` });
}

/** `querystring.from: a month YYYY-MM …; body.reason: say why` — where each problem is, then what it is. */
function validationMessage(err: FastifyError): string {
  if (!hasZodFastifySchemaValidationErrors(err)) return err.message;
  const where = err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'request');
  return err.validation.map((v) => `${[where, ...v.instancePath.split('/').filter(Boolean)].join('.')}: ${v.message}`).join('; ');
}

export function errorHandler(log: Logger) {
  return (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof HttpError) return reply.code(err.status).headers(err.headers).send({ error: err.code, message: err.message });
    if (hasZodFastifySchemaValidationErrors(err)) return reply.code(400).send({ error: 'bad-request', message: validationMessage(err) });
    if (err instanceof z.ZodError) return reply.code(400).send({ error: 'bad-request', message: err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') });
    if (err instanceof BillingError) return reply.code(400).send({ error: 'bad-request', message: err.message });
    if (err instanceof FileRefusal) return reply.code(err.status).send({ error: codeOf(err.status), message: err.message });
    if (err instanceof SessionRefusal || err instanceof PrinterRefusal) return reply.code(err.status).send({ error: conflictOr400(err.status), message: err.message });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: codeOf(err.statusCode), message: err.message.length > 300 ? `${err.message.slice(0, 300)}…` : err.message });
    log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'the gateway failed to handle this request; see its log' });
  };
}
