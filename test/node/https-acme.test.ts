/**
 * ACME HTTP-01 against a real Pebble: the certificate manager obtains certificates through the
 * proxy's challenge answers, the proxy serves them by SNI (in its child processes), renewal swaps
 * them under a steady request loop, a restart reuses them, and a host that does not resolve to
 * us fails with a reason and backs off. Fails (does not skip) when Pebble is not installed.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AcmeIssuer } from "../../agent/certificates/acme.ts";
import { CertificateManager, type Issuer } from "../../agent/certificates/manager.ts";
import { CertificateStore } from "../../agent/certificates/store.ts";
import { startTunedProxy, type TunedProxyHandle } from "../../proxy/index.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { startReplica, type TestReplica } from "../fakes/replica-server.ts";
import { configDocument, DOMAIN } from "../support/config-builder.ts";
import { send } from "../support/http-client.ts";
import { type Pebble, pebbleMissing, startPebble } from "../support/pebble.ts";
import { type Check, until as waitUntil } from "../support/until.ts";

const LLAMA = `llama.${DOMAIN}`;
const ENTRYPOINT = `gateway.${DOMAIN}`;
const BAD = `bad.${DOMAIN}`;
const quietLog = { info() {}, warn() {}, error() {} };

interface TlsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  serial: string;
  authorized: boolean;
  body: string;
}

function httpsGet(port: number, host: string, ca: string, path = "/"): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port, servername: host, path, headers: { host }, ca, agent: false },
      (res) => {
        const socket = res.socket as TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber;
        const authorized = socket.authorized;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            serial,
            authorized,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const until = <T>(what: string, probe: Check<T>, timeoutMs = 60_000) => waitUntil(what, probe, timeoutMs, 25);

describe("HTTPS with ACME against Pebble", () => {
  let pebble: Pebble;
  let proxy: TunedProxyHandle;
  let replica: TestReplica;
  let stateDir: string;
  let root: string;
  let doc: ConfigDocument;
  let offset = 0;
  const issued: string[] = [];
  /** Every host any manager asked the CA for, in order. */
  const asked: string[] = [];
  const managers: CertificateManager[] = [];

  const manager = (onIssue?: (host: string) => void, served: typeof proxy = proxy) => {
    const m = new CertificateManager({
      stateDir,
      proxy: served,
      log: quietLog,
      now: () => Date.now() + offset,
      checkIntervalMs: 500,
      directoryCa: pebble.serverCa,
      issuerFor: (settings, board) => {
        const real = new AcmeIssuer({
          store: new CertificateStore(stateDir),
          settings,
          board,
          directoryCa: pebble.serverCa,
          // Pebble validates at once (PEBBLE_VA_NOSLEEP): ask again after 50 ms, not acme-client's 5 s.
          statusPolling: { initialMs: 50, maxMs: 1_000, attempts: 30 },
          log: () => {},
        });
        const counted: Issuer = {
          issue: async (host) => {
            asked.push(host);
            onIssue?.(host);
            return real.issue(host);
          },
          renewalInfo: (pem, now) => real.renewalInfo(pem, now),
          close: () => real.close(),
        };
        return counted;
      },
    });
    managers.push(m);
    return m;
  };

  beforeAll(async () => {
    // In CI a missing Pebble is a failure, never a skip.
    const missing = pebbleMissing();
    if (missing) throw new Error(missing);
    stateDir = await mkdtemp(path.join(tmpdir(), "gateplane-https-"));
    replica = await startReplica("llama");
    doc = {
      ...configDocument(1, [
        { name: "llama", https: true, hsts: { max_age: 600, include_subdomains: false }, replicas: [replica.url] },
        { name: "bad", https: true, replicas: [replica.url] },
        { name: "plain", https: false, replicas: [replica.url] },
      ]),
    };
    proxy = await startTunedProxy({ httpPort: 0, httpsPort: 0, processes: 2, initialConfig: doc }, {});
    pebble = await startPebble({ httpPort: proxy.port });
    await pebble.pointHost(BAD, "127.0.0.2");
    root = await pebble.root();
    doc = { ...doc, acme: { directory_url: pebble.directoryUrl, eab: null, email: null } };
  }, 120_000);

  afterAll(async () => {
    for (const m of managers) await m.stop();
    await proxy?.close();
    await pebble?.stop();
    await replica?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("issues certificates over HTTP-01 and serves them by SNI, chain verified against Pebble's root", async () => {
    const m = manager((host) => issued.push(host));
    await m.start();
    await m.configure(doc);
    const states = await until("llama and the entrypoint issued", () => {
      const s = m.states();
      const ok = s.filter((x) => x.status === "issued").map((x) => x.host);
      return ok.includes(LLAMA) && ok.includes(ENTRYPOINT) && s.find((x) => x.host === BAD)?.status === "failed" && s;
    });
    expect(states.map((s) => s.host).sort()).toEqual([BAD, ENTRYPOINT, LLAMA]);
    const llama = states.find((s) => s.host === LLAMA)!;
    expect(llama.last_error).toBeNull();
    expect(Date.parse(llama.not_after!)).toBeGreaterThan(Date.now());

    const reply = await httpsGet(proxy.httpsPort!, LLAMA, root);
    expect(reply.authorized).toBe(true);
    expect(reply.status).toBe(200);
    expect(reply.serial).toBe(m.certificate(LLAMA)!.serial);
    // HSTS only where the service asks for it, only over HTTPS.
    expect(reply.headers["strict-transport-security"]).toBe("max-age=600");
    expect(JSON.parse(reply.body).headers["x-forwarded-proto"]).toBe("https");
    expect((await httpsGet(proxy.httpsPort!, ENTRYPOINT, root, "/v1/models")).authorized).toBe(true);

    // Every proxy process has it: several fresh connections all verify.
    for (let i = 0; i < 6; i++) expect((await httpsGet(proxy.httpsPort!, LLAMA, root)).serial).toBe(reply.serial);
  });

  it("redirects plain HTTP to HTTPS for hosts with a certificate, but never ACME challenge paths", async () => {
    const redirected = await send(proxy.port, { host: LLAMA, path: "/v1/x?y=1" });
    expect(redirected.status).toBe(301);
    expect(redirected.headers.location).toBe(`https://${LLAMA}:${proxy.httpsPort}/v1/x?y=1`);
    expect(redirected.headers["strict-transport-security"]).toBeUndefined();
    const challenge = await send(proxy.port, { host: LLAMA, path: "/.well-known/acme-challenge/unknown-token" });
    expect(challenge.status).toBe(404);
    // No certificate (https: false, or a failed one): plain HTTP is served as before.
    expect((await send(proxy.port, { host: `plain.${DOMAIN}` })).status).toBe(200);
    expect((await send(proxy.port, { host: BAD })).status).toBe(200);
  });

  it("reports a host that does not resolve to the gateway as failed, with the reason, and backs off", async () => {
    const m = managers[0]!;
    const bad = m.states().find((s) => s.host === BAD)!;
    expect(bad.status).toBe("failed");
    expect(bad.last_error).toMatch(/^DNS for bad\.example\.test does not point at this gateway/);
    const wait = Date.parse(bad.next_attempt_at!) - Date.parse(bad.last_error_at!);
    expect(wait).toBe(60_000);
    // Checks keep running without asking the CA again before the back-off ends: three of them, each
    // awaited to its end (no sleep: a check is what could ask).
    const before = issued.filter((h) => h === BAD).length;
    for (let i = 0; i < 3; i++) {
      m.kick();
      await m.idle();
    }
    expect(issued.filter((h) => h === BAD).length).toBe(before);
    // Past the back-off it tries again, fails again, and waits twice as long.
    offset += 61_000;
    m.kick();
    const again = await until("a second failure", () => {
      const s = m.states().find((x) => x.host === BAD)!;
      return s.last_error_at !== bad.last_error_at && s;
    });
    expect(Date.parse(again.next_attempt_at!) - Date.parse(again.last_error_at!)).toBe(120_000);
  });

  it("stores certificates and keys 0600 in a 0700 directory", async () => {
    const store = new CertificateStore(stateDir);
    expect((await stat(store.dir)).mode & 0o777).toBe(0o700);
    for (const file of [`${LLAMA}.json`, `${ENTRYPOINT}.json`, "state.json"]) {
      expect((await stat(path.join(store.dir, file))).mode & 0o777).toBe(0o600);
    }
    const { readdir } = await import("node:fs/promises");
    const accounts = (await readdir(store.dir)).filter((f) => f.startsWith("account-"));
    expect(accounts).toHaveLength(1);
    expect((await stat(path.join(store.dir, accounts[0]!))).mode & 0o777).toBe(0o600);
  });

  it("renews when a third of the lifetime is left, swapping certificates without failing a request", async () => {
    const m = managers[0]!;
    const old = m.certificate(LLAMA)!;
    let failures = 0;
    let ok = 0;
    const seen = new Set<string>();
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          const r = await httpsGet(proxy.httpsPort!, LLAMA, root);
          if (r.status === 200 && r.authorized) ok++;
          else failures++;
          seen.add(r.serial);
        } catch {
          failures++;
        }
      }
    })();
    await until("some requests on the old certificate", () => ok > 5);
    // The clock moves to just past the renewal point (two thirds of the lifetime).
    offset = old.notBefore + ((old.notAfter - old.notBefore) * 2) / 3 - Date.now() + 60_000;
    m.kick();
    const renewed = await until("a renewed certificate", () => {
      const c = m.certificate(LLAMA)!;
      return c.serial !== old.serial && c;
    });
    // Back to real time, or the fresh certificate would look due as well.
    offset = 0;
    await until("requests on the new certificate", () => seen.has(renewed.serial));
    const after = ok;
    await until("more requests after the swap", () => ok > after + 5);
    running = false;
    await loop;
    expect(failures).toBe(0);
    expect(seen.has(old.serial)).toBe(true);
    expect(m.states().find((s) => s.host === LLAMA)?.status).toBe("issued");
  });

  it("reuses stored certificates after a restart instead of issuing again", async () => {
    const first = managers[0]!;
    const serials = { llama: first.certificate(LLAMA)!.serial, entry: first.certificate(ENTRYPOINT)!.serial };
    await first.stop();
    await proxy.setCertificates([]);
    expect(await httpsGet(proxy.httpsPort!, LLAMA, root).catch((e: Error) => e)).toBeInstanceOf(Error);
    const again: string[] = [];
    const second = manager((host) => again.push(host));
    await second.start();
    await second.configure(doc);
    await second.idle();
    expect(second.certificate(LLAMA)!.serial).toBe(serials.llama);
    expect(second.certificate(ENTRYPOINT)!.serial).toBe(serials.entry);
    expect((await httpsGet(proxy.httpsPort!, LLAMA, root)).serial).toBe(serials.llama);
    // Only the failed host is retried, and only once its stored back-off has passed.
    expect(again.filter((h) => h !== BAD)).toEqual([]);
  });

  it("says issued only once the proxy serves the certificate (every process has it), not when it is stored", async () => {
    await managers.at(-1)!.stop();
    let release = () => {};
    let asked = () => {};
    const proxyAsked = new Promise<void>((resolve) => (asked = resolve));
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = {
      ...proxy,
      setCertificates: async (certificates: Parameters<typeof proxy.setCertificates>[0]) => {
        asked();
        await held;
        await proxy.setCertificates(certificates);
      },
    };
    const m = manager(undefined, slow);
    await m.start();
    const configured = m.configure(doc);
    await proxyAsked;
    expect(m.states().find((x) => x.host === LLAMA)?.status).toBe("pending");
    release();
    await configured;
    expect(m.states().find((x) => x.host === LLAMA)?.status).toBe("issued");
  });

  it("deletes a dropped host's certificate and key, stops serving and renewing it", async () => {
    const m = managers[managers.length - 1]!;
    const store = new CertificateStore(stateDir);
    const file = path.join(store.dir, `${LLAMA}.json`);
    expect((await stat(file)).isFile()).toBe(true);
    const askedBefore = asked.length;
    const withoutLlama: ConfigDocument = {
      ...doc,
      version: doc.version + 1,
      services: doc.services.filter((s) => s.name !== "llama"),
    };
    await m.configure(withoutLlama);
    await m.idle();
    expect(await stat(file).catch((e: NodeJS.ErrnoException) => e.code)).toBe("ENOENT");
    expect(Object.keys(await store.readRecords())).not.toContain(LLAMA);
    expect(m.states().map((s) => s.host)).not.toContain(LLAMA);
    expect(m.certificate(LLAMA)).toBeNull();
    // No certificate for it any more: the handshake fails (other hosts are still served).
    expect(await httpsGet(proxy.httpsPort!, LLAMA, root).catch((e: Error) => e)).toBeInstanceOf(Error);
    expect((await httpsGet(proxy.httpsPort!, ENTRYPOINT, root)).authorized).toBe(true);
    // Even with the clock past its renewal point nothing is asked of the CA for it (the entrypoint,
    // still in the document, is renewed by the same check).
    offset = m.certificate(ENTRYPOINT)!.notAfter - Date.now() + 60_000;
    m.kick();
    await until("the entrypoint renewed", () => asked.slice(askedBefore).includes(ENTRYPOINT));
    await m.idle();
    offset = 0;
    expect(asked.slice(askedBefore)).not.toContain(LLAMA);
    expect(await stat(file).catch((e: NodeJS.ErrnoException) => e.code)).toBe("ENOENT");
  });
});
