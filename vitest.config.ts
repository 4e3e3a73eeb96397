import { configDefaults, defineConfig } from "vitest/config";

/**
 * The end-to-end files that share ONE `npm start` stack (test/support/shared-stack-setup.ts), each
 * in a project of its own. The stack tests that stop or restart the control plane, or need a fast
 * cron, start their own (e2e-dataplane, which also runs the cron fast, and stack-restart) and stay in the node project.
 */
const SHARED_STACK_FILES = [
  "test/node/e2e.test.ts",
  "test/node/e2e-cli-accounts.test.ts",
  "test/node/e2e-engine-routing.test.ts",
  "test/node/e2e-local-endpoints.test.ts",
  "test/node/e2e-scale-from-zero.test.ts",
  "test/node/e2e-service-tokens.test.ts",
  "test/node/e2e-traffic.test.ts",
  "test/node/e2e-console.test.ts",
  "test/node/e2e-mesh.test.ts",
];

export default defineConfig({
  test: {
    // vitest's default on a 2-core machine is one file at a time (cores - 1); the node project's
    // files mostly wait on sockets and child processes, so two at a time halve its wall time.
    maxWorkers: 2,
    // Files share their worker's module cache instead of re-importing every module per file: the
    // node project's CPU time halves (190 → 107 CPU-s here; the 61 unit files of schema, cli,
    // policies, observe and the objects' modules 41 → 15). Its files keep no state between them that
    // another could see: fake timers are restored after each test, nothing mocks a module or stubs
    // a global. (Only the root level takes it: a project's `isolate` or `poolOptions.forks` does not.)
    // The worker project's pool has its own isolation (one runtime, storage shared on purpose).
    isolate: false,
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
          exclude: [...configDefaults.exclude, ...SHARED_STACK_FILES],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          // Its own project so that its global setup, which starts the shared stack, runs only
          // when the run has one of these files (vitest sets up only the projects it runs).
          name: "e2e",
          environment: "node",
          include: SHARED_STACK_FILES,
          globalSetup: ["test/support/shared-stack-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
