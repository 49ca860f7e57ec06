import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { staleDocuments } from '../scripts/docs.js';
import { renderConfigReference } from '../gateway/src/config/reference.js';
import { configSchema } from '../gateway/src/config/schema.js';

describe('generated reference documents', () => {
  it('are up to date with the code they describe', () => {
    const stale = staleDocuments();
    expect(stale, `out of date: ${stale.join(', ')}; run npm run docs and commit the result`).toEqual([]);
  });
});

describe('configuration reference', () => {
  const text = renderConfigReference();

  it('lists keys by path with their type, limits and default', () => {
    expect(text).toContain('| `gateway.http.port` | integer | 0 to 65535 | `8080` |');
    expect(text).toContain('| `devices[].dialect` | string | `"marlin"`, `"prusa"`, `"reprapfirmware"` | `"marlin"` |');
    expect(text).toContain('| `billing.tools.<tool>.tariffs.<tariff>.hourlyRate` | string |  | **required** |');
  });

  it('has a row for every key of every top-level section and device kind', () => {
    for (const key of Object.keys(configSchema.shape)) expect(text).toContain(`## \`${key}\``);
    for (const kind of ['metering-node', 'printer', 'gpio', 'rfid-reader', 'mqtt-badge-reader', 'mqtt-instrument']) expect(text).toContain(`### \`devices[]\` of kind \`${kind}\``);
  });

  it('renders the same text every time', () => {
    expect(renderConfigReference()).toBe(text);
  });
});

describe('links in the README and the reference', () => {
  const ROOT = join(import.meta.dirname, '..');
  const pages = ['README.md', 'ledger-client/README.md', 'firmware-protocol/PROTOCOL.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  /** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
  const slug = (heading: string) => heading.trim().toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-');
  const anchors = (file: string) => new Set([...readFileSync(join(ROOT, file), 'utf8').matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));

  it.each(pages)('%s links only to files and headings that exist', (page) => {
    const text = readFileSync(join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const file = path ? join(dirname(page), path) : page;
      if (!existsSync(join(ROOT, file))) broken.push(`${target} (no ${file})`);
      else if (anchor && file.endsWith('.md') && !anchors(file).has(anchor)) broken.push(`${target} (no heading #${anchor} in ${file})`);
    }
    expect(broken, `${page}: broken links`).toEqual([]);
  });
});
