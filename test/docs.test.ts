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
