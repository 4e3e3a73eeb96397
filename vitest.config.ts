import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // vitest's default on a 2-core machine is one file at a time (cores - 1); the node project's
    // files mostly wait on sockets and child processes, so two at a time halve its wall time.
    maxWorkers: 2,
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
            "test/node/**/*.test.ts",
          ],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
