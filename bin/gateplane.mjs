#!/usr/bin/env node
// Runs the TypeScript CLI straight from the checkout, no build step (compiled-entry.mjs says how).
import { importEntry } from "./compiled-entry.mjs";

const { main } = await importEntry("cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
