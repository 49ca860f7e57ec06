/**
 * `npm run bench`: every benchmark prints one JSON line, then a readable table;
 * `npm run bench -- api mqtt` runs only those. Figures are measured, not asserted: compare
 * runs on the same machine.
 */
import { BENCHES } from './benches.js';
import { table, type BenchResult } from './stats.js';

const asked = process.argv.slice(2);
const unknown = asked.filter((n) => !(n in BENCHES));
if (unknown.length) {
  console.error(`unknown benchmark: ${unknown.join(', ')} (known: ${Object.keys(BENCHES).join(', ')})`);
  process.exit(2);
}

const results: BenchResult[] = [];
for (const bench of (asked.length ? asked : Object.keys(BENCHES)).map((n) => BENCHES[n]!)) {
  for (const r of await bench()) {
    console.log(JSON.stringify(r));
    results.push(r);
  }
}
console.log('\n' + table(results));
