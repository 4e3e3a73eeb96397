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
            "test/node/**/*.test.ts",
          ],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
