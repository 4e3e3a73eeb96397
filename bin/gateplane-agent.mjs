#!/usr/bin/env node
// The agent is TypeScript; tsx compiles it on the fly so a host runs straight from the package.
import { register } from "tsx/esm/api";

register();
// Imported after register(): a static import would be hoisted and loaded before the hook exists.
await import("../agent/main.ts");
