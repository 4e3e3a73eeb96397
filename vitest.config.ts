import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
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
