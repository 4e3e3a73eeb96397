/**
 * Prefill/decode disaggregation end to end (docs/pd.md): a local gateway of the `npm start` stack
 * (its real agent and proxy) in front of the protocol-faithful fake prefill/decode pair
 * (test/fakes/pd-engines.ts: a decode completes only if its prefill got the same bootstrap room),
 * called with the official `openai` client, streaming and not:
 *
 * - `pd-builtin` (prefill_policy prefix_load, Gateplane's own) on the proxy's built-in PD routing,
 *   its workers registered with `gateplane service replica add --role … --bootstrap-port …`;
 * - `pd-smg` on the external router: the host has the fake SGLang router as if installed
 *   (test/support/fake-router-venv.ts), which the agent launches in PD mode and gives the workers,
 *   registered through the API, with their types and bootstrap ports; the proxy's counters show
 *   the traffic went to the router, and the router's own state that it paired it.
 *
 * `service get` shows both: the router mode and the PD section.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import { startPdEngines } from "../fakes/pd-engines.ts";
import { enableFakeRouter } from "../support/fake-router-venv.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { hosts, projectApi, cli as run, until } from "../support/stack.ts";

let stack: SharedStack;
let engines: Awaited<ReturnType<typeof startPdEngines>>;
let client: OpenAI;
let host: string;
let metricsToken: string;

const api = <T>(method: string, route: string, body?: unknown) => projectApi<T>(stack, method, route, body);

async function apply(name: string, lines: string[]): Promise<void> {
  const file = path.join(stack.dir, `${name}.dstack.yml`);
  await writeFile(file, `${lines.join("\n")}\n`);
  const applied = await run(stack, "apply", "-f", file, "-y");
  expect(applied.code, applied.stderr).toBe(0);
}

async function cli(...argv: string[]): Promise<string> {
  const result = await run(stack, ...argv);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

const routerMode = async (service: string) =>
  (await api<Service>("GET", `/services/${service}`)).gateway_replicas[0]?.router ?? null;

beforeAll(async () => {
  engines = await startPdEngines({ prefill: 1, decode: 1 });
  stack = await sharedStack("pd");
  await apply("gw", [
    "type: gateway",
    "name: pd",
    "backend: local",
    "domain: pd.localhost",
    "observability: {metrics: {public: true}}",
  ]);
  const gateway = await until("the gateway's host", async () => {
    const g = await api<Gateway>("GET", "/gateways/pd");
    return g.replicas[0]?.hostname ? g : null;
  });
  host = gateway.replicas[0]!.hostname!;
  // Before any service could use the router: the host detects it once.
  const instance = (await hosts(stack)).find((h) => h.hostname === host)!;
  await enableFakeRouter(stack.hostDir(instance.instance_id));

  const common = ["type: service", "gateway: pd", "https: false", "auth: false"];
  await apply("pd-builtin", [
    ...common,
    "name: pd-builtin",
    "model: pd-a",
    "router: {type: sglang, pd_disaggregation: true, prefill_policy: prefix_load}",
  ]);
  await apply("pd-smg", [...common, "name: pd-smg", "model: pd-b", "router: {type: sglang, pd_disaggregation: true}"]);
  const [p1] = engines.prefill;
  const [d1] = engines.decode;
  await cli(
    "service",
    "replica",
    "add",
    "pd-builtin",
    "--id",
    "p1",
    "--url",
    p1!.url,
    "--role",
    "prefill",
    "--bootstrap-port",
    "8998",
  );
  await cli("service", "replica", "add", "pd-builtin", "--id", "d1", "--url", d1!.url, "--role", "decode");
  await api("PUT", "/services/pd-smg/replicas/p1", { url: p1!.url, role: "prefill", bootstrap_port: 8998 });
  await api("PUT", "/services/pd-smg/replicas/d1", { url: d1!.url, role: "decode" });

  await until("pd-smg through the router", async () => (await routerMode("pd-smg"))?.mode === "external");
  // The gateway routes to a new replica once its first health check passed (docs/health.md).
  await until("pd-builtin's replicas healthy", async () => {
    const s = await api<Service>("GET", "/services/pd-builtin");
    return s.replicas.length === 2 && s.replicas.every((r) => r.health?.state === "healthy");
  });
  metricsToken = (await cli("service-token", "create", "-q")).trim();
  client = new OpenAI({ baseURL: `http://${host}/v1`, apiKey: "unused", maxRetries: 0, timeout: 20_000 });
}, 120_000);

afterAll(async () => {
  await stack?.release();
  await engines?.close();
}, 60_000);

async function both(model: string) {
  const messages = [{ role: "user" as const, content: "hi" }];
  const plain = await client.chat.completions.create({ model, messages });
  expect(plain.choices[0]!.message.content).toBe("Disaggregated hello!");
  const stream = await client.chat.completions.create({ model, messages, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  expect(text).toBe("Disaggregated hello!");
}

describe("a PD service on a local gateway, through the openai client", () => {
  it("is served by the built-in PD routing", async () => {
    const before = engines.transfer.transferred.length;
    await both("pd-a");
    expect(engines.transfer.transferred.length).toBe(before + 2);
    expect(await routerMode("pd-builtin")).toEqual({
      mode: "built-in",
      reason: "prefill_policy prefix_load is Gateplane's own: built-in only, the sglang router does not have it",
    });
    const shown = await cli("service", "get", "pd-builtin");
    expect(shown).toContain("\nRouter: built-in (prefill_policy prefix_load is Gateplane's own");
    expect(shown).toContain("\nPrefill/decode: 1 prefill, 1 decode; routable\n");
    expect(shown).toMatch(/\nprefill +p1 +http:\/\/127\.0\.0\.1:\d+ +8998\n/);
  });

  it("is served by the external router in PD mode, which pairs the workers itself", async () => {
    const before = engines.transfer.transferred.length;
    await both("pd-b");
    expect(engines.transfer.transferred.length).toBe(before + 2);
    // The proxy sent both to its one upstream, the router; the router paired them.
    const metrics = await (
      await fetch(`http://${host}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })
    ).text();
    const counted =
      /^gateplane_requests_total\{service="pd-smg",replica="sglang-router-(\d+)",code="2xx"\} (\d+)$/m.exec(metrics);
    expect(counted, metrics).not.toBeNull();
    expect(Number(counted![2])).toBeGreaterThanOrEqual(2);
    const state = (await (await fetch(`http://127.0.0.1:${counted![1]}/_fake/state`)).json()) as {
      pd_requests: number;
      registrations: unknown[];
    };
    expect(state.pd_requests).toBeGreaterThanOrEqual(2);
    expect(state.registrations).toEqual(
      expect.arrayContaining([
        { url: engines.prefill[0]!.url, worker_type: "prefill", bootstrap_port: 8998 },
        { url: engines.decode[0]!.url, worker_type: "decode", bootstrap_port: null },
      ]),
    );
    const shown = await cli("service", "get", "pd-smg");
    expect(shown).toContain("\nRouter: external\n");
    expect(shown).toContain("\nPrefill/decode: 1 prefill, 1 decode; routable\n");
  });
});
