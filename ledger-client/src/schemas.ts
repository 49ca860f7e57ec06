/**
 * The published Valueflows GraphQL schemas (../schemas/, vendored as text with where each came
 * from) as graphql-js schemas. `buildSchema` leaves custom scalars open to any value; here they
 * check what the specifications say they hold, so that `getVariableValues` refuses what a server
 * would: `DateTime` an ISO 8601 date-time, `Decimal` a decimal number ("represented as strings",
 * numbers are taken too, as hREA and Bonfire do), `URI` a scheme and what follows it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { buildSchema, GraphQLScalarType, Kind, type GraphQLSchema, type ValueNode } from 'graphql';

export const SCHEMA_NAMES = ['vf-graphql/0.9.0-alpha.10', 'vf-graphql/0.8.5', 'hrea/0.0.1-alpha.22'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];

// The sources keep the files beside the package; a build (dist/) reaches them from three levels down.
const DIR = [new URL('../schemas/', import.meta.url), new URL('../../../ledger-client/schemas/', import.meta.url)].find((u) => existsSync(u));

/** The SDL of a vendored schema, as published. */
function sdlOf(name: SchemaName): string {
  if (!DIR) throw new Error('the vendored Valueflows schemas (ledger-client/schemas/) are not installed beside the ledger client');
  return readFileSync(new URL(`${name}.graphql`, DIR), 'utf8');
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
const DECIMAL = /^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

/** A scalar that takes strings (and, where said, numbers) matching `ok`, from variables and literals alike. */
function scalar(what: string, ok: (v: string) => boolean, numbers = false) {
  const check = (v: unknown): unknown => {
    if (numbers && typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && ok(v)) return v;
    throw new TypeError(`expected ${what}, got ${JSON.stringify(v)}`);
  };
  const literal = (node: ValueNode): unknown => {
    if (node.kind === Kind.STRING) return check(node.value);
    if (numbers && (node.kind === Kind.INT || node.kind === Kind.FLOAT)) return check(Number(node.value));
    throw new TypeError(`expected ${what} as a ${numbers ? 'string or number' : 'string'} literal`);
  };
  return { parseValue: check, parseLiteral: literal, serialize: check };
}

const SCALARS: Record<string, ReturnType<typeof scalar>> = {
  DateTime: scalar('an ISO 8601 date-time with an offset, e.g. 2026-11-24T15:00:00Z', (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v))),
  Decimal: scalar('a decimal number, e.g. "12.34"', (v) => DECIMAL.test(v), true),
  URI: scalar('a URI, e.g. https://example.org/x or urn:x', (v) => URI.test(v)),
};

/** A fresh graphql-js schema of a vendored SDL, its scalars checking their values (callers may attach resolvers). */
export function loadSchema(name: SchemaName): GraphQLSchema {
  const schema = buildSchema(sdlOf(name));
  for (const [typeName, behaviour] of Object.entries(SCALARS)) {
    const t = schema.getType(typeName);
    if (t instanceof GraphQLScalarType) Object.assign(t, behaviour);
  }
  return schema;
}
