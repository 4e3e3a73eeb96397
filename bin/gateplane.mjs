#!/usr/bin/env node
// Runs the TypeScript CLI straight from the checkout (no build step): tsx compiles on import.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
