/**
 * `npm run schemas`: writes the JSON Schema of every MQTT payload to
 * firmware-protocol/mqtt-schemas/, for firmware authors. The files are committed; a test
 * checks that they match the zod schemas.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonSchemaFiles } from './schemas.js';

const SCHEMA_DIR = join(import.meta.dirname, '..', '..', '..', 'firmware-protocol', 'mqtt-schemas');

const files = jsonSchemaFiles();
mkdirSync(SCHEMA_DIR, { recursive: true });
// a payload that no longer exists must not leave its old schema behind
for (const name of readdirSync(SCHEMA_DIR)) if (name.endsWith('.json') && !files.has(name)) rmSync(join(SCHEMA_DIR, name));
for (const [name, text] of files) writeFileSync(join(SCHEMA_DIR, name), text);
console.log(`${files.size} schemas written to ${SCHEMA_DIR}`);
