/**
 * @module
 * Process entry point: the real stdin/stdout/env/Ctrl-C wired into {@link run}.
 */
import { processIo } from "./io.ts";
import { run } from "./run.ts";

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  return run(argv, processIo());
}
