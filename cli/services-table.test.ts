import { describe, expect, it } from "vitest";
import { parseServiceConfiguration } from "../schema/service.ts";
import type { GatewayReplicaSync, Service } from "../schema/service-api.ts";
import { configState, replicasTable, servicesTable } from "./services-table.ts";
import { plainStyle, styleFor } from "./style.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

const synced = (replica_num: number, version = 7): GatewayReplicaSync => ({
  replica_num,
  applied_version: version,
  state: "in_sync",
  error: null,
});
const pending = (replica_num: number): GatewayReplicaSync => ({
  replica_num,
  applied_version: 6,
  state: "pending",
  error: null,
});
const rejected = (replica_num: number, error: string | null): GatewayReplicaSync => ({
  replica_num,
  applied_version: 6,
  state: "rejected",
  error,
});

function service(overrides: Partial<Service> = {}, configuration: Record<string, unknown> = {}): Service {
  return {
    id: "svc-1",
    name: "llama",
    project_name: "main",
    gateway: "edge",
    configuration: parseServiceConfiguration({ type: "service", name: "llama", ...configuration }),
    url: "https://llama.example.com",
    model_url: null,
    created_at: ago(90),
    updated_at: ago(30),
    replicas: [],
    config_version: 7,
    gateway_replicas: [synced(0)],
    stats: null,
    scaling: null,
    ...overrides,
  };
}

describe("configState", () => {
  it.each([
    ["every gateway replica in sync", [synced(0), synced(1)], "v7 applied"],
    ["one of two pending, counting those in sync", [synced(0), pending(1)], "v7 pending (1/2)"],
    ["all pending", [pending(0), pending(1), pending(2)], "v7 pending (0/3)"],
    ["a gateway without replicas: nothing serves it yet", [], "v7 pending (0/0)"],
    ["one rejected, which beats pending", [pending(0), rejected(1, "bad upstream")], "v7 rejected: bad upstream"],
    ["the first rejected replica's error", [rejected(1, "second"), rejected(0, "first")], "v7 rejected: first"],
    ["a rejection without a reason", [synced(0), rejected(1, null)], "v7 rejected"],
    ["a multi-line reason, on one line", [rejected(0, "parse error:\n  line 3\n")], "v7 rejected: parse error: line 3"],
  ])("%s", (_, gateway_replicas, expected) => {
    expect(configState({ config_version: 7, gateway_replicas })).toBe(expected);
  });
});

describe("servicesTable", () => {
  it("shows NAME GATEWAY URL REPLICAS CONFIG, REPLICAS counting the registered endpoints", () => {
    const one = service({
      replicas: [
        { id: "r1", url: "http://10.0.0.5:8000", registered_at: ago(10) },
        { id: "r2", url: "http://10.0.0.6:8000", registered_at: ago(5) },
      ],
    });
    const other = service({
      name: "echo",
      gateway: "local-gateway",
      url: "http://echo.localhost:45531",
      config_version: 12,
      gateway_replicas: [synced(0, 12), pending(1)],
    });
    expect(servicesTable([one, other], { now: NOW }, plainStyle)).toEqual([
      "NAME   GATEWAY        URL                          REPLICAS  CONFIG",
      "llama  edge           https://llama.example.com    2         v7 applied",
      "echo   local-gateway  http://echo.localhost:45531  0         v12 pending (1/2)",
    ]);
  });

  it("shows registered/desired for autoscaled services, and the autoscaler's reason with verbose", () => {
    const scaled = service(
      {
        name: "chat",
        scaling: {
          desired_replicas: 3,
          current_replicas: 1,
          reason: "rps 12.4 over 60s / target 5 → 3",
          last_change_at: ago(20),
          last_evaluated_at: ago(2),
        },
        replicas: [{ id: "r1", url: "http://10.0.0.5:8000", registered_at: ago(10) }],
      },
      { replicas: "1..4", scaling: { metric: "rps", target: 5 } },
    );
    const fixed = service({ name: "echo" });
    expect(servicesTable([scaled, fixed], { now: NOW }, plainStyle)).toEqual([
      "NAME  GATEWAY  URL                        REPLICAS  CONFIG",
      "chat  edge     https://llama.example.com  1/3       v7 applied",
      "echo  edge     https://llama.example.com  0         v7 applied",
    ]);
    expect(servicesTable([scaled], { verbose: true, now: NOW }, plainStyle)[1]).toMatch(
      /^chat .* 1\/3 +v7 applied +1 min ago +rps 12\.4 over 60s \/ target 5 → 3$/,
    );
  });

  it("adds MODEL and CREATED with verbose", () => {
    const withModel = service(
      { model_url: "https://gateway.example.com/v1" },
      { model: "meta-llama/Llama-3.1-8B-Instruct" },
    );
    const without = service({ name: "echo", created_at: ago(7200) });
    expect(servicesTable([withModel, without], { verbose: true, now: NOW }, plainStyle)).toEqual([
      "NAME   GATEWAY  URL                        REPLICAS  CONFIG      MODEL                             CREATED",
      "llama  edge     https://llama.example.com  0         v7 applied  meta-llama/Llama-3.1-8B-Instruct  1 min ago",
      "echo   edge     https://llama.example.com  0         v7 applied                                    2 hours ago",
    ]);
  });

  it("is just the header for no services, bold on a terminal", () => {
    expect(servicesTable([], { now: NOW }, plainStyle)).toEqual(["NAME  GATEWAY  URL  REPLICAS  CONFIG"]);
    const tty = styleFor({ stdout: { write: () => true, isTTY: true }, env: {} });
    expect(servicesTable([], { now: NOW }, tty)).toEqual(["\x1b[1mNAME  GATEWAY  URL  REPLICAS  CONFIG\x1b[22m"]);
  });
});

describe("replicasTable", () => {
  it("lists ID URL REGISTERED in the service's order", () => {
    const s = service({
      replicas: [
        { id: "r2", url: "http://10.0.0.6:8000/prefix", registered_at: ago(3) },
        { id: "r1", url: "http://10.0.0.5:8000", registered_at: ago(600) },
      ],
    });
    expect(replicasTable(s, NOW, plainStyle)).toEqual([
      "ID  URL                          REGISTERED",
      "r2  http://10.0.0.6:8000/prefix  3 sec ago",
      "r1  http://10.0.0.5:8000         10 min ago",
    ]);
  });
});
