/**
 * External Account Binding against a real Pebble that requires it: the certificate manager, given
 * the document's `acme.eab`, registers its account with the binding and obtains a certificate; a
 * wrong HMAC key or a missing binding is refused by the CA and reported as the host's failure,
 * without the key ever reaching the logs. Fails (does not skip) when Pebble is not installed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificateManager } from "../../agent/certificates/manager.ts";
import { startTunedProxy, type TunedProxyHandle } from "../../proxy/index.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { startReplica, type TestReplica } from "../fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../support/config-builder.ts";
import { type Pebble, pebbleMissing, startPebble } from "../support/pebble.ts";
import { type Check, until as waitUntil } from "../support/until.ts";

const LLAMA = `llama.${DOMAIN}`;
const KID = "kid-1";
const HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
const WRONG = "bm90LXRoZS1rZXktcGViYmxlLWtub3dzLWFib3V0LWF0LWFsbC0wMTIzNDU2Nzg5";

const until = <T>(what: string, probe: Check<T>, timeoutMs = 60_000) => waitUntil(what, probe, timeoutMs, 25);

describe("External Account Binding against Pebble", () => {
  let pebble: Pebble;
  let proxy: TunedProxyHandle;
  let replica: TestReplica;
  let base: ConfigDocument;
  const dirs: string[] = [];
  const managers: CertificateManager[] = [];
  const logged: string[] = [];

  /** A fresh agent state (no account yet) following `doc`. */
  async function managerFor(eab: { kid: string; hmac_key: string } | null) {
    const stateDir = await mkdtemp(path.join(tmpdir(), "gateplane-eab-"));
    dirs.push(stateDir);
    const line = (l: string) => logged.push(l);
    const m = new CertificateManager({
      stateDir,
      proxy,
      log: { info: line, warn: line, error: line },
      checkIntervalMs: 60_000,
      directoryCa: pebble.serverCa,
      // Pebble validates at once (PEBBLE_VA_NOSLEEP): ask again after 50 ms, not acme-client's 5 s.
      statusPolling: { initialMs: 50, maxMs: 1_000, attempts: 30 },
    });
    managers.push(m);
    await m.start();
    await m.configure({ ...base, acme: { directory_url: pebble.directoryUrl, eab, email: "ops@example.test" } });
    const state = await until("a settled state", () =>
      m.states().find((s) => s.host === LLAMA && s.status !== "pending"),
    );
    return { m, state };
  }

  beforeAll(async () => {
    const missing = pebbleMissing();
    if (missing) throw new Error(missing);
    replica = await startReplica("llama");
    base = configDocument(1, [{ name: "llama", https: true, replicas: [replica.url] }]);
    // Only the service host: the entrypoint is not part of what this test is about.
    base = { ...base, entrypoint: null };
    proxy = await startTunedProxy({ httpPort: 0, httpsPort: 0, processes: 0, initialConfig: base }, {});
    pebble = await startPebble({ httpPort: proxy.port, eab: { [KID]: HMAC } });
  }, 120_000);

  afterAll(async () => {
    for (const m of managers) await m.stop();
    await proxy?.close();
    await pebble?.stop();
    await replica?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("registers the account with the binding and obtains a certificate", async () => {
    const { m, state } = await managerFor({ kid: KID, hmac_key: HMAC });
    expect(state.status).toBe("issued");
    expect(state.last_error).toBeNull();
    expect(m.certificate(LLAMA)).not.toBeNull();
  });

  it("is refused by the CA with a wrong HMAC key, and the host's state says why", async () => {
    const { m, state } = await managerFor({ kid: KID, hmac_key: WRONG });
    expect(state.status).toBe("failed");
    expect(state.last_error).toMatch(
      /^External Account Binding refused by the CA for llama\.example\.test.*verification error/,
    );
    expect(m.certificate(LLAMA)).toBeNull();
  });

  it("is refused by the CA without a binding", async () => {
    const { state } = await managerFor(null);
    expect(state.status).toBe("failed");
    expect(state.last_error).toMatch(/^External Account Binding refused.*externalAccountBinding/);
  });

  it("never logs the HMAC key", () => {
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged) {
      expect(line).not.toContain(HMAC);
      expect(line).not.toContain(WRONG);
    }
  });
});
