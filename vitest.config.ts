import { defineConfig } from "vitest/config";
import LongestFirst from "./test/support/sequencer.ts";

export default defineConfig({
  test: {
    // vitest's default on a 2-core machine is one file at a time (cores - 1); the node project's
    // files mostly wait on sockets and child processes, so two at a time halve its wall time, and a
    // third fork fills the cores while the others wait (npm test 182 → 159 s here). The Workers pool
    // keeps maxWorkers (its one runtime); the node project's forks take `maxForks`.
    maxWorkers: 2,
    poolOptions: { forks: { maxForks: 3, minForks: 3 } },
    // Files share their worker's module cache instead of re-importing every module per file: the
    // node project's CPU time halves (190 → 107 CPU-s here; the 61 unit files of schema, cli,
    // policies, observe and the objects' modules 41 → 15). Its files keep no state between them that
    // another could see: fake timers are restored after each test, nothing mocks a module or stubs
    // a global. (Only the root level takes it: a project's `isolate` or `poolOptions.forks` does not.)
    // The worker project's pool has its own isolation (one runtime, storage shared on purpose).
    isolate: false,
    // Longest files first, from vitest's cache or, on a clean clone, test/durations.json.
    sequence: { sequencer: LongestFirst },
    projects: [
      "test/worker/vitest.config.ts",
      {
        test: {
          name: "node",
          environment: "node",
          include: [
            "schema/**/*.test.ts",
            "agent/**/*.test.ts",
            "proxy/**/*.test.ts",
            "cli/**/*.test.ts",
            "bin/**/*.test.ts",
            "local-host/**/*.test.ts",
            // Node-side unit tests of the objects' pure modules and backends; the Worker and the
            // objects as a whole run in workerd, in the worker project (test/worker/).
            "durable-objects/**/*.test.ts",
            // The same for the Worker's pure modules (the console's HTML and charts).
            "worker/**/*.test.ts",
            "test/node/**/*.test.ts",
          ],
          // The one `npm start` stack that end-to-end files share, started when the first of them
          // asks (`sharedStack()`); those files run beside the others, not after them.
          globalSetup: ["test/support/shared-stack-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
