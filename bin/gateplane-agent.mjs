#!/usr/bin/env node
// The agent is TypeScript, run straight from the package (compiled-entry.mjs says how).
import { importEntry } from "./compiled-entry.mjs";

await importEntry("agent/main.ts");
