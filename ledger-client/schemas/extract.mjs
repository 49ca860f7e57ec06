// Prints a Valueflows GraphQL schema as one SDL document, built the way its package builds it.
// Run it in a scratch directory where the packages are installed, not in this repository (see
// README.md beside this file for the exact commands and versions):
//   node extract.mjs <vf-graphql package name>          every module of that vf-graphql
//   node extract.mjs @valueflows/vf-graphql hrea        hREA's module set and extension
import { createRequire } from 'node:module';
import process from 'node:process';

const require = createRequire(`${process.cwd()}/`);
const { printSchema } = require('graphql');
const [pkg, set] = process.argv.slice(2);
if (!pkg) throw new Error('usage: node extract.mjs <vf-graphql package name> [hrea]');
const { buildSchema } = require(pkg);

let schema;
if (set === 'hrea') {
  // What @valueflows/vf-graphql-holochain's bindSchema() builds by default: its DEFAULT_VF_MODULES
  // and its one schema extension, over the vf-graphql it depends on.
  const { DEFAULT_VF_MODULES } = await import(require.resolve('@valueflows/vf-graphql-holochain/types.js'));
  const { associateMyAgentExtension } = await import(require.resolve('@valueflows/vf-graphql-holochain/schema-extensions.js'));
  schema = buildSchema([...DEFAULT_VF_MODULES], [associateMyAgentExtension]);
} else {
  schema = buildSchema();
}
process.stdout.write(printSchema(schema));
