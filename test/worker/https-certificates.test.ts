import { describe, expect, it } from "vitest";
import type { CertificateState } from "../../schema/agent-protocol.ts";
import {
  api,
  applyConfig,
  connectAgent,
  getGateway,
  localConfig,
  newProject,
  registerAgent,
  waitFor,
} from "./helpers.ts";

const state = (host: string, extra: Partial<CertificateState>): CertificateState => ({
  host,
  status: "pending",
  not_after: null,
  issued_at: null,
  renew_at: null,
  last_error: null,
  last_error_at: null,
  next_attempt_at: null,
  ...extra,
});

describe("certificates reported by agents", () => {
  it("sends ACME settings in the document, stores per-host state in the gateway view and emits typed events once", async () => {
    const project = await newProject();
    const name = "gw-tls";
    const config = localConfig(name, {
      domain: "tls.example.test",
      certificate: { type: "lets-encrypt", acme_server: "https://acme.example.test/dir" },
    });
    expect((await applyConfig(project, config)).status).toBe(201);
    await waitFor("instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
    const { res } = await registerAgent(project, name);
    const { ws, configs } = await connectAgent(res.body.token as string);
    const doc = await waitFor("a document", async () => configs[0]);
    expect(doc.acme).toEqual({ directory_url: "https://acme.example.test/dir", eab: null, email: null });

    const failed = state("gateway.tls.example.test", {
      status: "failed",
      last_error: "DNS for gateway.tls.example.test does not point at this gateway",
      last_error_at: "2026-01-01T00:00:00.000Z",
      next_attempt_at: "2026-01-01T00:01:00.000Z",
    });
    const issued = state("gateway.tls.example.test", {
      status: "issued",
      not_after: "2026-04-01T00:00:00.000Z",
      issued_at: "2026-01-01T00:02:00.000Z",
      renew_at: "2026-03-01T00:00:00.000Z",
      last_error: null,
    });
    ws.send(JSON.stringify({ type: "certificates", hosts: [failed] }));
    ws.send(JSON.stringify({ type: "certificates", hosts: [failed] }));
    ws.send(JSON.stringify({ type: "certificates", hosts: [issued] }));
    const view = await waitFor("issued in the gateway view", async () => {
      const g = (await getGateway(project, name)).body;
      return g.replicas[0]?.certificates?.[0]?.status === "issued" ? g : null;
    });
    expect(view.replicas[0]!.certificates).toEqual([issued]);
    const events = await waitFor("events", async () => {
      const all = (await api("GET", `/api/v1/projects/${project}/events?gateway=${name}`)).body.events as {
        type: string | null;
        data: Record<string, unknown>;
      }[];
      const certs = all.filter((e) => e.type?.startsWith("certificate."));
      return certs.length >= 2 ? certs : null;
    });
    expect(events.map((e) => e.type)).toEqual(["certificate.failed", "certificate.issued"]);
    expect(events[1]!.data).toEqual({
      host: "gateway.tls.example.test",
      replica_num: 0,
      expires_at: "2026-04-01T00:00:00.000Z",
    });
    ws.close(1000, "done");
  });

  it("refuses a bad ACME directory URL naming the field", async () => {
    const project = await newProject();
    const bad = await applyConfig(
      project,
      localConfig("gw-tls-bad", { certificate: { type: "lets-encrypt", acme_server: "ftp://x" } }),
    );
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("certificate.acme_server");
  });
});
