/** What the command-line modules share: the data directory from --config or --data, the journal in it, the running gateway's API, and refusals. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { Journal } from '../journal/journal.js';
import { damageAdvice } from '../journal/verify.js';

/** A refusal of the command as given: its message is printed alone and the exit code is 2. */
export class CliError extends Error {}

export const withData = (cmd: Command) =>
  cmd.option('-c, --config <file>', 'the gateway configuration (its gateway.dataDir holds the journal)').option('--data <dir>', 'the data directory, instead of --config');

export interface DataOptions {
  config?: string;
  data?: string;
}

/** The data directory from --config or --data, for commands that work on the journal. */
export function dataDir(opts: DataOptions): string {
  if (!!opts.config === !!opts.data) throw new CliError('give one of --config <file> or --data <dir>');
  if (opts.data) return resolve(opts.data);
  const { config, baseDir } = loadConfig(opts.config!);
  return resolve(baseDir, config.gateway.dataDir);
}

/**
 * Runs `fn` on the journal in the data directory, and closes it once `fn` is done (its promise
 * settled, when it returns one). A damaged journal file is refused with what to do about it.
 */
export function withJournal<T>(opts: DataOptions, fn: (journal: Journal) => T): T {
  const journal = Journal.open(dataDir(opts));
  const refuseDamage = (err: unknown) => {
    const advice = damageAdvice(journal.file, err);
    return advice ? new CliError(advice) : err;
  };
  let result: T;
  try {
    result = fn(journal);
  } catch (err) {
    journal.close();
    throw refuseDamage(err);
  }
  if (result instanceof Promise) return result.catch((err: unknown) => Promise.reject(refuseDamage(err))).finally(() => journal.close()) as T;
  journal.close();
  return result;
}

/** Where the commands that talk to the running gateway find it, unless --url says otherwise. */
export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** What --token says in the help of every command that calls the API (the reference lists those commands by it). */
export const TOKEN_HELP = 'an API token with the role the command needs (ovn-gateway tokens create makes one); default: $OVN_GATEWAY_TOKEN';

/** The options of a command that calls the running gateway's API: where it is, and the token to show it. */
export const withApi = (cmd: Command) => cmd.option('--url <url>', 'the gateway', DEFAULT_URL).option('--token <token>', TOKEN_HELP);

export interface ApiOptions {
  url: string;
  token?: string;
}

/** A request to the running gateway's API; its error message becomes the command's. */
export async function callApi(opts: ApiOptions, path: string, init?: RequestInit): Promise<Record<string, unknown>> {
  const token = opts.token ?? process.env.OVN_GATEWAY_TOKEN;
  let res: Response;
  try {
    res = await fetch(`${opts.url}${path}`, token ? { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } } : init);
  } catch {
    throw new CliError(`cannot reach the gateway at ${opts.url}: is it running? (--url to point elsewhere)`);
  }
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status === 401) throw new CliError(`401: ${String(body.message ?? res.statusText)} (give an API token with --token or OVN_GATEWAY_TOKEN; ovn-gateway tokens create makes one)`);
  if (!res.ok) throw new CliError(`${res.status}: ${String(body.message ?? res.statusText)}`);
  return body;
}
