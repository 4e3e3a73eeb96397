/**
 * The local host daemon and cloud hosts' systemd unit start each agent with the proxy's lean heap
 * flags (the agent holds the configuration too): the lists, kept in parts that may not import each
 * other, are equal.
 */
import { expect, it } from "vitest";
import { AGENT_NODE_FLAGS } from "../../durable-objects/backends/clouds/systemd-unit.ts";
import { AGENT_HEAP_FLAGS, defaultAgentCommand } from "../../local-host/default-agent-command.ts";
import { LEAN_HEAP_FLAGS } from "../../proxy/process-fork.ts";

it("starts the agent with the proxy's lean heap flags, before its script", () => {
  expect(AGENT_HEAP_FLAGS).toEqual(LEAN_HEAP_FLAGS);
  const spec = defaultAgentCommand({ http_port: 8080, https_port: 8443 } as Parameters<typeof defaultAgentCommand>[0], {
    instanceDir: "/tmp/i",
    userDataFile: "/tmp/i/user-data.json",
    logFile: "/tmp/i/agent.log",
  });
  expect(spec.args.slice(0, LEAN_HEAP_FLAGS.length)).toEqual([...LEAN_HEAP_FLAGS]);
  expect(spec.args[LEAN_HEAP_FLAGS.length]).toMatch(/bin\/gateplane-agent\.mjs$/);
});

it("cloud hosts' systemd unit starts the agent with the same flags", () => {
  expect(AGENT_NODE_FLAGS).toEqual(LEAN_HEAP_FLAGS);
});
