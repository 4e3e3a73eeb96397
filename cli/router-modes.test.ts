import { describe, expect, it } from "vitest";
import { gatewayRouterLines, serviceRouterLines } from "./router-modes.ts";

const NOT_INSTALLED = { mode: "built-in" as const, reason: "sglang router not installed on this host" };
const EXTERNAL = { mode: "external" as const, reason: null };
const sync = (replica_num: number, router: typeof EXTERNAL | typeof NOT_INSTALLED | null | undefined) => ({
  replica_num,
  applied_version: 1,
  state: "in_sync" as const,
  error: null,
  ...(router === undefined ? {} : { router }),
});

describe("router modes under `gateway get` and `service get`", () => {
  it("lists each replica's reported services, and nothing when none reported (or an old control plane)", () => {
    expect(
      gatewayRouterLines({
        replicas: [
          { replica_num: 1, routers: [{ service: "llama", ...NOT_INSTALLED }] },
          {
            replica_num: 0,
            routers: [
              { service: "llama", ...EXTERNAL },
              { service: "qwen", ...EXTERNAL },
            ],
          },
          { replica_num: 2, routers: [] },
        ] as never,
      }),
    ).toEqual([
      "",
      "Router modes:",
      "  replica=0: llama external; qwen external",
      "  replica=1: llama built-in (sglang router not installed on this host)",
    ]);
    expect(gatewayRouterLines({ replicas: [{ replica_num: 0 }] as never })).toEqual([]);
  });

  it("says the mode once when the replicas agree, else per replica", () => {
    expect(serviceRouterLines({ gateway_replicas: [sync(0, EXTERNAL), sync(1, EXTERNAL)] })).toEqual([
      "",
      "Router: external",
    ]);
    expect(serviceRouterLines({ gateway_replicas: [sync(1, NOT_INSTALLED), sync(0, EXTERNAL)] })).toEqual([
      "",
      "Router: replica=0 external; replica=1 built-in (sglang router not installed on this host)",
    ]);
    expect(serviceRouterLines({ gateway_replicas: [sync(0, EXTERNAL), sync(1, null)] })).toEqual([
      "",
      "Router: replica=0 external",
    ]);
    expect(serviceRouterLines({ gateway_replicas: [sync(0, null), sync(1, undefined)] })).toEqual([]);
  });
});
