import { describe, expect, it } from "vitest";
import type { ScalingView } from "../schema/service-api.ts";
import { roleScalingLines } from "./role-scaling.ts";
import { plainStyle } from "./style.ts";

const decision = (over: Partial<ScalingView>) => ({
  desired_replicas: 1,
  current_replicas: 1,
  reason: "manual: replicas 1",
  last_change_at: null,
  last_evaluated_at: null,
  ...over,
});

describe("service get: autoscaling per role", () => {
  it("shows each role's registered/desired replicas and reason", () => {
    const scaling = {
      ...decision({ desired_replicas: 3, current_replicas: 2 }),
      roles: {
        prefill: decision({ desired_replicas: 2, reason: "ttft p90 4.75 s over 30s / target 1 s → 2" }),
        decode: decision({ desired_replicas: null, current_replicas: 0, reason: null }),
      },
    };
    expect(roleScalingLines({ scaling }, plainStyle)).toEqual([
      "",
      "ROLE     REPLICAS  SCALING",
      "prefill  1/2       ttft p90 4.75 s over 30s / target 1 s → 2",
      "decode   0/-       not decided yet",
    ]);
  });

  it("prints nothing for a co-located service or one without scaling", () => {
    expect(roleScalingLines({ scaling: decision({}) }, plainStyle)).toEqual([]);
    expect(roleScalingLines({ scaling: null }, plainStyle)).toEqual([]);
  });
});
