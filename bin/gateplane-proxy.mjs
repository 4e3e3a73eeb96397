#!/usr/bin/env node
// The standalone proxy the agent starts (docs/gateway-host.md); TypeScript run as compiled-entry.mjs says.
import { importEntry } from "./compiled-entry.mjs";

await importEntry("proxy/control/main.ts");
