/**
 * The files a config names besides itself (scenarios, TLS certificate and key, the invoices' logo), read and checked
 * the way `run` will use them, so that `config check` finds what `run` would trip on, and `run`
 * refuses before it opens the journal.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError, type LoadedConfig } from './load.js';
import { loadScenario } from './scenario.js';

/**
 * Throws a ConfigError listing every problem of every file the config names, as `config.path
 * (file): what is wrong`. `simulators: false`: the simulators' files are not this process's.
 */
export function checkNamedFiles(loaded: LoadedConfig, { simulators = true } = {}): void {
  const problems: string[] = [];
  const at = (path: string, file: string, check: () => void) => {
    try {
      check();
    } catch (err) {
      const lines = err instanceof ConfigError ? err.problems : [(err as Error).message];
      problems.push(...lines.map((l) => `${path} (${file}): ${l}`));
    }
  };
  const { config, baseDir } = loaded;
  if (simulators) config.simulators.forEach((s, i) => {
    if ('scenario' in s && s.scenario) {
      const file = resolve(baseDir, s.scenario);
      at(`simulators.${i}.scenario`, file, () => loadScenario(file));
    }
  });
  const tls = config.mqtt?.tls;
  if (tls) {
    const read = (key: 'cert' | 'key') => {
      const file = resolve(baseDir, tls[key]);
      let pem: Buffer | null = null;
      at(`mqtt.tls.${key}`, file, () => {
        try {
          pem = readFileSync(file);
        } catch (err) {
          throw new Error(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      });
      return pem as Buffer | null;
    };
    const [cert, key] = [read('cert'), read('key')];
    if (cert && key) at('mqtt.tls', `${tls.cert}, ${tls.key}`, () => createSecureContext({ cert, key }));
  }
  const logo = config.billing?.documents?.logo;
  if (logo) {
    const file = resolve(baseDir, logo);
    at('billing.documents.logo', file, () => {
      let head: Buffer;
      try {
        head = readFileSync(file).subarray(0, 4);
      } catch (err) {
        throw new Error(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const png = head.equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      const jpeg = head[0] === 0xff && head[1] === 0xd8;
      if (!png && !jpeg) throw new Error('not a PNG or JPEG image (statements and invoices take only those)');
    });
  }
  if (problems.length) throw new ConfigError(loaded.file, problems);
}
