/**
 * HTTPS end to end through the real agent process (`bin/gateplane-agent.mjs`, as the local host
 * daemon starts it, with `--https-port`): the document from a control plane names Pebble as the
 * ACME directory and carries an External Account Binding; the agent trusts Pebble's HTTPS through
 * `NODE_EXTRA_CA_CERTS` (no flag of its own), answers the HTTP-01 challenge on its HTTP port,
 * serves the certificate on its HTTPS port, redirects HTTP to it, and reports the host's state
 * over its WebSocket. Fails (does not skip) when Pebble is not installed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stopStandaloneProxy } from "../../agent/proxy-link.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import { configDocument, get, type Replica, startReplica } from "../support/agent-fixtures.ts";
import { type Pebble, pebbleMissing, startPebble } from "../support/pebble.ts";
import { freePorts } from "../support/ports.ts";

const BIN = fileURLToPath(new URL("../../bin/gateplane-agent.mjs", import.meta.url));
const SECRET = "bootstrap-secret-0123456789abcdef0123456789";
const HOST = "llama.example.test";
const KID = "kid-e2e";
const HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

function httpsGet(port: number, host: string, ca: string): Promise<{ status: number; body: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port, servername: host, path: "/v1/models", headers: { host }, ca, agent: false },
      (res) => {
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        let body = "";
        res.on("data", (c: Buffer) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, serial }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("HTTPS through the agent process", () => {
  let dir: string;
  let cp: FakeControlPlane;
  let pebble: Pebble;
  let replica: Replica;
  let child: ChildProcess | null = null;
  let output = "";
  let httpPort: number;
  let httpsPort: number;

  beforeAll(async () => {
    const missing = pebbleMissing();
    if (missing) throw new Error(missing);
    dir = await mkdtemp(path.join(tmpdir(), "gp-https-agent-"));
    cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
    replica = await startReplica("one");
    [httpPort, httpsPort] = (await freePorts(2)) as [number, number];
    // Pebble's VA validates against the agent's HTTP port; its DNS resolves every name to 127.0.0.1.
    pebble = await startPebble({ httpPort, eab: { [KID]: HMAC } });
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await once(child, "exit");
    }
    // The standalone proxy outlives its agent (docs/gateway-host.md).
    if (dir) await stopStandaloneProxy(path.join(dir, "state"));
    await cp?.close();
    await pebble?.stop();
    await replica?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("obtains a certificate, serves HTTPS with it and reports the host's state", async () => {
    const base = configDocument(1, replica.url);
    const doc: ConfigDocument = {
      ...base,
      gateway: { ...base.gateway, domain: "example.test" },
      services: base.services.map((s) => ({ ...s, host: HOST, https: true })),
      acme: { directory_url: pebble.directoryUrl, eab: { kid: KID, hmac_key: HMAC }, email: "ops@example.test" },
    };
    cp.setConfig(doc);
    const userData = path.join(dir, "user-data.json");
    await writeFile(
      userData,
      JSON.stringify({
        control_plane_url: cp.url,
        object_id: "cd".repeat(32),
        gateway_id: "5f0c6a36-8d3e-4c4b-9b7a-2c1f1f6f9e11",
        gateway_name: "edge",
        project_name: "main",
        replica_num: 0,
        bootstrap_secret: SECRET,
      }),
    );
    const caFile = path.join(dir, "pebble-server-ca.pem");
    await writeFile(caFile, pebble.serverCa);
    const started = Date.now();
    child = spawn(
      process.execPath,
      [
        BIN,
        "--user-data",
        userData,
        "--state-dir",
        path.join(dir, "state"),
        "--http-port",
        String(httpPort),
        "--https-port",
        String(httpsPort),
        "--workers",
        "1",
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile } },
    );
    child.stdout!.on("data", (d: Buffer) => {
      output += d;
    });
    child.stderr!.on("data", (d: Buffer) => {
      output += d;
    });

    const report = await vi.waitFor(
      () => {
        const last = cp.received("certificates").at(-1);
        const state = last?.hosts.find((h) => h.host === HOST);
        if (state?.status !== "issued") throw new Error(`not issued yet: ${JSON.stringify(state)}\n${output}`);
        return last!;
      },
      { timeout: 60_000, interval: 100 },
    );
    const issuedAfterMs = report.receivedAt - started;
    const state = report.hosts.find((h) => h.host === HOST)!;
    expect(state.last_error).toBeNull();
    expect(Date.parse(state.not_after!)).toBeGreaterThan(Date.now());
    // The figure the README quotes (process start → issued state at the control plane).
    console.log(`agent process start to certificate issued and reported: ${issuedAfterMs} ms`);

    const root = await pebble.root();
    const reply = await httpsGet(httpsPort, HOST, root);
    expect(reply.status).toBe(200);
    expect(reply.body).toBe("one GET /v1/models");
    // Plain HTTP now redirects to the HTTPS port.
    const plain = await get(httpPort, HOST, "/v1/models").catch((e: Error) => e);
    expect(plain).toMatchObject({ status: 301 });
    // The account was registered with the binding, and the HMAC key never reached the log.
    expect(output).not.toContain(HMAC);
    expect(output).toContain(`certificate for ${HOST} issued`);

    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(0);
  });
});
