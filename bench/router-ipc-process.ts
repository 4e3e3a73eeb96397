/**
 * @module
 * A stand-in proxy child process for `bench/router.ts`'s IPC section: the real `IpcRoutingGate` and
 * `Balancer`, forked by the benchmark (which plays the parent with the real `RoutingState`). On
 * `run` it times decisions from `pick` to `routed` — one at a time (the latency a request sees), or
 * `perTurn` at once (what batching does to the cost per decision) — handing each lease back.
 */
import { performance } from "node:perf_hooks";
import { Balancer, DEFAULT_HEALTH_POLICY, ReplicaState } from "../proxy/balancer.ts";
import { createPolicy } from "../proxy/policies/index.ts";
import type { ToProcess } from "../proxy/process-protocol.ts";
import { IpcRoutingGate, type RoutedService } from "../proxy/routing-gate.ts";
import type { RouterConfig } from "../schema/router.ts";

export interface RunMessage {
  type: "run";
  router: RouterConfig;
  replicas: number;
  texts: string[];
  decisions: number;
  perTurn: number;
}

const gate = new IpcRoutingGate(
  (message) => {
    process.send!(message);
    return true;
  },
  10_000,
  (line) => console.error(line),
);

function route(message: RunMessage): RoutedService {
  const replicas = Array.from(
    { length: message.replicas },
    (_, i) => new ReplicaState("llm", `llm-${i}`, `http://10.0.0.${i + 1}:8000`),
  );
  const policy = createPolicy(message.router, replicas);
  return {
    name: "llm",
    router: message.router,
    balancer: new Balancer(replicas, DEFAULT_HEALTH_POLICY, () => {}, policy),
  };
}

/** µs per decision: each one's own latency (perTurn 1), else a turn's elapsed time / perTurn. */
async function run(message: RunMessage): Promise<number[]> {
  const service = route(message);
  const times: number[] = [];
  for (let i = 0; i < message.decisions; i += message.perTurn) {
    const start = performance.now();
    await new Promise<void>((resolve) => {
      let left = message.perTurn;
      for (let k = 0; k < message.perTurn; k++) {
        gate.pick(service, null, message.texts[(i + k) % message.texts.length]!, {
          routed: (_replica, lease) => {
            if (message.perTurn === 1) times.push((performance.now() - start) * 1000);
            gate.release(lease);
            if (--left === 0) resolve();
          },
        });
      }
    });
    if (message.perTurn > 1) times.push(((performance.now() - start) * 1000) / message.perTurn);
  }
  return times;
}

process.on("message", (message: ToProcess | RunMessage) => {
  if (message.type === "routed") gate.receive(message);
  else if (message.type === "run") void run(message).then((times) => process.send!({ type: "times", times }));
});
process.on("disconnect", () => process.exit(0));
process.send!({ type: "started" });
