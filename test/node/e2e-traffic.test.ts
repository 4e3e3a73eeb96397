/**
 * LLM traffic end to end: a model service on a 2-replica local gateway, streamed chat completions
 * from the official `openai` client to each gateway replica, a fake model server with known TTFT
 * and inter-token latency behind it; the agents' reports reach the control plane, and the API and
 * `gateplane service get` show TTFT, ITL and tokens merged over both replicas and per replica.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import { TPOT_BOUNDS, TTFT_BOUNDS } from "../../schema/llm-stats.ts";
import type { Service } from "../../schema/service-api.ts";
import { type FakeModelServer, startFakeModelServer } from "../fakes/model-server.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { projectApi, cli as run, until } from "../support/stack.ts";

const TTFT_MS = 200;
const ITL_MS = 20;
const TOKENS = Array.from({ length: 8 }, (_, i) => `t${i} `);
const PER_REPLICA = 4;

let stack: SharedStack;
let model: FakeModelServer;

beforeAll(async () => {
  model = await startFakeModelServer("m", { ttftMs: TTFT_MS, itlMs: ITL_MS, tokens: TOKENS, promptTokens: 7 });
  stack = await sharedStack("traffic");
}, 120_000);

afterAll(async () => {
  await stack?.release();
  await model?.close();
}, 60_000);

describe("LLM traffic through two gateway replicas", () => {
  it("is measured at each replica and merged by the control plane (API and CLI)", async () => {
    const gatewayFile = path.join(stack.dir, "gw.dstack.yml");
    await writeFile(
      gatewayFile,
      "type: gateway\nname: traffic\nbackend: local\ndomain: traffic.localhost\nreplicas: 2\n",
    );
    const gw = await run(stack, "apply", "-f", gatewayFile, "-y");
    expect(gw.code, gw.stderr).toBe(0);
    const serviceFile = path.join(stack.dir, "chat.dstack.yml");
    await writeFile(
      serviceFile,
      "type: service\nname: chat\ngateway: traffic\nhttps: false\nauth: false\nmodel: m1\nusage: include\n",
    );
    const svc = await run(stack, "apply", "-f", serviceFile, "-y");
    expect(svc.code, svc.stderr).toBe(0);
    await projectApi(stack, "PUT", "/services/chat/replicas/r1", { url: model.url });
    await until("the replica on both gateway replicas", async () => {
      const s = await projectApi<Service>(stack, "GET", "/services/chat");
      return s.gateway_replicas.length === 2 && s.gateway_replicas.every((r) => r.state === "in_sync");
    });
    const gateway = await projectApi<Gateway>(stack, "GET", "/gateways/traffic");
    const hosts = gateway.replicas.map((r) => r.hostname!);
    expect(hosts).toHaveLength(2);

    // What the client saw: the gateway's measurements lie between the fake's timings and these.
    const clientTtft: number[] = [];
    const clientGaps: number[] = [];
    for (const host of hosts) {
      // The bare address's model endpoint, as `gateplane apply` prints it for the first replica.
      const client = new OpenAI({ baseURL: `http://${host}/v1`, apiKey: "unused", maxRetries: 3, timeout: 20_000 });
      for (let i = 0; i < PER_REPLICA; i++) {
        // From before the request: the replica may send its headers only with the first token.
        const sent = performance.now();
        const stream = await client.chat.completions.create({
          model: "m1",
          messages: [{ role: "user", content: "hi" }],
          stream: true,
        });
        let text = "";
        let last = 0;
        for await (const chunk of stream) {
          const now = performance.now();
          if (chunk.choices[0]?.delta.content) {
            if (last === 0) clientTtft.push((now - sent) / 1000);
            else clientGaps.push((now - last) / 1000);
            last = now;
          }
          // usage: include asks the engine for usage; the client did not, so it never sees that chunk.
          expect(chunk.usage ?? null).toBeNull();
          text += chunk.choices[0]?.delta.content ?? "";
        }
        expect(text).toBe(TOKENS.join(""));
      }
    }

    const total = hosts.length * PER_REPLICA;
    const traffic = await until(
      "both replicas' reports merged",
      async () => {
        const s = await projectApi<Service>(stack, "GET", "/services/chat");
        const w = s.traffic?.windows["60"];
        return w &&
          w.requests === total &&
          s.gateway_replicas.every((r) => r.traffic?.windows["60"].requests === PER_REPLICA)
          ? s
          : null;
      },
      60_000,
      250,
    );
    const w = traffic.traffic!.windows["60"];
    // The fake waits 200 ms before the first token and 20 ms between tokens; the gateway measures
    // from the request's arrival, so at least that (the bucket holding it) and at most what the
    // client saw (the bucket holding its slowest); a busy machine only moves the upper end.
    const upper = (bounds: readonly number[], x: number) => bounds.find((b) => b >= x) ?? Infinity;
    expect(w.ttft.p90).toBeGreaterThan(0.1);
    expect(w.ttft.p90).toBeLessThanOrEqual(upper(TTFT_BOUNDS, Math.max(...clientTtft)));
    expect(w.ttft.p50).toBeGreaterThan(0.1);
    expect(w.itl.p50).toBeGreaterThan(0);
    expect(w.itl.p50).toBeLessThanOrEqual(upper(TPOT_BOUNDS, Math.max(...clientGaps)));
    expect(w.tpot.p50).toBeGreaterThan(0.0075);
    expect(w.tpot.p50).toBeLessThanOrEqual(upper(TPOT_BOUNDS, Math.max(...clientGaps)));
    // Exact tokens from the usage the gateway asked for: 7 in and 8 out per request.
    expect(w.tokens).toMatchObject({ input: 7 * total, output: TOKENS.length * total, estimated_output: 0 });
    expect(w.errors).toBe(0);
    for (const r of traffic.gateway_replicas) {
      expect(r.traffic!.windows["60"].ttft.p50).toBeGreaterThan(0.1);
    }

    const shown = await run(stack, "service", "get", "chat");
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/TTFT/);
    expect(shown.stdout).toMatch(/ITL/);
  }, 180_000);
});
