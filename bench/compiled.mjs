// Runs a bench compiled once to plain JavaScript, as the agent and the proxy run in production
// (bin/compiled-entry.mjs), so the bench's own process (the agent, in bench:config-delta) carries
// no TypeScript loader: `node bench/compiled.mjs bench/<file>.ts [arguments]`.
import { importEntry } from "../bin/compiled-entry.mjs";

const [, , entry] = process.argv;
if (!entry) throw new Error("usage: node bench/compiled.mjs bench/<file>.ts [arguments]");
// The bench reads its own arguments from argv[2] on, as when run directly.
process.argv.splice(2, 1);
await importEntry(entry);
