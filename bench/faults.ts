/**
 * `npm run bench:faults`: the host faults of issue 15 at full count — the agent SIGKILLed 20×,
 * upgraded 5×, a proxy serving process SIGKILLed 5× — under a steady request loop, one row per
 * scenario (the table in docs/resilience.md). test/node/host-survival.test.ts runs fewer rounds of
 * the same harness; the replica faults' rows come from `npx vitest run test/node/fault-suite.test.ts`.
 */
import { formatHostFigures, startHostFaults } from "../test/support/host-faults.ts";

const host = await startHostFaults();
const started = Date.now();
try {
  const figures = await host.run({ agentKills: 20, agentUpgrades: 5, processKills: 5 }, (f) =>
    console.error(formatHostFigures(f)),
  );
  const rows = figures.map((f) => {
    const mean = f.recoverMs.reduce((a, b) => a + b, 0) / Math.max(1, f.recoverMs.length);
    return `| ${f.name}, ${f.rounds}× | ${f.sent} | ${f.failed} | ${f.unavoidable} | ${f.refused} | ${Math.round(mean)} ms (max ${Math.max(...f.recoverMs)} ms) |`;
  });
  console.log(
    [
      `\nhost faults (4 clients, 2 proxy processes; ${((Date.now() - started) / 1000).toFixed(0)} s):\n`,
      "| scenario | requests | client-visible failures | of which on the killed process's connections | refused | host whole again after (mean) |",
      "|---|--:|--:|--:|--:|--:|",
      ...rows,
    ].join("\n"),
  );
} finally {
  await host.close();
}
process.exit(0);
