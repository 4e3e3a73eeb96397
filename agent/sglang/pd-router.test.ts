import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ConfigDocument, ConfigReplica } from "../../schema/config-document.ts";
import type { RouterConfig } from "../../schema/router.ts";
import { startPdEngines } from "../../test/fakes/pd-engines.ts";
import { configDocument, memoryLog } from "../../test/support/agent-fixtures.ts";
import { routerPorts } from "../../test/support/ports.ts";
import { type Check, until as waitUntil } from "../../test/support/until.ts";
import type { RouterInstallation } from "./detect.ts";
import { SglangRouters } from "./routers.ts";
import type { ServiceRouterTiming } from "./service-router.ts";

// A PD service on the external router, against the fake SGLang router (run as the real one would be)
// and the protocol-faithful fake prefill/decode pair: the router is launched in PD mode, gets its
// workers with their types and bootstrap ports, and pairs them itself (a decode completes only if
// its prefill got the same room); a legacy router gets them on its command line and restarts.

const FAKE = path.resolve(import.meta.dirname, "../../test/fakes/sglang-router.mjs");
const TIMING: ServiceRouterTiming = {
  startupTimeoutMs: 30_000,
  probeIntervalMs: 20,
  syncIntervalMs: 50,
  pendingAddTimeoutMs: 10_000,
  unresponsiveAfter: 3,
  backoff: { initialMs: 50, maxMs: 200 },
  stableAfterMs: 60_000,
  stopGraceMs: 3_000,
  requestTimeoutMs: 3_000,
  addTimeoutMs: 10_000,
};
const PD: RouterConfig = {
  type: "sglang",
  policy: "cache_aware",
  pd_disaggregation: true,
  prefill_policy: "cache_aware",
  decode_policy: "round_robin",
};
const until = <T>(what: string, check: Check<T>) => waitUntil(what, check, 30_000, 20);

interface FakeState {
  argv: string[];
  pd: boolean;
  pd_requests: number;
  registrations: { url: string; worker_type: string; bootstrap_port: number | null }[];
}
const fakeState = async (port: number) =>
  (await (await fetch(`http://127.0.0.1:${port}/_fake/state`)).json()) as FakeState;

let engines: Awaited<ReturnType<typeof startPdEngines>>;
let routers: SglangRouters | null;

beforeEach(async () => {
  engines = await startPdEngines({ prefill: 2, decode: 2 });
  routers = null;
});

afterEach(async () => {
  await routers?.stop();
  await engines.close();
});

function doc(version: number, replicas: ConfigReplica[], router: RouterConfig = PD): ConfigDocument {
  const base = configDocument(version, replicas[0]?.url ?? "http://127.0.0.1:1");
  base.services[0]!.router = router;
  base.services[0]!.replicas = replicas;
  return base;
}
const p = (i: number, bootstrap = engines.prefill[i]!.bootstrapPort): ConfigReplica => ({
  id: `p${i + 1}`,
  url: engines.prefill[i]!.url,
  role: "prefill",
  bootstrap_port: bootstrap,
});
const d = (i: number): ConfigReplica => ({ id: `d${i + 1}`, url: engines.decode[i]!.url, role: "decode" });

function start(...fakeArgs: string[]) {
  const applied: ConfigDocument[] = [];
  const r = new SglangRouters({
    detect: async (): Promise<RouterInstallation> => ({
      installed: true,
      command: [process.execPath, FAKE, ...fakeArgs],
      source: "test",
    }),
    ports: routerPorts(),
    timing: TIMING,
    log: memoryLog(),
    applyToProxy: async (document) => {
      applied.push(structuredClone(document));
    },
  });
  routers = r;
  /**
   * The router's port once traffic goes through it: its mode is external and the proxy's last
   * document sends the service there (the agent applies the switch after the mode changes).
   */
  const external = () =>
    until("traffic through the router", () => {
      const mode = r.router("llama")?.mode;
      if (mode?.mode !== "external") return null;
      const urls = applied.at(-1)?.services[0]?.replicas.map((x) => x.url) ?? [];
      return urls.join() === `http://127.0.0.1:${mode.port}` ? mode.port : null;
    });
  return { routers: r, applied, external };
}

const chat = (port: number, stream: boolean) =>
  fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], stream }),
  });

describe("a PD service on the external router", () => {
  it("launches it in PD mode, registers prefill and decode with their bootstrap ports, and it pairs them", async () => {
    const h = start();
    await h.routers.apply(doc(1, [p(0), d(0)]));
    const port = await h.external();
    const state = await fakeState(port);
    expect(state.argv.join(" ")).toContain(
      `--pd-disaggregation --prefill-policy cache_aware --decode-policy round_robin --prefill ${engines.prefill[0]!.url} 8998 --decode ${engines.decode[0]!.url}`,
    );
    expect(state.pd).toBe(true);
    // To the proxy the router is one plain upstream: no PD routing of its own on top.
    const served = h.applied.at(-1)!.services[0]!;
    expect(served.replicas).toEqual([{ id: `sglang-router-${port}`, url: `http://127.0.0.1:${port}` }]);
    expect(served.router).toEqual({ type: "sglang", policy: "cache_aware" });

    const plain = await chat(port, false);
    expect(plain.status).toBe(200);
    expect(((await plain.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe(
      "Disaggregated hello!",
    );
    const streamed = await chat(port, true);
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toMatch(/aggregated[\s\S]*data: \[DONE\]/);
    expect(engines.transfer.transferred).toHaveLength(2);

    // Another bootstrap port, a second decode: the prefill is registered again, the decode added.
    await h.routers.apply(doc(2, [p(0, 9100), d(0), d(1)]));
    await until("the new registrations", async () => {
      const regs = (await fakeState(port)).registrations;
      return regs.length === 3 && regs.some((r) => r.worker_type === "prefill" && r.bootstrap_port === 9100);
    });
    expect((await fakeState(port)).registrations).toEqual(
      expect.arrayContaining([
        { url: engines.decode[0]!.url, worker_type: "decode", bootstrap_port: null },
        { url: engines.decode[1]!.url, worker_type: "decode", bootstrap_port: null },
      ]),
    );
    expect(h.routers.router("llama")!.launches).toBe(1);
  });

  it("is not routable without a replica of each role, and says so", async () => {
    const h = start();
    await h.routers.apply(doc(1, [p(0), d(0)]));
    const port = await h.external();
    await h.routers.apply(doc(2, [p(0)]));
    await until("built-in", () => h.routers.router("llama")!.mode.mode === "built-in");
    expect(h.routers.reports()).toEqual([
      {
        service: "llama",
        mode: "built-in",
        reason:
          "service llama disaggregates prefill and decode and needs at least one replica of each role (has 1 prefill, 0 decode)",
      },
    ]);
    await until("the decode removed", async () => (await fakeState(port)).registrations.length === 1);
  });

  it("starts a legacy router again with the new workers on its command line (its PD router refuses /add_worker)", async () => {
    const h = start("--fake-api", "legacy");
    await h.routers.apply(doc(1, [p(0), d(0)]));
    const first = await h.external();
    expect((await chat(first, false)).status).toBe(200);
    const add = await fetch(`http://127.0.0.1:${first}/add_worker?url=${encodeURIComponent(engines.decode[1]!.url)}`, {
      method: "POST",
    });
    expect(add.status).toBe(400);

    await h.routers.apply(doc(2, [p(0), p(1), d(0)]));
    await until("relaunched", () => h.routers.router("llama")!.launches === 2);
    const second = await h.external();
    expect((await fakeState(second)).argv.join(" ")).toContain(
      `--prefill ${engines.prefill[0]!.url} 8998 --prefill ${engines.prefill[1]!.url} 8999 --decode ${engines.decode[0]!.url}`,
    );
    for (let i = 0; i < 2; i++) expect((await chat(second, i === 1)).status).toBe(200);
    expect((await fakeState(second)).pd_requests).toBe(2);
  });

  it("stays on the built-in PD routing, saying why, with a router that has no PD mode or a built-in-only policy", async () => {
    const h = start("--fake-version", "no-pd");
    await h.routers.apply(doc(1, [p(0), d(0)], { ...PD, decode_policy: "cache_aware" }));
    expect(h.routers.reports()).toEqual([
      {
        service: "llama",
        mode: "built-in",
        reason:
          "the installed sglang router has no prefill/decode mode (its --help lists no --pd-disaggregation, --prefill, --decode)",
      },
    ]);
    await h.routers.apply(doc(2, [p(0), d(0)], { ...PD, prefill_policy: "prefix_load" }));
    expect(h.routers.reports()[0]!.reason).toBe(
      "prefill_policy prefix_load is Gateplane's own: built-in only, the sglang router does not have it",
    );
    expect(h.routers.router("llama")).toBeNull();
    // Both times the proxy keeps the service's replicas and its PD router.
    expect(h.applied.at(-1)!.services[0]!.router).toMatchObject({ pd_disaggregation: true });
  });
});
