/**
 * `npm run docs`: writes the reference documents that are generated from the code they
 * describe, so that they cannot drift from it. `npm run docs -- --check` writes nothing and
 * exits 1 listing the documents that are out of date (test/docs.test.ts checks the same).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderCliReference } from '../gateway/src/cli/reference.js';
import { renderConfigReference } from '../gateway/src/config/reference.js';

const ROOT = join(import.meta.dirname, '..');

export interface GeneratedDocument {
  /** Path from the repository's root. */
  file: string;
  render(): string;
}

export const documents: GeneratedDocument[] = [
  { file: 'docs/configuration.md', render: renderConfigReference },
  { file: 'docs/cli.md', render: renderCliReference },
];

/** The documents whose file differs from what their render gives now. */
export function staleDocuments(): string[] {
  return documents.filter((d) => read(d.file) !== d.render()).map((d) => d.file);
}

function read(file: string): string | undefined {
  const path = join(ROOT, file);
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

function main(args: string[]): void {
  if (args.includes('--check')) {
    const stale = staleDocuments();
    if (stale.length === 0) return;
    console.error(`out of date (run npm run docs): ${stale.join(', ')}`);
    process.exitCode = 1;
    return;
  }
  for (const d of documents) {
    writeFileSync(join(ROOT, d.file), d.render());
    console.log(`wrote ${d.file}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
