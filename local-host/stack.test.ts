import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { calculateJwkThumbprint, importJWK, jwtVerify, SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderDevVars } from "./dev-vars.ts";
import { StackError } from "./errors.ts";
import { loadOrCreateSecrets } from "./secrets.ts";
import { startStack } from "./stack.ts";
import { inspectorPortTaken } from "./wrangler.ts";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-stack-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("secrets", () => {
  it("generates every secret once, in its format, in a 0600 file", async () => {
    const secrets = await loadOrCreateSecrets(dir);
    expect(secrets.ADMIN_TOKEN).toMatch(/^gpa_[0-9A-Za-z]{40}$/);
    expect(Buffer.from(secrets.CREDENTIALS_KEY, "base64")).toHaveLength(32);
    expect(secrets.LOCAL_HOST_DAEMON_TOKEN.length).toBeGreaterThanOrEqual(32);
    const file = path.join(dir, "secrets.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateSecrets(dir)).toEqual(secrets);
    const other = await mkdtemp(path.join(tmpdir(), "gp-stack-other-"));
    try {
      expect((await loadOrCreateSecrets(other)).ADMIN_TOKEN).not.toBe(secrets.ADMIN_TOKEN);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it("makes an ES256 signing key whose kid is its thumbprint and whose public half verifies", async () => {
    const { AGENT_SIGNING_KEY } = await loadOrCreateSecrets(dir);
    const jwk = JSON.parse(AGENT_SIGNING_KEY);
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", d: expect.any(String) });
    const { d: _d, ...publicJwk } = jwk;
    expect(jwk.kid).toBe(await calculateJwkThumbprint(publicJwk));
    const token = await new SignJWT({ sub: "x" })
      .setProtectedHeader({ alg: "ES256", kid: jwk.kid })
      .sign(await importJWK(jwk, "ES256"));
    const { payload } = await jwtVerify(token, await importJWK(publicJwk, "ES256"));
    expect(payload.sub).toBe("x");
  });

  it("fills in a missing secret but refuses to replace a malformed one", async () => {
    const first = await loadOrCreateSecrets(dir);
    const file = path.join(dir, "secrets.json");
    const { LOCAL_HOST_DAEMON_TOKEN: _gone, ...rest } = first;
    await writeFile(file, JSON.stringify(rest));
    const second = await loadOrCreateSecrets(dir);
    expect(second).toMatchObject(rest);
    expect(second.LOCAL_HOST_DAEMON_TOKEN).not.toBe(first.LOCAL_HOST_DAEMON_TOKEN);

    await writeFile(file, JSON.stringify({ ...second, CREDENTIALS_KEY: "short" }));
    const error = await loadOrCreateSecrets(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StackError);
    expect((error as Error).message).toContain("CREDENTIALS_KEY is malformed");
    expect(JSON.parse(await readFile(file, "utf8")).CREDENTIALS_KEY).toBe("short");
  });
});

describe("dev.vars", () => {
  it("quotes values so JSON survives, and refuses what dotenv would mangle", () => {
    const text = renderDevVars({ AGENT_SIGNING_KEY: '{"kty":"EC","x":"a-b_c"}', PUBLIC_URL: "http://127.0.0.1:8787" });
    expect(text).toContain(`AGENT_SIGNING_KEY='{"kty":"EC","x":"a-b_c"}'\n`);
    expect(text).toContain("PUBLIC_URL='http://127.0.0.1:8787'\n");
    expect(() => renderDevVars({ TOKEN: "a$HOME" })).toThrow("TOKEN");
    expect(() => renderDevVars({ TOKEN: "it's" })).toThrow("TOKEN");
    expect(() => renderDevVars({ "bad-name": "x" })).toThrow("bad-name");
  });
});

describe("startStack", () => {
  it("fails before starting anything when the control-plane port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: "127.0.0.1", port: 0 }, resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const error = await startStack({ dir, port, quiet: true }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StackError);
      expect((error as StackError).step).toBe("port");
      expect((error as Error).message).toContain(`127.0.0.1:${port} is already in use`);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});

describe("wrangler's inspector port", () => {
  it("knows the port was lost from what wrangler prints, and which port", () => {
    const output =
      "✘ [ERROR] Address already in use (127.0.0.1:9229). Please check that you are not already running a server on this address or specify a different port with --port.";
    expect(inspectorPortTaken(output, 9229)).toBe(true);
    expect(inspectorPortTaken(output, 9230)).toBe(false);
    expect(inspectorPortTaken("✘ [ERROR] Address already in use (127.0.0.1:8787).", 9229)).toBe(false);
  });
});
