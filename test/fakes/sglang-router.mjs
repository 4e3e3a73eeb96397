// The fake SGLang router as a command: compiled once (bin/compiled-entry.mjs) rather than run under
// tsx's loader, whose start-up cost every launch of a test's router would pay again.
import { importEntry } from "../../bin/compiled-entry.mjs";

await importEntry("test/fakes/sglang-router.ts");
