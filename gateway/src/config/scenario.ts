/**
 * A simulator's scenario file: a YAML or JSON list of `{ after, do }` steps (after: milliseconds
 * since the previous step; do: one of the simulator's commands). Read here, beside the config
 * that names it, so that `config check` and `run` can refuse a bad one before anything starts.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatIssues } from './load.js';

const scenarioSchema = z.array(z.strictObject({ after: z.number().int().min(0).default(0), do: z.string().min(1) }));
export type Scenario = z.output<typeof scenarioSchema>;

export function loadScenario(file: string): Scenario {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(file, [e.code ? `(file): cannot read it: ${e.code}` : e.message.split('\n')[0]!]);
  }
  const result = scenarioSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(file, formatIssues(result.error.issues));
  return result.data;
}
