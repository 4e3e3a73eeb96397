import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
// @ts-expect-error: the snippet docs/webhooks.md publishes, a plain .mjs without types.
import { verifyWebhook } from "../../docs/verify-webhook.mjs";
import { signatureHeader } from "../../durable-objects/webhook-signature.ts";

const verify = verifyWebhook as (
  body: string,
  header: string | undefined,
  secret: string,
  options?: { toleranceSeconds?: number; now?: number },
) => boolean;

const root = new URL("../../", import.meta.url);

describe("webhook signatures", () => {
  it("docs/webhooks.md shows docs/verify-webhook.mjs verbatim", async () => {
    const snippet = await readFile(new URL("docs/verify-webhook.mjs", root), "utf8");
    const page = await readFile(new URL("docs/webhooks.md", root), "utf8");
    expect(page).toContain(`\`\`\`js\n${snippet}\`\`\``);
  });

  it("the dispatcher's header (WebCrypto) matches node:crypto's HMAC and passes the snippet", async () => {
    const body = JSON.stringify({ id: "evt_1", type: "gateway.status", data: { to: "running", note: "é ✓" } });
    const t = Math.floor(Date.now() / 1000);
    const header = await signatureHeader(["whsec_one"], t, body);
    const expected = createHmac("sha256", "whsec_one").update(`${t}.${body}`).digest("hex");
    expect(header).toBe(`t=${t},v1=${expected}`);
    expect(verify(body, header, "whsec_one")).toBe(true);
  });

  it("the snippet refuses other secrets, changed bodies, stale or malformed headers", async () => {
    const body = '{"id":"evt_2"}';
    const t = Math.floor(Date.now() / 1000);
    const header = await signatureHeader(["new-secret", "old-secret"], t, body);
    expect(verify(body, header, "new-secret")).toBe(true);
    expect(verify(body, header, "old-secret")).toBe(true);
    expect(verify(body, header, "other")).toBe(false);
    expect(verify(`${body} `, header, "new-secret")).toBe(false);
    expect(verify(body, header, "new-secret", { now: (t + 301) * 1000 })).toBe(false);
    expect(verify(body, header, "new-secret", { now: (t - 301) * 1000 })).toBe(false);
    expect(verify(body, header, "new-secret", { now: (t + 299) * 1000 })).toBe(true);
    for (const bad of [undefined, "", "v1=abc", `t=${t}`, `t=${t},v1=zz`, `t=x,v1=${"0".repeat(64)}`]) {
      expect(verify(body, bad, "new-secret")).toBe(false);
    }
  });
});
