import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

/** A config that cannot be used: every problem, one `path: what is wrong` line each. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  file: string;
  /** Directory the config's relative paths are resolved against. */
  baseDir: string;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const where = (path: readonly PropertyKey[]) => (path.length ? path.map(String).join('.') : '(top level)');
  return issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => `${where([...issue.path, key])}: unknown setting (misspelt, or not supported by this version)`)
      : [`${where(issue.path)}: ${issue.message}`],
  );
}

export function parseConfig(text: string, file: string): Config {
  let raw: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    raw = parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? `line ${err.linePos[0].line}, column ${err.linePos[0].col}` : 'syntax';
    throw new ConfigError(file, [`${where}: ${(err as Error).message.split('\n')[0]}`]);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(file, formatIssues(result.error.issues));
  return result.data;
}

export function loadConfig(path: string): LoadedConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`(file): cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  const config = parseConfig(text, file);
  return { config, file, baseDir: dirname(file) };
}
