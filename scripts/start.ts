/**
 * @module
 * `npm start [-- --port 8787 --dir .gateplane]`: runs the local stack until Ctrl-C.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { StackError } from "../local-host/errors.ts";
import { startStack } from "../local-host/stack.ts";

const USAGE = "usage: npm start -- [--port <port>] [--dir <dir>] [--daemon-port <port>] [--quiet]";

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function parsePort(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) fail(`--${name}: expected a port number, got "${value}"\n${USAGE}`, 2);
  return port;
}

let values: { port?: string; dir?: string; "daemon-port"?: string; quiet?: boolean; help?: boolean };
try {
  ({ values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      port: { type: "string" },
      dir: { type: "string" },
      "daemon-port": { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`, 2);
}
if (values.help) fail(USAGE, 0);

let stack: Awaited<ReturnType<typeof startStack>>;
try {
  stack = await startStack({
    dir: values.dir ?? ".gateplane",
    port: parsePort("port", values.port, 8787),
    daemonPort: parsePort("daemon-port", values["daemon-port"], 0),
    quiet: values.quiet ?? false,
  });
} catch (error) {
  fail(`gateplane: ${error instanceof StackError ? error.message : ((error as Error).stack ?? String(error))}`, 1);
}

const configFile = path.join(stack.dir, "config.json");
// The CLI finds `.gateplane/config.json` by walking up from its directory; any other place needs telling.
const found = path.resolve(".gateplane", "config.json") === configFile;
const cli = found ? "npx gateplane" : `GATEPLANE_CONFIG=${configFile} npx gateplane`;
process.stdout.write(
  [
    "",
    `Gateplane is running at ${stack.url}`,
    `  admin token:       ${stack.token}`,
    `  CLI config:        ${configFile} (project "${stack.project}")`,
    `  local host daemon: ${stack.daemon.url}`,
    `  web console:       ${stack.url}/console (sign in with the admin token)`,
    "",
    "Next:",
    `  ${cli} apply -f examples/local-gateway.dstack.yml`,
    `  ${cli} gateway list`,
    `  ${cli} delete -f examples/local-gateway.dstack.yml`,
    `  curl ${stack.url}/api/openapi.json    # the API, as OpenAPI 3.1`,
    "",
    "Press Ctrl-C to stop.",
    "",
  ].join("\n"),
);

/** When the first stop signal arrived; null while running. */
let stopRequestedAt: number | null = null;
const shutdown = (signal: NodeJS.Signals) => {
  if (stopRequestedAt !== null) {
    // Under `npm start` one Ctrl-C arrives twice (from the terminal and relayed by tsx): only a
    // later one means "now", and then the process groups are left for the OS to reap.
    if (Date.now() - stopRequestedAt < 1_000) return;
    process.stderr.write(`received ${signal} again; exiting without waiting\n`);
    process.exit(130);
  }
  stopRequestedAt = Date.now();
  process.stdout.write("stopping…\n");
  stack.stop().then(
    () => process.exit(0),
    (error: unknown) => fail(`stop failed: ${(error as Error).message}`, 1),
  );
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
