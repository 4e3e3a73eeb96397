/**
 * The order files start in: longest first, so the long end-to-end files do not start last and leave
 * one core idle while they finish (on 2 cores, the run's wall time is about the CPU it needs / 2 plus
 * whatever runs alone at the end).
 *
 * vitest's own sequencer orders by the durations in its cache (node_modules/.vite/vitest), which a
 * clean clone (CI) does not have: there every file is "unknown" and they start in glob order. So the
 * durations of a full run are kept in `test/durations.json` (`npm run test:durations` rewrites it
 * from a JSON report) and used when the cache has no entry for a file. A file in neither (a new one)
 * counts as `UNKNOWN_SECONDS`; failed files still start first, as vitest does.
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

const UNKNOWN_SECONDS = 5;

const KNOWN: Record<string, number> = JSON.parse(
  readFileSync(new URL("../durations.json", import.meta.url), "utf8"),
) as Record<string, number>;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const cache = this.ctx.cache;
    const cost = (spec: TestSpecification) => {
      const file = relative(root, spec.moduleId);
      const cached = cache.getFileTestResults(`${spec.project.name}:${file}`);
      if (cached?.failed) return Number.POSITIVE_INFINITY;
      return cached ? cached.duration / 1000 : (KNOWN[file] ?? UNKNOWN_SECONDS);
    };
    const costs = new Map(files.map((spec) => [spec, cost(spec)]));
    return [...files].sort((a, b) => costs.get(b)! - costs.get(a)!);
  }
}
