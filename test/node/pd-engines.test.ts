import { afterEach, describe, expect, it } from "vitest";
import { startPdEngines } from "../fakes/pd-engines.ts";

let engines: Awaited<ReturnType<typeof startPdEngines>> | null = null;
afterEach(async () => {
  await engines?.close();
  engines = null;
});

const post = (url: string, path: string, body: string) =>
  fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });

const ROOM = "9223372036854775807";

describe("the fake prefill/decode pair", () => {
  it("completes when both sides get the same room and decode names the prefill that got it", async () => {
    engines = await startPdEngines({ prefill: 2, decode: 1 }, { transferTimeoutMs: 300 });
    const [p1] = engines.prefill;
    const [d1] = engines.decode;
    const body = `{"text":"hi","bootstrap_host":"127.0.0.1","bootstrap_port":8998,"bootstrap_room":${ROOM}}`;
    const [prefill, decode] = await Promise.all([post(p1!.url, "/generate", body), post(d1!.url, "/generate", body)]);
    expect(prefill.status).toBe(200);
    expect(decode.status).toBe(200);
    expect(((await decode.json()) as { text: string }).text).toBe("Disaggregated hello!");
    expect(engines.transfer.transferred).toEqual([ROOM]);
  });

  it("fails a decode paired with another prefill than it was told, a missing injection, and a prefill sent alone", async () => {
    engines = await startPdEngines({ prefill: 2, decode: 1 }, { transferTimeoutMs: 200 });
    const [, p2] = engines.prefill;
    const [d1] = engines.decode;
    // Decode is told p1 (8998), the room goes to p2 (8999).
    const body = `{"text":"hi","bootstrap_host":"127.0.0.1","bootstrap_port":8998,"bootstrap_room":1}`;
    const [prefill, decode] = await Promise.all([post(p2!.url, "/generate", body), post(d1!.url, "/generate", body)]);
    expect(decode.status).toBe(500);
    expect(prefill.status).toBe(500);
    expect((await post(d1!.url, "/v1/completions", '{"prompt":"hi"}')).status).toBe(400);
    const batch = '{"prompt":["a","b"],"bootstrap_host":"127.0.0.1","bootstrap_port":8999,"bootstrap_room":5}';
    expect((await post(p2!.url, "/v1/completions", batch)).status).toBe(400);
    const alone = `{"text":"hi","bootstrap_host":"127.0.0.1","bootstrap_port":8999,"bootstrap_room":7}`;
    expect((await post(p2!.url, "/generate", alone)).status).toBe(500);
  });
});
