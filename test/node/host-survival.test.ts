/**
 * The host survives its agent (issue 15; docs/gateway-host.md): a steady request loop through a
 * host's standalone proxy (real sockets) while its agent is SIGKILLed and restarted, upgraded (old
 * stopped, new version started: the proxy is handed over to the new build's), and while a proxy
 * serving process is SIGKILLed (`../support/host-faults.ts`). Prints requests sent and failed per
 * scenario. None may fail, except the exchanges that were on the killed serving process's own
 * connections (counted apart: the client's to retry).
 *
 * Fewer rounds than the 20 kills and 5 upgrades, to stay within ~15 s on a loaded 2-core
 * machine (an agent's start is ~0.4 s of Node and module loading, an upgrade starts a whole proxy):
 * `npm run bench:faults` runs all of them and prints the table of docs/resilience.md.
 * HOST_FAULTS=20,5,5 runs other counts here.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { formatHostFigures, type HostFaults, startHostFaults } from "../support/host-faults.ts";

const [agentKills, agentUpgrades, processKills] = (process.env.HOST_FAULTS ?? "6,2,3").split(",").map(Number) as [
  number,
  number,
  number,
];

let host: HostFaults;
beforeAll(async () => {
  host = await startHostFaults();
});
afterAll(async () => {
  await host?.close();
});

it(`serves every request while its agent is killed ${agentKills}×, upgraded ${agentUpgrades}×, and a proxy process crashes ${processKills}×`, {
  // ~20 s alone; each restart waits on a new agent or proxy, which takes several times longer with
  // another suite on the machine.
  timeout: 120_000,
}, async () => {
  const started = Date.now();
  const figures = await host.run({ agentKills, agentUpgrades, processKills }, (f) => console.log(formatHostFigures(f)));
  console.log(`host faults: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const f of figures) {
    // The port never went down, and nothing failed that another process could have served.
    expect(f.refused, f.name).toBe(0);
    expect(f.failed - f.unavoidable, `${f.name}: ${f.errors.join("; ")}`).toBe(0);
  }
  // Only a killed serving process has connections of its own to lose, at most one per client.
  expect(figures[0]!.failed + figures[1]!.failed).toBe(0);
  expect(figures[2]!.unavoidable).toBeLessThanOrEqual(processKills * 4);
});
