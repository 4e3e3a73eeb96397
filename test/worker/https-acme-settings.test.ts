/**
 * A project's ACME settings (`/projects/:p/acme`): validated with the field named, sealed at rest
 * (D1 and the gateway object's copy), never returned, and carried to the agents in the document's
 * `acme` — with the EAB only where the gateway uses the project's directory.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  api,
  applyConfig,
  connectAgent,
  getGateway,
  localConfig,
  newProject,
  newUser,
  objectSql,
  registerAgent,
  waitFor,
} from "./helpers.ts";

const HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
const SETTINGS = {
  directory_url: "https://acme.zerossl.test/v2/DV90",
  eab: { kid: "kid-1", hmac_key: HMAC },
  email: "ops@example.test",
};

async function agentOf(project: string, name: string, certificate: Record<string, unknown>) {
  const config = localConfig(name, { domain: `${name}.example.test`, certificate });
  expect((await applyConfig(project, config)).status).toBe(201);
  await waitFor("instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
  const { res } = await registerAgent(project, name);
  return connectAgent(res.body.token as string);
}

describe("project ACME settings", () => {
  it("refuses bad settings naming the field, and changes nothing", async () => {
    const project = await newProject();
    const cases: [unknown, string][] = [
      [{ ...SETTINGS, directory_url: "http://acme.test/dir" }, "directory_url"],
      [{ ...SETTINGS, eab: { kid: "kid-1", hmac_key: "not base64url!" } }, "eab.hmac_key"],
      [{ ...SETTINGS, eab: { kid: "", hmac_key: HMAC } }, "eab.kid"],
      [{ ...SETTINGS, eab: { kid: "kid-1" } }, "eab.hmac_key"],
      [{ ...SETTINGS, email: "nobody" }, "email"],
      [{ ...SETTINGS, contact: "x" }, "contact"],
    ];
    for (const [body, field] of cases) {
      const res = await api("PUT", `/api/v1/projects/${project}/acme`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field).toBe(field);
    }
    const get = await api("GET", `/api/v1/projects/${project}/acme`);
    expect(get.body).toEqual({
      configured: false,
      directory_url: null,
      email: null,
      has_eab: false,
      eab_kid: null,
      updated_at: null,
    });
    const member = await newUser(project, "member");
    expect((await api("PUT", `/api/v1/projects/${project}/acme`, SETTINGS, member)).status).toBe(403);
    expect((await api("DELETE", `/api/v1/projects/${project}/acme`, undefined, member)).status).toBe(403);
    const openapi = await api("GET", "/api/openapi.json", undefined, null);
    expect(openapi.body.paths["/api/v1/projects/{project}/acme"].put.requestBody).toBeTruthy();
    expect(JSON.stringify(openapi.body.components.schemas.ProjectAcmeRequest)).toContain("hmac_key");
  });

  it("stores the EAB sealed and never returns the HMAC key", async () => {
    const project = await newProject();
    const put = await api("PUT", `/api/v1/projects/${project}/acme`, SETTINGS);
    expect(put.status).toBe(200);
    const get = await api("GET", `/api/v1/projects/${project}/acme`);
    expect(get.status).toBe(200);
    expect(get.body).toMatchObject({
      configured: true,
      directory_url: SETTINGS.directory_url,
      email: SETTINGS.email,
      has_eab: true,
      eab_kid: "kid-1",
    });
    for (const body of [put.body, get.body]) expect(JSON.stringify(body)).not.toContain(HMAC);
    const rows = await env.DB.prepare("SELECT ciphertext FROM backend_credentials WHERE type = 'acme'").all();
    expect(rows.results.length).toBeGreaterThan(0);
    for (const r of rows.results) expect(String(r.ciphertext)).not.toContain(HMAC);
    // The backends' listing is about backends only.
    const backends = await api("GET", `/api/v1/projects/${project}/backends`);
    expect(JSON.stringify(backends.body)).not.toContain("acme");
  });

  it("carries the EAB in the document of gateways on the project's directory, and follows changes", async () => {
    const project = await newProject();
    // A gateway that exists before the settings gets them as a new version.
    const before = await agentOf(project, "gw-eab", { type: "lets-encrypt" });
    const first = await waitFor("a document", async () => before.configs[0]);
    expect(first.acme).toEqual({ directory_url: null, eab: null, email: null });

    expect((await api("PUT", `/api/v1/projects/${project}/acme`, SETTINGS)).status).toBe(200);
    const withEab = await waitFor("a document with the EAB", async () => before.configs.find((d) => d.acme?.eab));
    expect(withEab.version).toBeGreaterThan(first.version);
    expect(withEab.acme).toEqual({
      directory_url: SETTINGS.directory_url,
      eab: { kid: "kid-1", hmac_key: HMAC },
      email: SETTINGS.email,
    });
    // The object keeps a copy, sealed as well.
    const copy = await objectSql<{ ciphertext: string }>(project, "gw-eab", "SELECT ciphertext FROM project_acme");
    expect(copy).toHaveLength(1);
    expect(copy[0]!.ciphertext).not.toContain(HMAC);

    // A gateway created afterwards starts with them; one on another CA gets no EAB (it belongs to the project's CA).
    const after = await agentOf(project, "gw-eab2", { type: "lets-encrypt" });
    expect((await waitFor("a document", async () => after.configs[0])).acme?.eab).toEqual({
      kid: "kid-1",
      hmac_key: HMAC,
    });
    const other = await agentOf(project, "gw-other", {
      type: "lets-encrypt",
      acme_server: "https://other-ca.test/dir",
    });
    expect((await waitFor("a document", async () => other.configs[0])).acme).toEqual({
      directory_url: "https://other-ca.test/dir",
      eab: null,
      email: SETTINGS.email,
    });

    // The same settings again are no new version; removing them is.
    const count = before.configs.length;
    expect((await api("PUT", `/api/v1/projects/${project}/acme`, SETTINGS)).status).toBe(200);
    expect((await api("DELETE", `/api/v1/projects/${project}/acme`)).status).toBe(204);
    const cleared = await waitFor("a document without the EAB", async () =>
      before.configs.slice(count).find((d) => d.acme && !d.acme.eab),
    );
    expect(cleared.acme).toEqual({ directory_url: null, eab: null, email: null });
    expect(before.configs.slice(count).filter((d) => d.acme?.eab)).toHaveLength(0);
    for (const s of [before, after, other]) s.ws.close();
  });
});

describe("service URLs of local HTTPS gateways", () => {
  it("name the host's HTTPS port for https services and its HTTP port for the others", async () => {
    const project = await newProject();
    const name = "gw-local-tls";
    expect((await applyConfig(project, localConfig(name, { certificate: { type: "lets-encrypt" } }))).status).toBe(201);
    await waitFor("instance", async () => (await getGateway(project, name)).body.replicas[0]?.instance_id);
    expect((await registerAgent(project, name)).res.status).toBe(200);
    await waitFor("running", async () => (await getGateway(project, name)).body.status === "running");
    const [replica] = await objectSql<{ hostname: string; backend_data: string }>(
      project,
      name,
      "SELECT hostname, backend_data FROM replicas",
    );
    const httpPort = replica!.hostname.split(":")[1];
    const { https_port: httpsPort } = JSON.parse(replica!.backend_data) as { https_port: number };
    expect(String(httpsPort)).not.toBe(httpPort);
    const apply = async (configuration: Record<string, unknown>) => {
      const path = `/api/v1/projects/${project}/services`;
      const plan = await api("POST", `${path}/plan`, { spec: { configuration } });
      expect(plan.status).toBe(200);
      const res = await api("POST", `${path}/apply`, {
        plan: { spec: { configuration }, current_resource: plan.body.current_resource },
      });
      expect(res.status).toBe(201);
      return res.body as { url: string; model_url: string | null };
    };
    const secure = await apply({ type: "service", name: "secure", https: true, model: "m" });
    expect(secure.url).toBe(`https://secure.localhost:${httpsPort}`);
    expect(secure.model_url).toBe(`https://gateway.localhost:${httpsPort}/v1`);
    const plain = await apply({ type: "service", name: "plain", https: false });
    expect(plain.url).toBe(`http://127.0.0.1:${httpPort}/proxy/services/${project}/plain/`);
    const model = await apply({ type: "service", name: "model", https: false, model: "m" });
    expect(model.model_url).toBe(`http://127.0.0.1:${httpPort}/v1`);
  });
});
