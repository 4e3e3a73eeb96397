/**
 * An agent process for test/node/host-survival.test.ts: `agent/main.ts`'s standalone-proxy wiring,
 * with the build's version given on the command line (an "upgrade" is the same code under another
 * version, which makes the agent hand the running proxy over to a proxy of its own build).
 *
 *   HOST_AGENT='{"userData": {...}, "stateDir": "...", "httpPort": 0, "version": "v1", "processes": 2}' node … host-agent.ts
 */
import { startAgent } from "../../agent/agent.ts";
import { createLogger } from "../../agent/log.ts";
import { attachStandaloneProxy } from "../../agent/proxy-link.ts";
import type { AgentBootstrap } from "../../schema/agent.ts";

const spec = JSON.parse(process.env.HOST_AGENT!) as {
  userData: AgentBootstrap;
  stateDir: string;
  httpPort: number;
  version: string;
  processes: number;
};
const log = createLogger();
const agent = await startAgent({
  bootstrap: spec.userData,
  stateDir: spec.stateDir,
  httpPort: spec.httpPort,
  processes: spec.processes,
  version: spec.version,
  log,
  startProxy: (options) =>
    attachStandaloneProxy(options, { stateDir: spec.stateDir, version: spec.version, log: (l) => log.info(l) }),
});
process.stdout.write(`ATTACHED ${agent.httpPort}\n`);
process.once("SIGTERM", () => {
  agent.stop().then(() => process.exit(0));
});
