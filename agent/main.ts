/**
 * @module
 * Entry point of the on-host agent (`gateplane-agent`): parse the command line, read the bootstrap
 * document, run until SIGTERM/SIGINT. Exit 2 means the host was set up wrongly and restarting it
 * will not help; exit 1 is anything else.
 */
import { startAgent } from "./agent.ts";
import { parseAgentArgs, UsageError } from "./args.ts";
import { BootstrapError, readBootstrap } from "./bootstrap.ts";
import { createLogger } from "./log.ts";
import { attachStandaloneProxy } from "./proxy-link.ts";
import { AGENT_VERSION } from "./version.ts";

async function main(): Promise<void> {
  const log = createLogger();
  try {
    const args = parseAgentArgs(process.argv.slice(2));
    const bootstrap = await readBootstrap(args.userDataFile);
    const agent = await startAgent({
      bootstrap,
      stateDir: args.stateDir,
      host: args.host,
      httpPort: args.httpPort,
      httpsPort: args.httpsPort,
      adminPort: args.adminPort,
      processes: args.processes,
      servingChild: args.servingChild,
      heartbeatIntervalMs: args.heartbeatIntervalMs,
      sglang: { command: args.sglangRouterCommand, ports: args.sglangRouterPorts },
      log,
      // The proxy outlives this process (docs/gateway-host.md): stopping the agent only detaches from it.
      ...(args.inProcessProxy
        ? {}
        : {
            startProxy: (options) =>
              attachStandaloneProxy(options, {
                stateDir: args.stateDir,
                version: AGENT_VERSION,
                log: (line) => log.info(line),
              }),
          }),
    });
    const shutdown = (signal: NodeJS.Signals) => {
      log.info(`received ${signal}; shutting down`);
      agent.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          log.error(`shutdown failed: ${(error as Error).message}`);
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", shutdown);
    process.once("SIGINT", shutdown);
  } catch (error) {
    if (error instanceof UsageError || error instanceof BootstrapError) {
      process.stderr.write(`gateplane-agent: ${error.message}\n`);
      process.exit(2);
    }
    log.error(`agent failed to start: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  }
}

await main();
