import { describe, expect, it } from "vitest";
import type { PdRouting } from "../../schema/router.ts";
import { parseRouterHelp } from "./detect.ts";
import {
  notUsable,
  pdModeFlags,
  pdRefusal,
  pdWorkerFlags,
  serviceWorkers,
  type WorkerSpec,
  workerDiff,
  workerKey,
} from "./worker-set.ts";

const PD: PdRouting = { pd_disaggregation: true, prefill_policy: "cache_aware", decode_policy: "power_of_two" };
const SMG = parseRouterHelp(
  "--policy {random,cache_aware,power_of_two} --pd-disaggregation --prefill PREFILL --decode DECODE --prefill-policy X --decode-policy Y",
);
const ONE_POLICY = parseRouterHelp(
  "--policy {random,cache_aware} --pd-disaggregation --prefill PREFILL --decode DECODE",
);
const p1: WorkerSpec = { url: "http://10.0.0.5:30001", type: "prefill", bootstrapPort: 8998 };
const p2: WorkerSpec = { url: "http://10.0.0.7:30001", type: "prefill", bootstrapPort: null };
const d1: WorkerSpec = { url: "http://10.0.0.6:30002", type: "decode", bootstrapPort: null };

describe("the workers of a service's router", () => {
  it("are its replicas as regular workers, or under PD those with a role, typed, with the prefill's bootstrap port", () => {
    const replicas = [
      { id: "p1", url: "http://10.0.0.5:30001/", role: "prefill" as const, bootstrap_port: 8998 },
      { id: "d1", url: "http://10.0.0.6:30002", role: "decode" as const, bootstrap_port: null },
      { id: "x", url: "http://10.0.0.9:1", role: null },
    ];
    expect(serviceWorkers({ replicas, router: { type: "sglang", policy: "cache_aware" } }).map((w) => w.type)).toEqual([
      "regular",
      "regular",
      "regular",
    ]);
    expect(serviceWorkers({ replicas, router: { type: "sglang", policy: "cache_aware", ...PD } })).toEqual([p1, d1]);
  });

  it("go on a PD router's command line as SMG's launcher parses them, the side policies when it takes them", () => {
    expect(pdWorkerFlags([p1, p2, d1])).toEqual([
      "--prefill",
      p1.url,
      "8998",
      "--prefill",
      p2.url,
      "none",
      "--decode",
      d1.url,
    ]);
    expect(pdModeFlags(PD, SMG)).toEqual([
      "--pd-disaggregation",
      "--prefill-policy",
      "cache_aware",
      "--decode-policy",
      "power_of_two",
    ]);
    expect(pdModeFlags(PD, ONE_POLICY)).toEqual(["--pd-disaggregation"]);
  });

  it("refuse a router without PD flags, or without side policies when the sides differ", () => {
    expect(pdRefusal(PD, SMG)).toBeNull();
    expect(pdRefusal(PD, parseRouterHelp("--policy {random}"))).toBe(
      "the installed sglang router has no prefill/decode mode (its --help lists no --pd-disaggregation, --prefill, --decode)",
    );
    expect(pdRefusal(PD, ONE_POLICY)).toMatch(/takes one policy for both sides .* differ$/);
    expect(pdRefusal({ ...PD, decode_policy: "cache_aware" }, ONE_POLICY)).toBeNull();
  });

  it("make the router usable once it lists one of them, under PD one of each side", () => {
    expect(notUsable("llama", true, [p1, d1], [p1, d1])).toBeNull();
    expect(notUsable("llama", true, [p1, d1], [p1])).toBe(
      "sglang router lists 1 of the service's 1 prefill and 0 of its 1 decode replicas yet (needs one of each)",
    );
    // Registered under another bootstrap port: not the worker the service has.
    expect(notUsable("llama", true, [p1, d1], [{ ...p1, bootstrapPort: 9000 }, d1])).not.toBeNull();
    expect(notUsable("llama", true, [p1], [p1])).toBe(
      "service llama disaggregates prefill and decode and needs at least one replica of each role (has 1 prefill, 0 decode)",
    );
    const r: WorkerSpec = { url: "http://a:1", type: "regular", bootstrapPort: null };
    expect(notUsable("llama", false, [r], [r])).toBeNull();
    expect(notUsable("llama", false, [], [])).toBe("service has no replicas");
  });
});

describe("the worker diff", () => {
  it("removes what the service lacks, adds what the router lacks, once per key, and waits out a URL leaving", () => {
    const pending = new Map<string, number>();
    const moved = { ...p1, bootstrapPort: 9000 };
    const { removals, additions } = workerDiff([moved, d1, d1], [p1], pending, 0, 1000);
    expect(removals).toEqual([p1]);
    // p1's URL leaves under port 8998: it comes back under 9000 on a later round.
    expect(additions).toEqual([d1]);
    pending.set(workerKey(d1), 0);
    expect(workerDiff([moved, d1], [], pending, 500, 1000).additions).toEqual([moved]);
    expect(workerDiff([moved, d1], [], pending, 1000, 1000).additions).toEqual([moved, d1]);
    workerDiff([d1], [d1], pending, 1000, 1000);
    expect(pending.size).toBe(0);
  });
});

describe("a listing without bootstrap ports", () => {
  it("takes a prefill worker's port as registered, instead of churning it", () => {
    const listed = [{ ...p1, bootstrapPort: null, portUnknown: true }, d1];
    expect(workerDiff([p1, d1], listed, new Map(), 0, 1000)).toEqual({ removals: [], additions: [] });
  });
});
