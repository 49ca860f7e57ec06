/**
 * docs/configuration.md, rendered from the config file's JSON Schema (itself derived from the
 * zod schema), so the reference lists every key the gateway accepts and cannot drift from it.
 * A key's meaning is its `.describe()` text in the schema: edit it there, then `npm run docs`.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

/** The part of JSON Schema (draft 2020-12) that z.toJSONSchema produces for the config. */
interface Node {
  type?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: Node | boolean;
  propertyNames?: Node;
  items?: Node;
  oneOf?: Node[];
  anyOf?: Node[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  pattern?: string;
  format?: string;
}

interface Row {
  path: string;
  node: Node;
  required: boolean;
}

/** A `|` would end a table cell and a `<` open an HTML tag. */
const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('<', '&lt;');
const code = (text: string): string => `\`${text.replaceAll('|', '\\|')}\``;
const json = (value: unknown): string => code(JSON.stringify(value));

const isRecord = (n: Node): n is Node & { additionalProperties: Node } => typeof n.additionalProperties === 'object';
const objectMember = (n: Node): Node | undefined => n.anyOf?.find((m) => m.properties);

/** A map's key in a path: `billing.tools.<tool>`, named after the map, in the singular. */
const mapKey = (path: string): string => `<${path.slice(path.lastIndexOf('.') + 1).replace(/s$/, '')}>`;

function typeOf(n: Node): string {
  if (n.anyOf) {
    const formats = n.anyOf.flatMap((m) => (m.format ? [m.format] : []));
    if (formats.length === n.anyOf.length) return `string (${formats.join(' or ')})`;
    return n.anyOf.map(typeOf).join(' or ');
  }
  if (n.oneOf) return [...new Set(n.oneOf.map(typeOf))].join(' or ');
  if (n.type === 'array') return `list of ${typeOf(n.items ?? {})}`;
  if (n.type === 'object' && isRecord(n)) return `map of ${typeOf(n.additionalProperties)}`;
  return n.type ?? 'any';
}

function allowed(n: Node): string {
  if (n.const !== undefined) return json(n.const);
  if (n.enum) return n.enum.map(json).join(', ');
  if (n.anyOf) return n.anyOf.map(allowed).filter(Boolean).join('; or ');
  const limits: string[] = [];
  // zod gives every integer the safe-integer range: no limit a person set
  const min = n.minimum === Number.MIN_SAFE_INTEGER ? undefined : n.minimum;
  const max = n.maximum === Number.MAX_SAFE_INTEGER ? undefined : n.maximum;
  if (min !== undefined && max !== undefined) limits.push(`${min} to ${max}`);
  else {
    if (min !== undefined) limits.push(`≥ ${min}`);
    if (n.exclusiveMinimum !== undefined) limits.push(`> ${n.exclusiveMinimum}`);
    if (max !== undefined) limits.push(`≤ ${max}`);
  }
  if (n.minLength === 1) limits.push('not empty');
  else if (n.minLength !== undefined) limits.push(`at least ${n.minLength} characters`);
  if (n.maxLength !== undefined) limits.push(`at most ${n.maxLength} characters`);
  if (n.minItems !== undefined) limits.push(`at least ${n.minItems}`);
  // a format (date, date-time) already says it, in fewer words than its pattern
  if (n.pattern !== undefined && !n.format) limits.push(`matches ${code(n.pattern)}`);
  if (n.type === 'object' && isRecord(n) && n.propertyNames?.pattern) limits.push(`keys match ${code(n.propertyNames.pattern)}`);
  return limits.join(', ');
}

function defaultOf(r: Row): string {
  if (r.node.default !== undefined) {
    // an object's default is its keys' defaults, listed on their own rows
    return r.node.type === 'object' && !isRecord(r.node) ? "its keys' defaults" : json(r.node.default);
  }
  return r.required ? '**required**' : '';
}

/** The rows of one key and of every key inside it, in the schema's order. */
function rows(path: string, n: Node, required: boolean): Row[] {
  const own: Row = { path, node: n, required };
  const inner = objectMember(n) ?? n;
  if (inner.type === 'array' && inner.items?.properties) return [own, ...children(`${path}[]`, inner.items)];
  // a map of kinds (notification channels): each kind's keys in turn, after its kind row
  if (inner.type === 'object' && isRecord(inner) && inner.additionalProperties.oneOf) return [own, ...inner.additionalProperties.oneOf.flatMap((v) => children(`${path}.${mapKey(path)}`, v))];
  if (inner.type === 'object' && isRecord(inner)) return [own, ...children(`${path}.${mapKey(path)}`, inner.additionalProperties)];
  if (inner.properties) return [own, ...children(path, inner)];
  return [own];
}

function children(path: string, n: Node): Row[] {
  return Object.entries(n.properties ?? {}).flatMap(([key, child]) => rows(`${path}.${key}`, child, n.required?.includes(key) ?? false));
}

function table(rowsOf: Row[]): string {
  const lines = ['| key | type | allowed | default | meaning |', '| --- | --- | --- | --- | --- |'];
  for (const r of rowsOf) {
    if (!r.node.description) throw new Error(`${r.path}: no description; give this key a .describe() text in the config schema`);
    lines.push(`| ${code(r.path)} | ${cell(typeOf(r.node))} | ${allowed(r.node)} | ${defaultOf(r)} | ${cell(r.node.description)} |`);
  }
  return lines.join('\n');
}

/** A top-level key: its table, or one table per kind for a list of devices or simulators. */
function section(key: string, n: Node, required: boolean): string {
  const parts = [`## \`${key}\``, ''];
  const variants = n.items?.oneOf;
  if (!variants) return [...parts, table(rows(key, n, required))].join('\n');
  parts.push(table([{ path: key, node: n, required }]));
  for (const v of variants) {
    const kind = v.properties?.kind?.const;
    if (typeof kind !== 'string') throw new Error(`${key}[]: a variant without a constant kind`);
    parts.push('', `### \`${key}[]\` of kind \`${kind}\``, '', table(children(`${key}[]`, v)));
  }
  return parts.join('\n');
}

const INTRO = `# Configuration reference

<!-- Generated by \`npm run docs\` from gateway/src/config/schema.ts: edit the schema's .describe() texts, not this file. -->

The gateway reads one file, YAML or JSON, validated by one zod schema
(\`gateway/src/config/schema.ts\`) that is also the source of the TypeScript types and of
\`ovn-gateway config schema\` (the JSON Schema, for editors: \`# yaml-language-server: $schema=…\`).
Relative paths are relative to the config file. Examples: \`config/simulated-lab.yaml\` (the
demo) and \`deploy/gateway.example.yaml\` (a Raspberry Pi).

A config that cannot be used stops the gateway at start with every problem listed, never a
stack trace; \`ovn-gateway config check <file>\` does the same without starting (exit code 2):

\`\`\`
$ ovn-gateway config check lab.yaml
/etc/ovn-gateway/lab.yaml: 3 problems
  gateway.http.port: Too big: expected number to be <=65535
  gateway.colour: unknown setting (misspelt, or not supported by this version)
  devices.1.id: duplicate device id "printer-node" (also devices.0.id)
\`\`\`

Keys are written as paths: \`devices[]\` is each entry of a list, \`<tool>\` a key of a map that
you choose. A key with no default and not marked **required** may be left out. Checks across
keys (a tool's devices exist and are of a fitting kind, a switch serves one tool, a tariff's use
type is in \`useTypes\`, device ids are unique…) are not listed here; \`config check\` names them.`;

/**
 * The config's JSON Schema as a person writes the file (`io: 'input'`), with the defaults zod
 * leaves out of it where a key's schema transforms its value (the badges' notation, the GPIO
 * pins' shorthand): those defaults (empty lists) are valid as written.
 */
function inputSchema(): Node {
  return z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      const def = zodSchema._zod.def;
      if (def.type === 'default' && jsonSchema.default === undefined) jsonSchema.default = def.defaultValue;
    },
  }) as Node;
}

export function renderConfigReference(): string {
  const root = inputSchema();
  const sections = Object.entries(root.properties ?? {}).map(([key, n]) => section(key, n, root.required?.includes(key) ?? false));
  return [INTRO, ...sections].join('\n\n') + '\n';
}
