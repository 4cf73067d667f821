// Reads [{name, query, parameters}] as JSON on stdin; writes [{name, query, diagnostics}] on stdout.
// One Node process lints every query: Neo4j's Cypher front end is slow to load.
import { lintCypherQuery } from '@neo4j-cypher/language-support';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const items = JSON.parse(input);
const out = items.map(({ name, query, parameters }) => {
  const { diagnostics } = lintCypherQuery(query, { parameters: parameters ?? {} });
  return {
    name,
    query,
    diagnostics: diagnostics.map((d) => ({ severity: d.severity, message: d.message, offsets: d.offsets })),
  };
});
process.stdout.write(JSON.stringify(out));
